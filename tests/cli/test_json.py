"""Output for scripts (--json), the resolved configuration (--print-config) and the modern anchors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.helpers.records import write_record
from tests.helpers.settings import REPO
from zsseg_bench.catalog import anchors
from zsseg_bench.catalog.published import lookup, published_frame
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES

runner = CliRunner()
BATCH = REPO / "results" / "runs" / "20261121T191406__synthetic-9-3"


def _json(args):
    result = runner.invoke(app, args)
    return result, json.loads(result.stdout)


def test_table_json_has_every_run_group_and_unrounded_numbers():
    result, rows = _json(["table", str(BATCH), "--json"])
    assert result.exit_code == 0
    assert len(rows) == 8 and {r["method"] for r in rows} >= {"spnet", "cagnet-pa+st"}
    spnet = next(r for r in rows if r["method"] == "spnet")
    assert spnet["seeds"] == "0,1,2" and abs(spnet["hIoU"] - 0.0531544992) < 1e-9


def test_check_json_keeps_the_exit_status(tmp_path):
    row = lookup("spnet-c", "voc12", "voc12-15-5")
    off = {m: float(row[m]) + 0.03 for m in METRIC_NAMES if row[m] == row[m]}
    run = write_record(tmp_path, "off", "spnet-c", "voc12", "voc12-15-5", 0, off)
    result, rows = _json(["check", str(run), "--json"])
    assert result.exit_code == 1 and rows and not any(r["pass"] for r in rows)


def test_ls_and_published_json():
    _, methods = _json(["ls", "methods", "--json"])
    assert {"method", "impl", "version", "title", "default run"} == set(methods[0])
    result, out = _json(["published", "--dataset", "voc12", "--anchors", "--json"])
    assert result.exit_code == 0
    assert {r["protocol"] for r in out["published"]} >= {"gzs3"} and all("note" in r for r in out["published"])
    assert {r["dataset"] for r in out["anchors"]} == {"voc12"} and len(out["anchors"]) == 6


def test_published_never_mixes_protocols_in_one_table():
    result = runner.invoke(app, ["published", "--dataset", "voc12"], terminal_width=250)
    assert result.exit_code == 0
    titles = [line.strip() for line in result.output.splitlines() if "published rows, protocol" in line]
    assert titles == ["published rows, protocol gzs3: 21", "published rows, protocol fss-zeroshot: 4"]
    assert "note (fss-zeroshot): fold mIoU" in result.output


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--print-config", "cagnet-pi", "--set", "step1.iterations=7",
                                 "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    import yaml

    (doc,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert doc["method"] == "cagnet-pi" and doc["split"] == "synthetic-9-3"
    assert doc["config"]["step1"]["iterations"] == 7 and "engine" in doc["config"]
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the runs folder


def test_anchors_are_never_published_rows_and_are_validated(tmp_path, monkeypatch):
    assert "zegclip" not in set(published_frame()["method"])  # check and table --published never see them
    assert anchors.check_anchors() == []
    bad = (REPO / "results" / "published" / anchors.ANCHORS_FILE).read_text().replace(
        "inductive,average of runs,0.919", "inductive,average of runs,0.519", 1).replace(
        ",171,156,15,transductive,", ",171,150,15,transductive,", 1)
    (tmp_path / anchors.ANCHORS_FILE).write_text(bad)
    monkeypatch.setattr(anchors, "published_dir", lambda: tmp_path)
    anchors._load.cache_clear()
    try:
        problems = anchors.check_anchors()
    finally:
        anchors._load.cache_clear()
    assert len(problems) == 2
    assert "row 2 (zegclip, voc12-15-5, inductive): hIoU 0.843 does not follow" in problems[0]
    assert "n_seen + n_unseen is not n_classes" in problems[1]


@pytest.mark.parametrize("args", [["table", str(BATCH), "--anchors"], ["table", str(BATCH), "--percent",
                                                                         "--decimals", "3"]])
def test_table_option_mistakes_are_one_line(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_score_names_the_splits_own_background_rule():
    matrix = next(BATCH.glob("spnet-c__*")) / "confusion.npy"
    result, out = _json(["score", str(matrix), "--split", "synthetic-9-3", "--json"])
    assert result.exit_code == 0 and out["scoring"] == {"absent": "nan", "background": "excluded",
                                                        "background_from": "split"}
    shown = runner.invoke(app, ["score", str(matrix), "--split", "synthetic-9-3"], terminal_width=250).output
    assert "background=excluded, from the split" in shown and "background=seen" not in shown
