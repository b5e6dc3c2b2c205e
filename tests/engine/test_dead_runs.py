"""Runs that stop without finishing: SIGTERM is an interruption like Ctrl-C (resumable), SIGKILL
leaves a `running` record that table and report show as `died`, and resuming honours a new
learning rate (the NaN recovery docs/deeplab.md prescribes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from tests.helpers.bad_inputs import honest_record
from zsseg_bench.cli import app
from zsseg_bench.runs.train import resume_request

runner = CliRunner()

SMALL = ["dataset.n_train=16", "dataset.n_test=4", "dataset.size=32", "data.batch_size=4", "backbone.width=8",
         "log_every=1", "engine.deterministic=true", "backbone.init=null"]


def _sets(values):
    return [a for v in values for a in ("--set", v)]


def _start(out, iterations: int):
    """`zsbench run spnet` in its own process, long enough to be stopped; returns it once a checkpoint exists."""
    cmd = [sys.executable, "-m", "zsseg_bench.cli", "run", "spnet", "--out", str(out), "--no-report",
           *_sets([*SMALL, f"train.iterations={iterations}", "engine.checkpoint_every=2"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list(out.glob("*/spnet__*/ckpt/last.pt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    return proc, next(out.glob("*/spnet__*"))


def _status(run):
    return json.loads((run / "run.json").read_text())["status"]


@pytest.mark.slow
def test_sigterm_interrupts_and_resume_completes(tmp_path):
    # 400 iterations, as the SIGKILL test: at 20 a quiet machine finished the whole run between two
    # polls for the first checkpoint, so there was nothing left to interrupt
    proc, run = _start(tmp_path / "runs", iterations=400)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, output
    assert "Traceback" not in output and "terminated (SIGTERM)" in output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["error"] == "terminated (SIGTERM)"
    assert info["pid"] == proc.pid and info["host"] and info["heartbeat"]
    done = runner.invoke(app, ["run", "--resume", str(run), "--no-report"])
    assert done.exit_code == 0, done.output
    resumed = [p for p in run.parent.iterdir() if p.is_dir() and p != run]
    assert len(resumed) == 1 and _status(resumed[0]) == "ok"


@pytest.mark.slow
def test_sigkill_leaves_a_run_listed_as_died(tmp_path):
    proc, run = _start(tmp_path / "runs", iterations=400)
    proc.kill()
    proc.communicate(timeout=60)
    # As a kill during a checkpoint write leaves; written after the kill, since the live run writes
    # its checkpoints through this same temporary name (writing it earlier raced with the run).
    (run / "ckpt" / ".last.pt.tmp").write_bytes(b"half")
    assert _status(run) == "running"
    table = runner.invoke(app, ["table", str(run.parent)])
    assert "died" in table.output and "is gone" in table.output, table.output
    honest_record(run.parent)  # a finished run beside it, so that there is something to report
    report = runner.invoke(app, ["report", str(run.parent), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"`{run.name}`: status died" in text and "is gone" in text and "--resume" in text
    resume_request(run)  # what --resume does first
    assert not (run / "ckpt" / ".last.pt.tmp").exists()  # the half-written file is gone


@pytest.mark.slow
def test_nan_recovery_with_a_lower_learning_rate(tmp_path):
    """docs/deeplab.md: a run diverges, resuming from its last good checkpoint with a lower lr finishes."""
    out = tmp_path / "runs"
    args = ["run", "spnet", "--out", str(out), "--no-report",
            *_sets([*SMALL, "train.iterations=12", "engine.checkpoint_every=2", "train.lr=1000"])]
    diverged = runner.invoke(app, args)
    assert diverged.exit_code == 1 and "non-finite" in diverged.output, diverged.output
    run = next(out.glob("*/spnet__*"))
    assert _status(run) == "failed"
    resumed = runner.invoke(app, ["run", "--resume", str(run), "--no-report", "--set", "train.lr=0.001"])
    assert resumed.exit_code == 0, resumed.output
    new = next(p for p in run.parent.iterdir() if p.is_dir() and p != run)
    info = json.loads((new / "run.json").read_text())
    assert info["status"] == "ok" and info["resume_overrides"] == ["train.lr=0.001"]
    start = info["resumed_from"]["iteration"]
    log = [json.loads(line) for line in (new / "train_log.jsonl").read_text().splitlines()]
    before = [e["lr"]["main"] for e in log if e["iteration"] <= start]
    after = [e["lr"]["main"] for e in log if e["iteration"] > start]
    assert before and min(before) > 1 and after and 0 < max(after) <= 0.001  # the new base lr, on schedule


def test_sigterm_handler_is_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    runner.invoke(app, ["run", "spnet", "--seeds", "x", "--out", str(tmp_path)])
    assert signal.getsignal(signal.SIGTERM) == before and os.getpid()
