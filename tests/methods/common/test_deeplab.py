"""DeepLabv2 ResNet-101: official layout, feature sizes, frozen BN, multi-scale wrapper, lr groups.

The full network is only built on the meta device (shapes, keys, arithmetic); behaviour is
checked on the same network with one block per layer (`blocks: [1, 1, 1, 1]`), which has the
same strides, dilations, frozen BN and wrapper, so that real forwards stay cheap on CPU.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers.configs import card_config
from tests.helpers.official_layout import deeplab_shapes
from zsseg_bench.methods.common.backbones import BACKBONES, build_backbone
from zsseg_bench.methods.common.deeplab import DeepLabV2MSC, FrozenBatchNorm2d


@pytest.fixture(scope="module")
def net() -> DeepLabV2MSC:
    torch.manual_seed(0)
    return build_backbone({"name": "deeplabv2-resnet101", "msc": True, "blocks": [1, 1, 1, 1]}, 16)


@pytest.fixture(scope="module")
def meta_net() -> DeepLabV2MSC:
    with torch.device("meta"):
        return build_backbone({"name": "deeplabv2-resnet101", "msc": True}, 600)


def test_registered():
    assert "deeplabv2-resnet101" in BACKBONES


def test_state_dict_is_the_official_layout(meta_net):
    # 632 entries: 6 (stem) + 33 blocks x 3 convs x 6 + 4 projections x 6 + 8 (ASPP), the
    # backbone part of CaGNet's 659-entry checkpoint.
    expected = {"scale." + k: s for k, s in deeplab_shapes(600).items()}
    ours = {k: tuple(v.shape) for k, v in meta_net.state_dict().items()}
    assert len(expected) == 632
    assert ours == expected


@pytest.mark.parametrize("size, feature", [(368, 47), (513, 65), (512, 65), (376, 48), (328, 42), (184, 24),
                                           (276, 35)])
def test_feature_sizes_match_the_official_ones(meta_net, size, feature):
    meta_net.eval()
    out = meta_net(torch.empty(2, 3, size, size, device="meta"))
    assert tuple(out.shape) == (2, 600, feature, feature)


def test_msc_pyramid_sizes_at_368(meta_net):
    meta_net.train()
    outs = meta_net(torch.empty(1, 3, 368, 368, device="meta"))
    assert [tuple(o.shape[-2:]) for o in outs] == [(47, 47), (24, 24), (35, 35), (47, 47)]


def test_meta_arithmetic_matches_a_real_forward(net, meta_net):
    # The meta device runs the same shape rules; a real forward at a size whose max-pool
    # needs ceil_mode (96 -> 48 -> 25 with ceil, 24 without -> 13 at stride 8) confirms it.
    net.eval()
    with torch.no_grad():
        real = net.scale(torch.randn(1, 3, 96, 96))
    meta = meta_net.eval().scale(torch.empty(1, 3, 96, 96, device="meta"))
    assert real.shape[-2:] == meta.shape[-2:] == (13, 13)


def test_every_batchnorm_is_frozen(net):
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 1 + 4 * 3 + 4 and all(isinstance(m, FrozenBatchNorm2d) for m in bns)
    net.train()
    assert all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    x = torch.randn(2, 3, 41, 41)
    outs = net(x)
    sum(o.sum() for o in outs).backward()
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.weight.grad is None for m in bns)
    net.zero_grad(set_to_none=True)


def test_msc_outputs_and_max_over_head_outputs(net):
    x = torch.randn(1, 3, 41, 41)
    net.train()
    with torch.no_grad():
        outs = net(x)
        assert len(outs) == 4 and [tuple(o.shape[-2:]) for o in outs] == [(6, 6), (3, 3), (4, 4), (6, 6)]
        # the fused map is the max of the three, the small ones bilinearly resized
        up = [torch.nn.functional.interpolate(o, size=(6, 6), mode="bilinear", align_corners=False)
              for o in outs[1:3]]
        assert torch.equal(outs[3], torch.maximum(torch.maximum(outs[0], up[0]), up[1]))
        # the head is applied to every scale before the max (SPNet's max is over class logits)
        neg = net(x, head=lambda f: -f)
        assert torch.equal(neg[0], -outs[0])
        up_neg = [-u for u in up]
        assert torch.equal(neg[3], torch.maximum(torch.maximum(-outs[0], up_neg[0]), up_neg[1]))
        net.eval()
        assert torch.equal(net(x), outs[3])
        net.msc_eval = "scale1"  # CaGNet classifies the 1.0 scale at test time
        try:
            assert torch.equal(net(x), outs[0])
        finally:
            net.msc_eval = "max"


def test_lr_groups_are_the_official_ones(meta_net):
    net = meta_net
    groups = net.lr_groups()
    names = {id(p): n for n, p in net.named_parameters()}
    body = [names[id(p)] for p in groups["body"]]
    assert len(body) == 1 + 33 * 3 + 4 and all(n.endswith("conv.weight") and ".layer" in "." + n for n in body)
    assert [names[id(p)] for p in groups["head_weight"]] == [f"scale.aspp.stages.c{i}.weight" for i in range(4)]
    assert [names[id(p)] for p in groups["head_bias"]] == [f"scale.aspp.stages.c{i}.bias" for i in range(4)]
    grouped = {id(p) for g in groups.values() for p in g}
    assert all(("bn." in n) for n, p in net.named_parameters() if id(p) not in grouped)


def test_options_are_checked():
    from zsseg_bench.errors import ZsbenchError

    with torch.device("meta"), pytest.raises(ZsbenchError, match="msc_eval"):
        build_backbone({"name": "deeplabv2-resnet101", "msc_eval": "mean"}, 8)


def test_stride_on_3x3_for_torchvision_weights(meta_net):
    with torch.device("meta"):
        tv = build_backbone({"name": "deeplabv2-resnet101", "stride_at": "conv3x3", "msc": False}, 8)
    assert tv.scale.layer3.block1.reduce.conv.stride == (1, 1)
    assert tv.scale.layer3.block1.conv3x3.conv.stride == (2, 2)
    assert meta_net.scale.layer3.block1.reduce.conv.stride == (2, 2)
    assert tuple(tv.eval()(torch.empty(1, 3, 368, 368, device="meta")).shape) == (1, 8, 47, 47)


def test_spnet_on_deeplab_trains_one_step():
    from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace

    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    classes = ClassSpace(tuple("abcde"), torch.tensor([1, 1, 1, 0, 0], dtype=torch.bool), emb)
    cfg = card_config("spnet", "voc12", backbone={"blocks": [1, 1, 1, 1]}, train={"iterations": 10, "lr": 1e-3})
    method = IMPLEMENTATIONS.get("spnet")(cfg, classes)
    stage = method.stages()[0]
    opts = method.configure_optimizers(stage)
    opt = opts["main"][0]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2, 2e-2])
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 5e-4, 0.0]
    batch = {"image": torch.randn(1, 3, 33, 33), "label": torch.randint(0, 5, (1, 33, 33))}
    method.train()
    loss = method.training_step(batch, stage, 0)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    method.eval()
    with torch.no_grad():
        assert method.predict(batch["image"], (33, 33)).shape == (1, 5, 33, 33)
