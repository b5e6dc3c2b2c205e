"""tables.py: mean ± std over seeds, published columns, every output format."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers.records import accept_hand_written_metrics, write_record
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.report.tables import add_published, format_summary, runs_frame, summarize, write_tables


@pytest.fixture(autouse=True)
def _hand_written(monkeypatch):
    accept_hand_written_metrics(monkeypatch)


def _metrics(v):
    return {m: v for m in METRIC_NAMES}


@pytest.fixture
def runs(tmp_path):
    for seed, v in enumerate([0.2, 0.4]):
        write_record(tmp_path, f"spnet-{seed}", "spnet-c", "voc12", "voc12-15-5", seed, _metrics(v))
    write_record(tmp_path, "spnet-x", "spnet", "voc12", "voc12-15-5", 0, _metrics(0.1))
    write_record(tmp_path, "broken", "spnet", "voc12", "voc12-15-5", 1, {}, status="failed")
    return tmp_path


def test_summary_mean_std_and_order(runs):
    frame = runs_frame([runs])
    assert len(frame) == 3  # the failed run is not a result
    summary = summarize(frame)
    assert list(summary["method"]) == ["spnet", "spnet-c"]  # the source papers' order, not alphabetical
    row = summary.set_index("method").loc["spnet-c"]
    assert row["hIoU"] == pytest.approx(0.3) and row["hIoU std"] == pytest.approx(0.1414213, rel=1e-5)
    assert row["seeds"] == "0,1"


def test_published_columns_and_deltas(runs):
    summary = add_published(summarize(runs_frame([runs])))
    row = summary.set_index("method").loc["spnet-c"]
    assert row["hIoU pub"] == 0.2610 and row["Δ hIoU"] == pytest.approx(0.3 - 0.2610)
    assert row["source"].startswith("cagnet-readme")
    shown = format_summary(summary).set_index("method")
    assert shown.loc["spnet-c", "hIoU"] == "0.3000 ± 0.1414" and shown.loc["spnet", "hIoU"] == "0.1000"


def test_write_all_formats(runs, tmp_path):
    paths = write_tables(summarize(runs_frame([runs])), tmp_path / "out" / "table")
    assert [p.suffix for p in paths] == [".md", ".tex", ".csv", ".parquet"]
    assert "| spnet-c" in paths[0].read_text() and "\\toprule" in paths[1].read_text()
    back = pd.read_parquet(paths[3])
    assert list(back["method"]) == ["spnet", "spnet-c"] and "U-mIoU std" in back


def test_format_value_is_the_one_number_format():
    import numpy as np

    from zsseg_bench.report.tables import DELTA, MISSING, format_cell, format_value

    assert format_value(0.12345) == "0.1235" and format_value(0.0) == "0.0000"
    assert format_value(0.03, DELTA) == "+0.0300" and format_value(-0.5, DELTA) == "-0.5000"
    assert format_value(0.255, ".0%") == "26%" and format_value(0.7716, ".1%") == "77.2%"
    for missing in (None, float("nan"), np.float32("nan"), np.nan):
        assert format_value(missing) == MISSING == "–" and format_cell(missing) == MISSING
    assert format_cell(3) == "3" and format_cell("x") == "x"


def test_method_sort_key_puts_the_comparison_order_first():
    from zsseg_bench.report.tables import METHOD_ORDER, method_sort_key

    names = ["zzz", "cagnet-pa+st", "aaa", "spnet-c", "spnet"]
    assert sorted(names, key=method_sort_key) == ["spnet", "spnet-c", "cagnet-pa+st", "aaa", "zzz"]
    assert sorted(reversed(METHOD_ORDER), key=method_sort_key) == list(METHOD_ORDER)


def test_a_row_whose_runs_had_a_dead_mechanism_is_marked(runs):
    import json
    path = next(p for p in runs.iterdir() if p.name.startswith("spnet-1"))
    rec = json.loads((path / "run.json").read_text())
    rec["method_facts"] = {"self_training": {"pseudo_label_check": {"background_share": 0.97, "pixels": 100}}}
    (path / "run.json").write_text(json.dumps(rec))
    shown = format_summary(summarize(runs_frame([runs]))).set_index("method")
    assert shown.loc["spnet-c", "flags"] == "dead-mechanism 1/2" and shown.loc["spnet", "flags"] == ""
