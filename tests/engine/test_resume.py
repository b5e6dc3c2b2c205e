"""Checkpoints and --resume: an interrupted and resumed run ends exactly like an uninterrupted
one (CPU, deterministic); a diverging run keeps its last good checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers.configs import card_config
from tests.helpers.interrupt import StopAt
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.datasets.synthetic import SyntheticSegmentation
from zsseg_bench.engine.checkpoint_format import load_checkpoint
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.loop import Reporter
from zsseg_bench.engine.resume import ResumePoint, TrainingCheckpoints
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import Method, Stage
from zsseg_bench.methods.common.optim import sgd_poly
from zsseg_bench.runs.train import RunRequest, resume_request, run_one

TINY = ["train.iterations=8", "dataset.n_train=16", "dataset.n_test=4", "dataset.size=32", "data.batch_size=4",
        "backbone.width=8", "engine.checkpoint_every=3", "engine.deterministic=true", "log_every=2"]


def _losses(run_dir):
    return [(r["iteration"], r["losses"]) for r in map(json.loads, (run_dir / "train_log.jsonl").open())]


def test_resumed_run_equals_uninterrupted(tmp_path):
    full = run_one(RunRequest(method="spnet", overrides=TINY, out=tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        run_one(RunRequest(method="spnet", overrides=TINY, out=tmp_path / "cut"), reporter=StopAt(7))
    cut = next((tmp_path / "cut").iterdir())
    cut_run = json.loads((cut / "run.json").read_text())
    assert cut_run["status"] == "interrupted" and not (cut / "metrics.json").exists()
    # 16 images in batches of 4: iteration 7 is in the second epoch, the checkpoint at 6 too
    assert load_checkpoint(cut / "ckpt" / "last.pt")["training"]["iteration"] == 6

    resumed = run_one(resume_request(cut))
    assert resumed.parent == cut.parent and resumed != cut
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "ok"
    assert info["resumed_from"] == {"run": str(cut), "checkpoint": "ckpt/last.pt", "stage": "train",
                                    "stage_index": 0, "iteration": 6, "stage_complete": False}
    # the interrupted record is untouched, its checkpoint still there
    assert json.loads((cut / "run.json").read_text()) == cut_run
    assert (cut / "ckpt" / "last.pt").is_file() and not (resumed / "ckpt" / "last.pt").exists()
    # same confusion matrix, same final weights, same logged losses
    assert np.array_equal(np.load(full / "confusion.npy"), np.load(resumed / "confusion.npy"))
    a, b = (load_checkpoint(p / "ckpt" / "final.pt")["state_dict"] for p in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(full) == _losses(resumed)
    # a finished run is not resumed
    with pytest.raises(ZsbenchError, match="finished"):
        resume_request(resumed)


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_one(RunRequest(method="spnet", overrides=TINY, out=tmp_path), reporter=StopAt(2))
    with pytest.raises(ZsbenchError, match="no training checkpoint"):
        resume_request(next(tmp_path.iterdir()))


class TwoStages(Method):
    """Stage b depends on the weights at its start (on_stage_start), draws global random numbers
    and reuses each batch for two iterations: everything resuming has to get right."""

    impl = "test-two-stages"

    def __init__(self, cfg, classes, nan_at=None, poison_at=None):
        super().__init__(cfg, classes)
        self.net = nn.Conv2d(3, classes.num_classes, 3, padding=1)
        self.spare = nn.Parameter(torch.zeros(3))  # not in the loss: poisoning it keeps the loss finite
        self.anchor = 0.0
        self.nan_at, self.poison_at = nan_at, poison_at

    def stages(self):
        return [Stage("a", 5), Stage("b", 9, uses_batch=lambda it: it % 2 == 0)]

    def configure_optimizers(self, stage):
        return {"main": sgd_poly([{"params": list(self.parameters())}], 0.05, stage.iterations)}

    def on_stage_start(self, stage, ctx):
        if stage.name == "b":
            self.anchor = float(self.net.weight.detach().sum())  # not in the state dict

    def training_step(self, batch, stage, iteration):
        if stage.name == "b" and iteration == self.poison_at:
            with torch.no_grad():
                self.spare.fill_(float("nan"))
        logits = self.net(F.dropout(batch["image"], 0.3, training=True))  # global RNG
        loss = F.cross_entropy(logits, batch["label"], ignore_index=255) + 1e-3 * self.anchor * self.net.bias.sum()
        if stage.name == "b" and iteration == self.nan_at:
            loss = loss * float("nan")
        return {"loss": loss}

    def predict(self, images, size=None):
        return self.net(images)


@pytest.fixture(scope="module")
def setting():
    from zsseg_bench.embeddings.base import split_embeddings
    from zsseg_bench.runs.prepare import class_space

    split = load_split("synthetic-9-3")
    data = SyntheticSegmentation("train", count=24, size=16)
    emb = split_embeddings(split, data, {"provider": "dataset"})
    classes = class_space(split, emb)
    return split, data, classes


def _fit(setting, folder, resume=None, reporter=None, every=3, **kw):
    split, data, classes = setting
    cfg = card_config("spnet", data={"batch_size": 4}, engine={"deterministic": True})
    ctx = RunContext(split=split, train_set=data, device=torch.device("cpu"), seed=0, cfg=cfg,
                       reporter=reporter or Reporter())
    torch.manual_seed(0)
    method = TwoStages(cfg, classes, **kw)
    ckpts = TrainingCheckpoints(folder, every, method_name="two", split=split, config=cfg, resume=resume)
    ctx.fit(method, checkpoints=ckpts)
    return method


def test_resume_in_a_later_stage(setting, tmp_path):
    ref = _fit(setting, tmp_path / "ref")
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["last.pt", "stage-0.pt"]
    with pytest.raises(KeyboardInterrupt):
        _fit(setting, tmp_path / "cut", reporter=StopAt(5, "b"))
    payload = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert payload["training"]["stage_index"] == 1 and payload["training"]["iteration"] == 3
    assert payload["training"]["batch"] is not None  # iteration 3 reuses the batch of iteration 2
    (tmp_path / "run" / "ckpt").mkdir(parents=True)
    for f in ("last.pt", "stage-0.pt"):
        (tmp_path / "cut" / f).rename(tmp_path / "run" / "ckpt" / f)
    point = ResumePoint.load(tmp_path / "run", "two", setting[0])
    resumed = _fit(setting, tmp_path / "again", resume=point)
    assert resumed.anchor == ref.anchor
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(setting, tmp_path):
    with pytest.raises(ZsbenchError) as err:
        _fit(setting, tmp_path, nan_at=7)
    msg = str(err.value)
    assert "loss 'loss' is nan at iteration 8 of stage 'b'" in msg
    assert "the last good checkpoint is" in msg and "iteration 6" in msg
    payload = load_checkpoint(tmp_path / "last.pt")
    assert (payload["training"]["stage_name"], payload["training"]["iteration"]) == ("b", 6)
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())


def test_non_finite_weights_are_never_checkpointed(setting, tmp_path):
    # The weights turn NaN at iteration 5 with a loss that is still finite: the checkpoint due
    # at iteration 6 refuses them and the one of iteration 3 stays.
    with pytest.raises(ZsbenchError, match="weights became non-finite by iteration 6 of stage 'b'.*iteration 3"):
        _fit(setting, tmp_path, poison_at=4, every=3)
    payload = load_checkpoint(tmp_path / "last.pt")
    assert payload["training"]["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())
