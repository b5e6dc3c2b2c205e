"""Two processes on CPU (gloo): sharded evaluation with an all-reduced confusion matrix equals
the single-process one for the same weights; training keeps the ranks' weights identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.helpers.configs import card_config
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.evaluate import evaluate_confusion
from zsseg_bench.methods import IMPLEMENTATIONS
from zsseg_bench.runs.prepare import class_space

CFG = card_config("spnet", backbone={"width": 8, "init": None}, train={"iterations": 4, "lr": 0.01}, data={"batch_size": 4},
                  eval={"batch_size": 3})


def _setup():
    from zsseg_bench.datasets.synthetic import SyntheticSegmentation
    from zsseg_bench.embeddings.base import split_embeddings

    split = load_split("synthetic-9-3")
    train = SyntheticSegmentation("train", count=16, size=24)
    test = SyntheticSegmentation("test", count=11, size=24)  # 11 images: uneven shards (6 + 5)
    emb = split_embeddings(split, train, CFG["embeddings"])
    classes = class_space(split, emb)
    ctx = RunContext(split=split, train_set=train, device=torch.device("cpu"), seed=0, cfg=CFG)
    torch.manual_seed(0)
    method = IMPLEMENTATIONS.get("spnet")(CFG, classes)
    return split, test, ctx, method


def _worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        split, test, ctx, method = _setup()
        method.load_state_dict(torch.load(os.path.join(folder, "weights.pt")))
        confusion = evaluate_confusion(method, ctx, test, ctx.eval_lut, split.num_classes)
        if rank == 0:
            np.save(os.path.join(folder, "distributed.npy"), confusion)
        # a few training iterations: gradients are averaged, so the ranks stay identical
        ctx.fit(method)
        flat = torch.cat([p.detach().flatten() for p in method.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        if rank == 0:
            torch.save(torch.stack(gathered), os.path.join(folder, "trained.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes(tmp_path):
    split, test, ctx, method = _setup()
    torch.save(method.state_dict(), tmp_path / "weights.pt")
    single = evaluate_confusion(method, ctx, test, ctx.eval_lut, split.num_classes)
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    distributed = np.load(tmp_path / "distributed.npy")
    assert single.sum() > 0
    assert np.array_equal(distributed, single)
    trained = torch.load(tmp_path / "trained.pt")
    initial = torch.cat([p.detach().flatten() for p in method.parameters()])
    assert torch.equal(trained[0], trained[1])  # the ranks agree
    assert not torch.equal(trained[0], initial)  # and they did train


@pytest.mark.slow
def test_zsbench_run_gpus_relaunches_under_torchrun(tmp_path):
    # `--gpus 2 --device cpu`: two gloo processes started by torchrun; one run record, by rank 0.
    cmd = [sys.executable, "-m", "zsseg_bench.cli", "run", "spnet", "--gpus", "2", "--device", "cpu",
           "--out", str(tmp_path), "--set", "train.iterations=2", "--set", "dataset.n_train=8",
           "--set", "dataset.n_test=3", "--set", "dataset.size=24", "--set", "data.batch_size=4",
           "--set", "backbone.width=8"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = list(tmp_path.glob("*/spnet__*"))
    assert len(runs) == 1
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["status"] == "ok" and info["engine"]["processes"] == 2
    assert "--gpus 2" in info["command"]
