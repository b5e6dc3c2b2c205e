"""Engine behaviours: loss routing, NaN stop, stage reuse equals fresh training, Ctrl-C."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers.settings import TINY
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.loop import apply_updates
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import Stage, Update
from zsseg_bench.runs.train import RunRequest, run_one


def test_apply_updates_routes_each_loss_to_its_optimizer():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    x = torch.ones(1, 2)
    out_a, out_b = a(x), b(x)
    losses = {"la": (out_a + out_b).sum(), "lb": (out_a * out_b).sum()}
    opts = {"A": (torch.optim.SGD(a.parameters(), lr=1.0), None), "B": (torch.optim.SGD(b.parameters(), lr=1.0), None)}
    before_a, before_b = a.weight.detach().clone(), b.weight.detach().clone()
    oa, ob = out_a.detach(), out_b.detach()
    apply_updates(losses, Stage("s", 1, [Update("la", "A"), Update("lb", "B")]), opts)
    # a moved by d(la)/da = x only; b moved by d(lb)/db = out_a * x only.
    assert torch.allclose(a.weight, before_a - x)
    assert torch.allclose(b.weight, before_b - oa * x)
    del ob


def test_nan_loss_stops_with_loss_name_and_iteration(tmp_path):
    req = RunRequest("spnet", overrides=[*TINY, "train.lr=1e30", "train.head_lr_mult=1e6"], out=tmp_path)
    with pytest.raises(ZsbenchError, match=r"loss 'loss' is (nan|inf) at iteration \d+ of stage 'train'"):
        run_one(req)
    (run,) = tmp_path.iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "loss 'loss'" in info["error"]
    assert not (run / "metrics.json").exists()


def test_reused_stages_equal_fresh_training(tmp_path):
    from zsseg_bench.engine.loop import StageCache

    cache = StageCache()
    run_one(RunRequest("spnet", overrides=TINY, out=tmp_path / "a"), cache=cache)
    reused = run_one(RunRequest("spnet-c", overrides=TINY, out=tmp_path / "a"), cache=cache)
    fresh = run_one(RunRequest("spnet-c", overrides=TINY, out=tmp_path / "b"))
    assert json.loads((reused / "run.json").read_text())["reused_stages"]
    assert not json.loads((fresh / "run.json").read_text())["reused_stages"]
    assert (reused / "metrics.json").read_text() == (fresh / "metrics.json").read_text()


def test_ctrl_c_marks_run_interrupted(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunContext, "run_stage", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_one(RunRequest("spnet", overrides=TINY, out=tmp_path))
    (run,) = tmp_path.iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and not (run / "metrics.json").exists()


def test_training_and_bench_take_the_one_engine_step(tmp_path, monkeypatch):
    """`zsbench run` and `zsbench bench` both go through engine.loop.train_step: patching it is seen by both."""
    from zsseg_bench.engine import loop
    from zsseg_bench.runs.bench import BenchSpec, run_bench

    calls: list[str] = []
    real = loop.train_step

    def spy(method, stage, batch, iteration, *args):
        calls.append(f"{stage.name}@{iteration}")
        return real(method, stage, batch, iteration, *args)

    monkeypatch.setattr(loop, "train_step", spy)
    run_one(RunRequest("spnet", overrides=[*TINY, "train.iterations=4"], out=tmp_path))
    assert calls == [f"train@{i}" for i in range(4)]
    calls.clear()
    run_bench(BenchSpec(method="spnet", crop=16, batch=2, eval_size=16, warmup=1, repeats=2, evaluate=False,
                        overrides=["backbone.width=8"]))
    assert calls == ["train@0"] * (1 + 1 + 2)  # FLOP count, warm-up, timed repeats


def test_bench_stops_on_a_non_finite_loss_with_one_line():
    from zsseg_bench.runs.bench import BenchSpec, run_bench

    spec = BenchSpec(method="spnet", crop=16, batch=2, eval_size=16, warmup=3, repeats=1, evaluate=False,
                     overrides=["backbone.width=8", "train.lr=1e30", "train.head_lr_mult=1e6"])
    with pytest.raises(ZsbenchError, match=r"bench spnet fp32: loss 'loss' is (nan|inf) in a training step"):
        run_bench(spec)
