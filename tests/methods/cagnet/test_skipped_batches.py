"""CaGNet skips a real batch whose label map is empty at one of the multi-scale outputs' resolutions
(the official `MeaninglessError`), instead of stopping the run on a NaN cross-entropy, and counts the
skipped batches in the run record's method facts."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.engine.loop import train_step
from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.methods import ClassSpace
from zsseg_bench.methods.cagnet.model import CaGNet
from zsseg_bench.methods.cagnet.patch import CaGNetPatch

pytestmark = pytest.mark.usefixtures("one_thread")

IGNORE = 255
SIZE = 65  # DeepLab outputs 9x9 (x1.0 and max), 5x5 (x0.5) and 7x7 (x0.75)
# torch's nearest keeps source rows/columns floor(i * 65 / n): 0, 7, 14, ... at 9; 0, 13, 26, ... at 5;
# 0, 9, 18, ... at 7. Pixel (7, 7) survives only at 9x9, (9, 9) only at 7x7: with both labelled,
# every label map but the x0.5 one has a labelled pixel.
ONLY_FULL, ONLY_THREE_QUARTERS = (7, 7), (9, 9)


def _model(cls=CaGNet):
    torch.manual_seed(0)
    seen = torch.tensor([True, True, True, False])
    classes = ClassSpace(("a", "b", "c", "d"), seen, torch.nn.functional.normalize(torch.randn(4, 8), dim=1), IGNORE)
    sections = {"feature_dim": 8, "backbone": {"name": "deeplabv2-resnet101", "blocks": [1, 1, 1, 1], "msc": True,
                                               "msc_eval": "scale1", "init": None},
                "context": {"hidden": 4}, "generator": {"hidden": [8], "dropout": [0.1]}, "discriminator": {"hidden": 8},
                "step1": {"iterations": 2, "lr": 0.01, "lr_D": 1e-3, "lr_G": 1e-3},
                "finetune": {"iterations": 4, "interval": 2, "lr_D": 1e-3, "lr_G": 1e-3}}
    if cls is CaGNetPatch:
        sections.update(pixelcnn={"iterations": 1, "channels": 4, "layers": 2, "kernel": 3}, patch={"size": 3})
    cfg = card_config("cagnet-pa" if cls is CaGNetPatch else "cagnet-pi", **sections)
    return cls(cfg, classes)


def _batch(*pixels):
    label = torch.full((1, SIZE, SIZE), IGNORE)
    for row, col in pixels:
        label[0, row, col] = 1
    return {"image": torch.randn(1, 3, SIZE, SIZE), "label": label}


def _step(model, stage, batch, iteration=0):
    model.on_stage_start(stage, None)
    optimizers = model.configure_optimizers(stage)
    return train_step(model, stage, batch, iteration, optimizers, torch.device("cpu"), "fp32")


def test_the_batch_has_labels_at_every_scale_but_one():
    model = _model()
    model.train()
    outs, _ = model.encode(_batch()["image"], sample=True)
    sizes = [tuple(o.shape[-2:]) for o in outs]
    assert sizes == [(9, 9), (5, 5), (7, 7), (9, 9)]  # x1.0, x0.5, x0.75, max
    label = _batch(ONLY_FULL, ONLY_THREE_QUARTERS)["label"]
    labelled = [bool((label_maps_at(label, s) != IGNORE).any()) for s in sizes]
    assert labelled == [True, False, True, True]


@pytest.mark.parametrize("cls", [CaGNet, CaGNetPatch])
def test_an_empty_half_scale_label_map_skips_the_step(cls):
    model = _model(cls)
    step1 = model.stages()[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = _step(model, step1, _batch(ONLY_FULL, ONLY_THREE_QUARTERS))  # NonFiniteLoss before the fix
    assert losses == {}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing was updated
    assert model.after_training(None)["skipped_batches"] == 1
    # a batch labelled at every scale (pixel (0, 0) survives everywhere) trains and is not counted
    losses = _step(model, step1, _batch(ONLY_FULL, (0, 0)), 1)
    assert {"loss_D", "loss_B", "loss_G"} <= set(losses) and all(bool(v.isfinite()) for v in losses.values())
    assert model.after_training(None)["skipped_batches"] == 1


def test_the_finetune_real_blocks_skip_and_count_too():
    model = _model()
    mixed = model.stages()[1]
    assert mixed.uses_batch(0)
    assert _step(model, mixed, _batch(ONLY_FULL, ONLY_THREE_QUARTERS)) == {}
    assert model.after_training(None)["skipped_batches"] == 1
