"""`zsbench run --init / --resume / --set engine.*` from the command line."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.engine.checkpoint_format import load_checkpoint

TINY = ["--set", "train.iterations=4", "--set", "dataset.n_train=16", "--set", "dataset.n_test=4",
        "--set", "dataset.size=32", "--set", "data.batch_size=4", "--set", "backbone.width=8"]


def _run(*args):
    return CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("src")
    result = _run("spnet", "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    return next(p for p in out.glob("*/spnet__*"))


def test_init_from_a_checkpoint(source_run, tmp_path):
    ckpt = source_run / "ckpt" / "final.pt"
    # one iteration at learning rate 0: the weights stay the loaded ones (iterations must be >= 1)
    result = _run("spnet", "--out", str(tmp_path), "--init", str(ckpt), *TINY, "--set", "train.iterations=1",
                  "--set", "train.lr=0")
    assert result.exit_code == 0, result.output
    run = next(tmp_path.glob("*/spnet__*"))
    info = json.loads((run / "run.json").read_text())
    init = info["backbone_init"]
    assert init["layout"] == "zsseg-bench checkpoint (spnet)" and init["loaded"] > 0 and len(init["sha256"]) == 64
    cfg = (run / "config.yaml").read_text()
    assert str(ckpt.resolve()) in cfg
    # no learning: the backbone's weights are exactly the loaded ones (BatchNorm statistics still move)
    before, after = load_checkpoint(ckpt)["state_dict"], load_checkpoint(run / "ckpt" / "final.pt")["state_dict"]
    weights = [k for k in before if k.startswith("backbone.") and "running_" not in k and "num_batches" not in k]
    assert weights and all(torch.equal(before[k], after[k]) for k in weights)


def test_bad_init_leaves_nothing_behind(source_run, tmp_path):
    result = _run("spnet", "--out", str(tmp_path), "--init", str(tmp_path / "missing.pth"), *TINY)
    assert result.exit_code == 2 and "no such file" in result.output
    wider = _run("spnet", "--out", str(tmp_path), "--init", str(source_run / "ckpt" / "final.pt"), *TINY,
                 "--set", "backbone.width=16")
    assert wider.exit_code == 2 and "wrong-shaped" in wider.output and "Traceback" not in wider.output
    assert list(tmp_path.iterdir()) == []


def test_engine_options_are_checked(tmp_path):
    result = _run("spnet", "--out", str(tmp_path), *TINY, "--set", "engine.precison=bf16")
    assert result.exit_code == 2 and "engine.precison: unknown key (did you mean 'precision'?)" in result.output
    result = _run("spnet", "--out", str(tmp_path), *TINY, "--set", "engine.checkpoint_every=-1")
    assert result.exit_code == 2 and "checkpoint_every" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_resume_from_the_command_line(tmp_path):
    from tests.helpers.interrupt import StopAt
    from zsseg_bench.runs.train import RunRequest, run_one

    overrides = [TINY[i + 1] for i in range(0, len(TINY), 2)] + ["engine.checkpoint_every=2"]
    with pytest.raises(KeyboardInterrupt):
        run_one(RunRequest(method="spnet", overrides=overrides, out=tmp_path), reporter=StopAt(3))
    cut = next(tmp_path.iterdir())
    result = _run("--resume", str(cut), "--set", "log_every=1")
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "comparison" in result.output
    resumed = [p for p in tmp_path.iterdir() if (p / "run.json").is_file() and p != cut]
    info = json.loads((resumed[0] / "run.json").read_text())
    assert info["resumed_from"]["iteration"] == 2 and info["resume_overrides"] == ["log_every=1"]
    assert _run("--resume", str(cut), "spnet").exit_code == 2  # no method names with --resume
