"""The real-data path: MaskFormer's COCO-Stuff-10K and ADE20K layouts (generated small) pass `zsbench data
check`, COCO-Stuff-10K drops SimFormer's seven skipped training images, and simformer trains on both
through the weak-shot data path (tiny network and schedule: the layout and data path are under test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.datasets import make_ade20k, make_cocostuff10k, write_pair
from zsseg_bench.cli.app import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.cocostuff import SIMFORMER_SKIPPED
from zsseg_bench.runs.train import RunRequest, run_one

TINY = ["backbone.name=small-cnn", "backbone.init_parts=all", "data.crop=32", "data.scale=null", "data.batch_size=2",
        "data.num_workers=0", "eval.short_side=32", "log_every=1",
        "model.backbone_channels=16", "model.conv_dim=16", "model.mask_dim=16", "model.hidden_dim=16", "model.heads=2",
        "model.ffn_dim=32", "model.decoder_layers=2", "model.queries=8", "model.gn_groups=4",
        "transfer.points=8", "transfer.simnet_hidden=8",
        "schedule.seg.iterations=2", "schedule.seg.batch_size=2", "schedule.crosim.iterations=2",
        "schedule.crosim.batch_size=4", "schedule.retraining.iterations=2", "schedule.retraining.batch_size=2"]


def _coco_tree(tmp_path):
    base = make_cocostuff10k(tmp_path / "c10", n_train=4, n_test=2, size=(40, 48))
    rng = np.random.default_rng(1)
    for name in SIMFORMER_SKIPPED[:2]:
        write_pair(base / "images_detectron2" / "train" / f"{name}.jpg",
                   base / "annotations_detectron2" / "train" / f"{name}.png", rng, (40, 48), values=range(0, 171),
                   background=255, border=None)
    return base


def test_cocostuff10k_skips_simformers_images(tmp_path):
    root = _coco_tree(tmp_path)
    kept = build_dataset("cocostuff10k", "train", str(root), {})
    everything = build_dataset("cocostuff10k", "train", str(root), {"skip_images": "none"})
    assert (len(kept), len(everything)) == (4, 6)
    assert not {s.image.stem for s in kept.samples} & set(SIMFORMER_SKIPPED)
    assert kept.expected_size == 8993
    result = CliRunner().invoke(app, ["data", "check", "cocostuff10k", "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    assert "6 images checked, no problems" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["cocostuff10k", "ade20k"])
def test_simformer_trains_on_the_layout(tmp_path, dataset):
    if dataset == "cocostuff10k":
        root = _coco_tree(tmp_path)
    else:
        base = make_ade20k(tmp_path / "ade", n_train=4, n_val=2, detectron2=True, size=(40, 48))
        (base / "images").rename(base / "images_detectron2")  # SimFormer's data package names it so
        root = base.parent
        result = CliRunner().invoke(app, ["data", "check", "ade20k", "--data-root", str(root)])
        assert result.exit_code == 0, result.output
    run = run_one(RunRequest(method="simformer", dataset=dataset, data_root=str(root), overrides=TINY,
                             out=tmp_path / "runs"))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "ok" and info["split"]["protocol"] == "weak-shot"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["PA"] <= 1.0
    log = [json.loads(line) for line in (run / "train_log.jsonl").open()]
    assert {r["stage"] for r in log} == {"seg", "crosim", "retraining"}
