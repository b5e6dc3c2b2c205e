"""Records that cannot lie: table, check and report recompute every metric from confusion.npy and
check the split's sha256; they refuse ambiguous pools of runs and show dead runs as `died`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest
from typer.testing import CliRunner

from tests.helpers.settings import TINY
from zsseg_bench.catalog.published import lookup
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["run", "spnet", "--out", str(out), "--no-report",
                                 *[a for v in TINY for a in ("--set", v)]])
    assert result.exit_code == 0, result.output
    return next(p for p in out.glob("*/spnet__*") if p.is_dir())


def _copy(src, batch, name=None, **run_fields):
    dst = batch / (name or src.name)
    shutil.copytree(src, dst)
    if run_fields:
        info = json.loads((dst / "run.json").read_text())
        info.update(run_fields)
        (dst / "run.json").write_text(json.dumps(info))
    return dst


def _edit(path, **fields):
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def _one_line_error(result, names):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], result.output


def _all_commands(run, tmp_path):
    return [["table", str(run)], ["check", str(run)], ["report", str(run), "-o", str(tmp_path / "report")]]


def test_honest_record_is_accepted(source_run):
    assert runner.invoke(app, ["table", str(source_run)]).exit_code == 0


def test_doctored_metrics_are_refused(tmp_path, source_run):
    run = _copy(source_run, tmp_path)
    _edit(run / "metrics.json", hIoU=0.99)
    for args in _all_commands(run, tmp_path):
        result = runner.invoke(app, args)
        _one_line_error(result, f"{run / 'metrics.json'}: hIoU is 0.99, but confusion.npy")
    assert not (tmp_path / "report").exists()


def test_forged_split_sha256_is_refused(tmp_path, source_run):
    run = _copy(source_run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    _edit(run / "run.json", split={**info["split"], "sha256": "0" * 64})
    for args in _all_commands(run, tmp_path):
        _one_line_error(runner.invoke(app, args), f"{run / 'run.json'}: recorded split synthetic-9-3 sha256 000000000000")


def test_record_claiming_a_published_row_is_refused(tmp_path, source_run):
    """The forgery of the issue: run.json names voc12/voc12-15-5, metrics.json copies the published row."""
    run = _copy(source_run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    from zsseg_bench.catalog.splits import load_split

    voc = load_split("voc12-15-5")
    _edit(run / "run.json", method="spnet-c", dataset={**info["dataset"], "name": "voc12"},
          split={**info["split"], "name": "voc12-15-5", "sha256": voc.sha256})
    row = lookup("spnet-c", "voc12", "voc12-15-5")
    (run / "metrics.json").write_text(json.dumps({m: float(row[m]) for m in METRIC_NAMES if row[m] == row[m]}))
    result = runner.invoke(app, ["check", str(run)])
    _one_line_error(result, f"{run / 'confusion.npy'}: int64")


def test_missing_confusion_is_refused(tmp_path, source_run):
    run = _copy(source_run, tmp_path)
    (run / "confusion.npy").unlink()
    _one_line_error(runner.invoke(app, ["table", str(run)]), "confusion.npy: missing")


def test_three_seed0_runs_from_two_batches(tmp_path, source_run):
    a, b = tmp_path / "a", tmp_path / "b"
    _copy(source_run, a)
    _copy(source_run, b, "x", run_id="x", start="2099-01-01T00:00:00Z")
    _copy(source_run, b, "y", run_id="y", start="2098-01-01T00:00:00Z")
    result = runner.invoke(app, ["table", str(a), str(b)])
    _one_line_error(result, "3 runs of spnet on synthetic-9-3 seed 0 world 0")
    assert "--latest" in result.output and "--pool" in result.output
    latest = runner.invoke(app, ["table", str(a), str(b), "--latest"])
    assert latest.exit_code == 0 and "kept the newest" in latest.output and "dropped 2" in latest.output
    assert "seeds" in latest.output and "0,0" not in latest.output
    pooled = runner.invoke(app, ["table", str(a), str(b), "--pool"])
    assert pooled.exit_code == 0 and "--pool: 3 runs share" in pooled.output and "0,0,0" in pooled.output


def test_mixed_commits_are_refused(tmp_path, source_run):
    _copy(source_run, tmp_path, "one")
    other = _copy(source_run, tmp_path, "two", seed=1)
    info = json.loads((other / "run.json").read_text())
    env = info["environment"]
    _edit(other / "run.json", environment={**env, "git": {"commit": "f" * 40, "dirty": False}})
    result = runner.invoke(app, ["table", str(tmp_path)])
    _one_line_error(result, "the runs come from 2 commits")
    assert "pooled" in runner.invoke(app, ["table", str(tmp_path), "--pool"]).output


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("fields", [
    lambda: {"pid": _dead_pid(), "host": socket.gethostname(), "heartbeat": "2099-01-01T00:00:00Z"},
    lambda: {"pid": 1, "host": "elsewhere", "heartbeat": "2020-01-01T00:00:00Z"},
], ids=["process-gone", "heartbeat-stale"])
def test_dead_running_record_is_listed_as_died(tmp_path, source_run, fields):
    batch = tmp_path / "batch"
    _copy(source_run, batch, "ok")
    dead = _copy(source_run, batch, "dead", status="running", end=None, **fields())
    (dead / "metrics.json").unlink()
    table = runner.invoke(app, ["table", str(batch)])
    assert table.exit_code == 0, table.output
    assert "died" in table.output and f"zsbench run --resume {dead}" in " ".join(table.output.split())
    report = runner.invoke(app, ["report", str(batch), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "`dead`: status died" in text and "--resume" in text


def test_live_running_record_is_not_died(tmp_path, source_run):
    from zsseg_bench.runs.records import process_identity
    from zsseg_bench.runs.verify import death_of

    assert death_of({"status": "running", **process_identity()}) is None


def test_run_ids_made_in_the_same_second_differ():
    from zsseg_bench.runs.records import make_run_id

    ids = {make_run_id("spnet", "synthetic-9-3", 0) for _ in range(20)}
    assert len(ids) > 15 and all(i.startswith("spnet__synthetic-9-3__s0__") for i in ids)


def test_batch_lock_makes_writers_of_comparison_take_turns(tmp_path):
    import threading

    from zsseg_bench.runs.records import batch_lock

    entered = threading.Event()

    def second_writer():
        with batch_lock(tmp_path):
            entered.set()

    with batch_lock(tmp_path):
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not entered.wait(0.3)  # blocked while the first writer holds the lock
    thread.join(5)
    assert entered.is_set()


def test_heartbeat_is_rewritten_while_a_run_runs(tmp_path):
    import time

    from zsseg_bench.runs.records import RunRecord

    rec = RunRecord.create(tmp_path, "r")
    rec.write_json("run.json", {"status": "running", "heartbeat": "2000-01-01T00:00:00Z"})
    with rec.heartbeat(0.05):
        time.sleep(0.3)
    assert json.loads((rec.path / "run.json").read_text())["heartbeat"] > "2026"
