"""CaGNet patch-wise (cagnet-pa): the PixelCNN is causal, patches are sampled and filtered with the
official knobs, tiled with one latent per patch, and classified at patch centres."""

from __future__ import annotations

import torch

from tests.helpers.configs import card_config
from zsseg_bench.methods import ClassSpace
from zsseg_bench.methods.cagnet.patch import (
    CaGNetPatch,
    LabelPixelCNN,
    MaskedConv2d,
    patch_centres,
    sample_patches,
    tile_patches,
)

IGNORE = 255


def _classes(k=6, dim=8):
    seen = torch.tensor([i % 3 != 2 for i in range(k)])
    emb = torch.nn.functional.normalize(torch.randn(k, dim, generator=torch.Generator().manual_seed(1)), dim=1)
    return ClassSpace(tuple(f"c{i}" for i in range(k)), seen, emb, IGNORE)


def _cfg(**patch):
    return card_config("cagnet-pa", **{
        "feature_dim": 12, "backbone": {"width": 8}, "context": {"hidden": 6},
        "generator": {"hidden": [16], "dropout": [0.1]}, "discriminator": {"hidden": 16},
        "step1": {"iterations": 2, "lr": 0.01, "lr_D": 1e-3, "lr_G": 1e-3},
        "finetune": {"iterations": 4, "interval": 2, "lr_D": 1e-3, "lr_G": 1e-3, "gen_unseen_rate": 9},
        "pixelcnn": {"iterations": 2, "channels": 8, "layers": 3, "kernel": 3, "patches_per_step": 64},
        "patch": {"size": 3, "bank_size": 32, "sample_batch": 64, "max_rounds": 3, **patch}})


def test_masked_convolutions_are_causal_in_raster_order():
    torch.manual_seed(0)
    net = LabelPixelCNN(4, channels=6, layers=3, kernel=3, dropout=0.0)
    emb = torch.randn(5, 4)
    inp = torch.randn(1, 4, 3, 3, requires_grad=True)
    cond = torch.randn(1, 4, 3, 3)
    out = net(inp, cond, emb)
    assert out.shape == (1, 5, 3, 3)
    for p in range(9):
        (grad,) = torch.autograd.grad(out[0, :, p // 3, p % 3].sum(), inp, retain_graph=True)
        seen_positions = grad.abs().sum(1).flatten() > 0
        assert not bool(seen_positions[p:].any()), p  # never itself or anything later
    conv = MaskedConv2d(1, 1, 3, "B")
    assert conv.mask.flatten().tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]


def test_sampled_patches_start_with_their_unseen_class():
    torch.manual_seed(0)
    net = LabelPixelCNN(4, channels=6, layers=2, kernel=3)
    table = torch.randn(6, 4)
    unseen = torch.tensor([2, 5])
    patches = sample_patches(net.eval(), table, unseen, 50, 3, first_unseen=5, topk=0.5)
    assert patches.shape == (50, 3, 3) and bool(((patches >= 0) & (patches < 6)).all())
    first = patches.flatten(1)[:, :5]
    assert bool((first == first[:, :1]).all()) and bool(torch.isin(first[:, 0], unseen).all())


def test_tiling_one_patch_per_block_and_centres():
    bank = torch.arange(4).view(4, 1, 1).expand(4, 3, 3)
    label = tile_patches(bank, 2, 3, 4)
    assert label.shape == (2, 9, 12)
    blocks = label.unfold(1, 3, 3).unfold(2, 3, 3)  # [2, 3, 4, 3, 3]
    assert bool((blocks == blocks[..., :1, :1]).all())  # each 3x3 block is one bank patch
    centres = patch_centres(label, 3, IGNORE)
    kept = centres != IGNORE
    assert int(kept.sum()) == 2 * 3 * 4
    assert torch.equal(torch.nonzero(kept[0])[:, 0].unique(), torch.tensor([1, 4, 7]))


def test_bank_filters_and_fuses_single_class_patches():
    torch.manual_seed(0)
    classes = _classes()
    model = CaGNetPatch(_cfg(threshold=5, cc_max=2, fuse_ratio=3, first_unseen=5), classes)
    model._build_bank()
    facts = model._bank_facts
    kept = facts["pixelcnn_patches_kept"]
    assert 0 < kept <= 32 and facts["single_class_patches"] == 3 * kept
    sampled = model.patch_bank[:kept]
    n_unseen = (~classes.seen[sampled]).flatten(1).sum(1)
    n_classes = torch.nn.functional.one_hot(sampled.flatten(1), 6).amax(1).sum(1)
    assert bool((n_unseen >= 5).all()) and bool((n_classes <= 2).all())
    single = model.patch_bank[kept:]
    assert bool((single == single[:, :1, :1]).all())


def test_patch_model_stages_and_classifier_iteration():
    torch.manual_seed(0)
    classes = _classes()
    model = CaGNetPatch(_cfg(), classes)
    assert model.discriminator.cls_3.weight.shape == (16, 16, 3, 3)
    assert [s.name for s in model.stages()] == ["step1", "pixelcnn", "mixed"]
    label = torch.randint(6, (2, 16, 16))
    label[~classes.seen[label]] = IGNORE
    batch = {"image": torch.randn(2, 3, 16, 16), "label": label}
    step1, pcnn, mixed = model.stages()
    model.on_stage_start(pcnn, None)
    model.train()
    loss = model.training_step(batch, pcnn, 0)["loss_P"]
    assert torch.isfinite(loss) and loss.requires_grad
    model.on_stage_end(pcnn, None)
    model.on_stage_start(mixed, None)
    assert len(model.patch_bank) > 0
    model.training_step(batch, mixed, 0)  # a step-1 block sets the feature-map shape (8x8)
    out = model.training_step({}, mixed, 2)
    assert set(out) == {"loss_D", "loss_G", "cls_transfer"} and torch.isfinite(out["cls_transfer"])
    model.eval()
    with torch.no_grad():
        assert model.predict(batch["image"], (16, 16)).shape == (2, 6, 16, 16)
