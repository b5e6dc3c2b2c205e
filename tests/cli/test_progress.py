"""Progress when stdout is not a terminal: plain lines that name the run, flushed while it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.settings import REPO, TINY_DATA
from zsseg_bench.cli.progress import CONSOLE_LOG, ConsoleLog, PlainReporter, Tee


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_lines_every_n_iterations_and_every_30_seconds():
    lines, clock = [], _Clock()
    rep = PlainReporter(lines.append, every_n=100, clock=clock)
    rep.run_start("cagnet-pi", 2)
    rep.stage_start("step1", 1000)
    for i in range(1, 201):
        clock.now = i * 0.1
        rep.advance(1, "loss_seg=0.5 loss_gen=1.2" if i == 50 else "")
    clock.now = 60.0  # a slow iteration: a line although 201 is not a multiple of 100
    rep.advance(1)
    rep.stage_end()
    assert lines[0] == "cagnet-pi s2 | step1 | start | 1000 steps"
    assert lines[1].startswith("cagnet-pi s2 | step1 | 100/1000 | elapsed 0:00:10 | ETA 0:01:30 | loss_seg=0.5")
    assert lines[2].startswith("cagnet-pi s2 | step1 | 200/1000 | elapsed 0:00:20 | ETA")
    assert lines[3].startswith("cagnet-pi s2 | step1 | 201/1000 | elapsed 0:01:00")
    assert lines[4] == "cagnet-pi s2 | step1 | done | 201/1000 in 0:01:00"


def test_console_log_goes_to_the_batch_folder(tmp_path):
    run_dir = tmp_path / "batch" / "spnet__x__s0__t"
    run_dir.mkdir(parents=True)
    lines = []
    with Tee(PlainReporter(lines.append), ConsoleLog()) as rep:
        rep.run_start("spnet", 0, run_dir)
        rep.stage_start("train", 3)
        rep.advance(3)
        rep.stage_end()
        rep.message("hello")
    assert (tmp_path / "batch" / CONSOLE_LOG).read_text().splitlines() == lines
    assert lines[-1] == "spnet s0 | hello"


@pytest.mark.slow
def test_run_redirected_to_a_file_shows_progress_while_it_runs(tmp_path):
    """`zsbench run ... > log.txt`: progress lines are in the file before the run ends."""
    log = tmp_path / "log.txt"
    sets = [a for o in [*TINY_DATA, "train.iterations=60"] for a in ("--set", o)]
    cmd = [sys.executable, "-m", "zsseg_bench.cli", "run", "spnet", "--seeds", "0", "--no-report", "--out",
           str(tmp_path / "runs"), *sets]
    env = {**os.environ, "COLUMNS": "80"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        seen_while_running = None
        try:
            deadline = time.time() + 240
            while proc.poll() is None and time.time() < deadline:
                text = log.read_text()
                if "spnet s0 | train | 10/60 | elapsed" in text:
                    seen_while_running = text if proc.poll() is None else None
                    break
                time.sleep(0.05)
        finally:
            rc = proc.wait(timeout=300)
    assert rc == 0, log.read_text()
    assert seen_while_running is not None, log.read_text()
    final = log.read_text()
    progress = [line for line in final.splitlines() if line.startswith("spnet s0 | train | ") and "/60 |" in line]
    assert all("ETA" in line and "elapsed" in line for line in progress)
    assert {f"{n}/60" for n in range(10, 61, 10)} <= {line.split(" | ")[2] for line in progress}  # every tenth
    assert any("loss=" in line for line in progress)
    assert "spnet s0 | evaluate | done" in final
    (batch,) = (tmp_path / "runs").iterdir()
    console_log = (batch / CONSOLE_LOG).read_text()
    assert "spnet s0 | train | done | 60/60" in console_log and "U-mIoU" in console_log
    # paths are not wrapped at 80 columns although COLUMNS says 80
    assert str(batch) in final
    # --device auto (the default): the record says which device that was
    (run,) = batch.glob("spnet__*")
    env = json.loads((run / "run.json").read_text())["environment"]
    assert env["device_requested"] == "auto" and env["device"] == "cpu"
