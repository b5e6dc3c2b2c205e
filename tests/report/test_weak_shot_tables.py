"""Weak-shot runs are tabled with the protocol's names: all / base / novel mIoU, hIoU marked derived, and
the upper bound's flag reads uses-novel-masks; gzs3 tables keep the metric names."""

from __future__ import annotations

import json

from tests.helpers.records import accept_hand_written_metrics, write_record
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.report.tables import format_summary, runs_frame, summarize


def _weak_shot_record(root, name, method, seed, value, flags=None):
    path = write_record(root, name, method, "synthetic", "synthetic-ws-10-3", seed, {m: value for m in METRIC_NAMES},
                        flags=flags)
    info = json.loads((path / "run.json").read_text())
    info["split"]["protocol"] = "weak-shot"
    (path / "run.json").write_text(json.dumps(info))
    return path


def test_weak_shot_columns_and_flag(tmp_path, monkeypatch):
    accept_hand_written_metrics(monkeypatch)
    _weak_shot_record(tmp_path, "a", "simformer", 0, 0.5)
    _weak_shot_record(tmp_path, "b", "maskformer-full", 0, 0.7, flags={"uses_unseen_labels": True,
                                                                        "transductive": False})
    shown = format_summary(summarize(runs_frame([tmp_path]))).set_index("method")
    assert {"mIoU (all)", "base mIoU", "novel mIoU", "hIoU (derived)"} <= set(shown.columns)
    assert "S-mIoU" not in shown.columns
    assert shown.loc["maskformer-full", "flags"] == "uses-novel-masks"
    assert shown.loc["simformer", "novel mIoU"] == "0.5000"


def test_gzs3_and_older_records_keep_the_metric_names(tmp_path, monkeypatch):
    accept_hand_written_metrics(monkeypatch)
    write_record(tmp_path, "c", "spnet", "voc12", "voc12-15-5", 0, {m: 0.1 for m in METRIC_NAMES},
                 flags={"uses_unseen_labels": True, "transductive": False})
    shown = format_summary(summarize(runs_frame([tmp_path])))
    assert {"hIoU", "S-mIoU", "U-mIoU"} <= set(shown.columns)
    assert list(shown["flags"]) == ["unseen-labels"]
