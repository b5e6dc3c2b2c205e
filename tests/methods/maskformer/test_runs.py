"""The weak-shot training path hands methods no novel pixel label (poison test), and SimFormer's four
stages run, end with scores over all classes and resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers.interrupt import StopAt
from tests.helpers.settings import TINY_PRETRAIN
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.datasets import build_dataset
from zsseg_bench.engine.checkpoint_format import load_checkpoint
from zsseg_bench.methods.maskformer.method import MaskFormerMethod
from zsseg_bench.runs.train import RunRequest, resume_request, run_one

SPLIT = "synthetic-ws-10-3"
TINY = ["dataset.n_train=16", "dataset.n_test=4", "dataset.size=32", "data.batch_size=4", "backbone.width=8",
        "eval.batch_size=4", "log_every=2", "engine.checkpoint_every=3", "engine.deterministic=true",
        "model.backbone_channels=16", "model.conv_dim=16", "model.mask_dim=16", "model.hidden_dim=16", "model.heads=2",
        "model.ffn_dim=32", "model.decoder_layers=2", "model.queries=8", "model.gn_groups=4",
        "transfer.points=8", "transfer.simnet_hidden=8",
        "schedule.seg.iterations=4", "schedule.seg.batch_size=4", "schedule.crosim.iterations=4",
        "schedule.crosim.batch_size=4", "schedule.retraining.iterations=5", "schedule.retraining.batch_size=4",
        *TINY_PRETRAIN]  # the synthetic block starts from the shared initialisation: a tiny one here

pytestmark = pytest.mark.slow


def _request(out, method="simformer"):
    return RunRequest(method=method, split=SPLIT, overrides=TINY, out=out)


def test_no_novel_pixel_label_reaches_training(tmp_path, monkeypatch):
    seen = []
    original = MaskFormerMethod._targets

    def recording(self, batch, stage):
        seen.append((stage.name, {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}))
        return original(self, batch, stage)

    monkeypatch.setattr(MaskFormerMethod, "_targets", recording)
    run_one(_request(tmp_path))
    split = load_split(SPLIT)
    novel = torch.from_numpy(np.flatnonzero(split.unseen_mask))
    data = build_dataset("synthetic", "train", None, {"n_train": 16, "size": 32})
    assert {name for name, _ in seen} == {"seg", "crosim", "retraining"}
    assert any(bool(b["novel_present"].any()) for _, b in seen)  # novel classes are in these images
    assert any(name == "crosim" and len(b["index"]) == 4 for name, b in seen)  # two pairs: partners were loaded
    for name, batch in seen:
        assert set(batch) <= {"image", "label", "index", "name", "novel_present"}, (name, set(batch))
        assert not torch.isin(batch["label"], novel).any(), name
        for row, index in enumerate(batch["index"].tolist()):
            raw = torch.as_tensor(data.raw_label(index))
            present = [bool((raw == split.classes.id_of(n)).any()) for n in split.unseen]
            assert batch["novel_present"][row].tolist() == present
            # the novel pixels are ignored (not relabelled as something else); flips keep the counts
            n_novel = sum(int((raw == split.classes.id_of(n)).sum()) for n in split.unseen)
            assert int((batch["label"][row] == 255).sum()) == n_novel


def test_four_stages_run_and_resume(tmp_path):
    full = run_one(_request(tmp_path / "full"))
    log = [json.loads(line) for line in (full / "train_log.jsonl").open()]
    assert [s for s in dict.fromkeys(r["stage"] for r in log)] == ["seg", "crosim", "retraining"]
    assert {"simnet", "distill", "complementary"} <= set(next(r for r in log if r["stage"] == "crosim")["losses"])
    metrics = json.loads((full / "metrics.json").read_text())
    assert np.isfinite([metrics["mIoU"], metrics["S-mIoU"], metrics["U-mIoU"]]).all()
    # Val trajectory at each quarter of every training stage (4 iterations: every iteration, plus the
    # start): the teacher's scores (end of crosim) sit beside the retrained model's.
    trajectory = json.loads((full / "run.json").read_text())["method_facts"]["diagnostics"]["val_trajectory"]
    points = [(p["stage"], p["iteration"]) for p in trajectory]
    assert points == [("seg", i) for i in range(5)] + [("crosim", i) for i in range(5)] \
        + [("retraining", i) for i in (0, 1, 2, 3, 4, 5)]

    with pytest.raises(KeyboardInterrupt):
        run_one(_request(tmp_path / "cut"), reporter=StopAt(4, "retraining"))
    cut = next((tmp_path / "cut").iterdir())
    assert load_checkpoint(cut / "ckpt" / "last.pt")["training"]["stage_index"] == 3
    resumed = run_one(resume_request(cut))
    assert np.array_equal(np.load(full / "confusion.npy"), np.load(resumed / "confusion.npy"))
    a, b = (load_checkpoint(p / "ckpt" / "final.pt")["state_dict"] for p in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
