"""The MaskFormer segmenter at the official configuration (COCO-Stuff-10K card: R-50, 100 queries, 6
decoder layers, hidden 256, mask features at stride 4) on a tiny image, and the R-50 loading an
ImageNet torchvision state dict from a user path."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.maskformer.model import MaskFormerSegmenter, semantic_scores
from zsseg_bench.methods.maskformer.resnet import RESNET50_BLOCKS


def test_official_configuration_shapes():
    cfg = card_config("simformer", "cocostuff10k")
    k = load_split("cocostuff10k-ws-s1").num_classes
    assert (cfg["model"]["queries"], cfg["model"]["decoder_layers"], cfg["model"]["hidden_dim"]) == (100, 6, 256)
    torch.manual_seed(0)
    net = MaskFormerSegmenter(cfg, k).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert out["class_logits"].shape == (6, 1, 100, 172)  # 171 classes + no-object, one per decoder layer
    assert out["mask_logits"].shape == (6, 1, 100, 16, 24)  # stride 4
    assert out["mask_features"].shape == (1, 256, 16, 24)
    scores = semantic_scores(out["class_logits"][-1], out["mask_logits"][-1])
    assert scores.shape == (1, 171, 16, 24)
    # the sum over queries of class probability x mask probability
    prob = out["class_logits"][-1].softmax(-1)[..., :-1]
    manual = sum(prob[0, q, :, None, None] * out["mask_logits"][-1][0, q].sigmoid() for q in range(100))
    assert torch.allclose(scores[0], manual, atol=1e-5)


def test_synthetic_transformer_reads_the_pooled_map():
    """The synthetic card's single-level small-cnn: masks at its stride, the transformer on 1/4 of it."""
    cfg = card_config("simformer", "synthetic", ["backbone.init=null"])  # shapes only: no weights
    m = cfg["model"]
    torch.manual_seed(0)
    net = MaskFormerSegmenter(cfg, 13).eval()
    seen = []
    net.decoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    assert m["memory_pool"] == 4
    assert out["mask_logits"].shape == (m["decoder_layers"], 2, m["queries"], 32, 32)  # small-cnn stride 2
    assert seen == [(2, 8 * 8, m["hidden_dim"])]  # 32x32 pooled x4: 64 tokens


def _torchvision_resnet50_state() -> dict:
    state = {"conv1.weight": torch.randn(64, 3, 7, 7), "fc.weight": torch.randn(1000, 2048), "fc.bias": torch.zeros(1000)}

    def bn(prefix, c):
        state.update({f"{prefix}.weight": torch.rand(c), f"{prefix}.bias": torch.randn(c),
                      f"{prefix}.running_mean": torch.randn(c), f"{prefix}.running_var": torch.rand(c) + 0.5,
                      f"{prefix}.num_batches_tracked": torch.tensor(0)})

    bn("bn1", 64)
    cin = 64
    for layer, (n, mid) in enumerate(zip(RESNET50_BLOCKS, (64, 128, 256, 512)), 1):
        for i in range(n):
            p = f"layer{layer}.{i}"
            state[f"{p}.conv1.weight"] = torch.randn(mid, cin if i == 0 else mid * 4, 1, 1)
            state[f"{p}.conv2.weight"] = torch.randn(mid, mid, 3, 3)
            state[f"{p}.conv3.weight"] = torch.randn(mid * 4, mid, 1, 1)
            for j, c in ((1, mid), (2, mid), (3, mid * 4)):
                bn(f"{p}.bn{j}", c)
            if i == 0:
                state[f"{p}.downsample.0.weight"] = torch.randn(mid * 4, cin, 1, 1)
                bn(f"{p}.downsample.1", mid * 4)
        cin = mid * 4
    return state


@pytest.mark.slow  # builds and runs a full ResNet-50 (about 2 s)
def test_resnet50_loads_torchvision_imagenet_weights(tmp_path):
    state = _torchvision_resnet50_state()
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    backbone = build_backbone({"name": "resnet50-pyramid", "init": str(path), "init_parts": "body"}, 0)
    assert backbone.init_report["loaded"] == len(state) - 2  # everything but the classifier
    assert torch.equal(backbone.scale.layer4.block3.conv3x3.conv.weight, state["layer3.2.conv2.weight"])
    assert torch.equal(backbone.scale.layer2.block1.proj.bn.running_var, state["layer1.0.downsample.1.running_var"])
    levels = backbone.pyramid(torch.randn(1, 3, 64, 64))
    assert [tuple(x.shape[1:]) for x in levels] == [(256, 16, 16), (512, 8, 8), (1024, 4, 4), (2048, 2, 2)]
