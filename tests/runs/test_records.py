"""Run folders: never overwritten, written atomically, read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.paths import repo_root
from zsseg_bench.runs.records import SCHEMA_VERSION, RunRecord, find_records, load_record, make_run_id, scoring_of


def test_create_never_reuses_a_folder(tmp_path):
    a = RunRecord.create(tmp_path, "run")
    a.write_json("run.json", {"status": "ok"})
    b = RunRecord.create(tmp_path, "run")
    assert a.path != b.path and b.path.name == "run-2"
    assert json.loads((a.path / "run.json").read_text()) == {"status": "ok"}


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    rec = RunRecord.create(tmp_path, "r")
    rec.write_json("run.json", {"status": "running"})
    rec.update_run(status="ok", extra=1)
    rec.write_confusion(np.eye(3, dtype=np.int64))
    assert sorted(p.name for p in rec.path.iterdir()) == ["confusion.npy", "run.json"]
    assert load_record(rec.path)["status"] == "ok"
    np.testing.assert_array_equal(np.load(rec.path / "confusion.npy"), np.eye(3))


def test_find_records_recurses_and_rejects_empty(tmp_path):
    for name in ("a", "b"):
        RunRecord.create(tmp_path / "batch", name).write_json("run.json", {"status": "ok"})
    assert [p.name for p in find_records([tmp_path])] == ["a", "b"]
    with pytest.raises(ZsbenchError):
        find_records([tmp_path / "batch" / "a" / "nothing"])


def test_corrupt_metrics_is_a_clear_error(tmp_path):
    rec = RunRecord.create(tmp_path, "r")
    rec.write_json("run.json", {"status": "ok"})
    (rec.path / "metrics.json").write_text("{half")
    with pytest.raises(ZsbenchError, match="corrupt metrics file"):
        load_record(rec.path)


def test_a_record_newer_than_the_code_is_refused(tmp_path):
    rec = RunRecord.create(tmp_path, "r")
    rec.write_json("run.json", {"schema_version": SCHEMA_VERSION + 1, "status": "ok"})
    with pytest.raises(ZsbenchError, match=f"schema_version {SCHEMA_VERSION + 1} is newer .*update zsseg-bench"):
        load_record(rec.path)
    rec.write_json("run.json", {"schema_version": SCHEMA_VERSION, "status": "ok", "scoring": {"absent": "zero"}})
    assert scoring_of(load_record(rec.path)) == {"absent": "zero"}


def test_committed_schema_1_records_still_read_with_their_scoring_under_protocol():
    batch = repo_root() / "results" / "runs" / "20261121T191406__synthetic-9-3"
    records = [load_record(p) for p in find_records([batch])]
    assert records and {r["schema_version"] for r in records} == {1}
    assert all("scoring" not in r and scoring_of(r) == r["protocol"] for r in records if r["status"] == "ok")
    assert {scoring_of(r).get("absent") for r in records if r["status"] == "ok"} == {"nan"}


def test_run_id_names_method_split_and_seed():
    assert make_run_id("spnet", "synthetic-9-3", 2).startswith("spnet__synthetic-9-3__s2__")


def test_git_state_is_read_once_per_process(monkeypatch):
    # A batch keeps running the code it started with: every run record of the process must name
    # that commit, even if the checkout moves on while the batch runs.
    from zsseg_bench.runs import records

    records._git_state.cache_clear()
    calls = []
    real_run = records.subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(records.subprocess, "run", counting_run)
    first = records.environment()["git"]
    n_calls = len(calls)
    first["commit"] = "mutated by a caller"
    second = records.environment()["git"]
    assert len(calls) == n_calls  # no second look at the checkout
    assert second["commit"] != "mutated by a caller"
    records._git_state.cache_clear()
