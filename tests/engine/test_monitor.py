"""TensorBoard events and periodic evaluation on held-out training images (engine/monitor.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.settings import TINY
from zsseg_bench.cli import app
from zsseg_bench.engine.options import EngineOptions
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.prepare import hold_out

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_held_out_images_leave_training_and_depend_on_the_seed():
    indices = np.arange(100, 160)
    train, held = hold_out(indices, 12, seed=3)
    assert len(held) == 12 and len(train) == 48 and not set(train) & set(held)
    assert set(train) | set(held) == set(indices)
    assert (hold_out(indices, 12, seed=3)[1] == held).all() and not (hold_out(indices, 12, seed=4)[1] == held).all()
    assert hold_out(indices, 0, seed=3) == (indices, None)
    with pytest.raises(ZsbenchError, match="heldout_images=60"):
        hold_out(indices, 60, seed=0)


def test_periodic_evaluation_needs_held_out_images():
    with pytest.raises(ZsbenchError, match="eval_every needs engine.heldout_images"):
        EngineOptions.from_cfg({"engine": {"eval_every": 10}})


def test_missing_tensorboard_is_one_line_before_any_folder(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    result = CliRunner().invoke(app, ["run", "spnet", "--out", str(tmp_path / "runs"),
                                      *_sets([*TINY, "engine.tensorboard=true"])])
    assert result.exit_code == 2 and "pip install tensorboard" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_tensorboard_gets_losses_learning_rates_and_held_out_evaluation(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = CliRunner().invoke(app, ["run", "spnet", "--out", str(tmp_path), "--no-report", *_sets(
        [*TINY, "engine.tensorboard=true", "engine.heldout_images=16", "engine.eval_every=10"])])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.glob("*/spnet__*")
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train/loss", "lr/train/main", "heldout/train/S-mIoU"} <= tags, tags
    assert [e.step for e in events.Scalars("heldout/train/S-mIoU")] == [10, 20, 25]  # every 10 and the end
    assert [e.step for e in events.Scalars("loss/train/loss")] == [10, 20, 25]  # log_every=10
    lines = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert sum("heldout" in line for line in lines) == 3
    info = json.loads((run / "run.json").read_text())
    assert info["dataset"]["n_train_used"] == 96 - 16 and info["engine"]["heldout_images"] == 16
