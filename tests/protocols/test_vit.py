"""The DPT-style ViT backbone (`dpt-vit`): stride-8 map of one block, timm parameter names, user weights."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.runs.prepare import RunRequest, prepare_run

TINY_VIT = {"name": "dpt-vit", "dim": 32, "depth": 3, "heads": 2, "grid": 4, "hook": 1, "features": 16}


def test_tiny_vit_gives_a_stride_8_map_and_trains():
    net = build_backbone(TINY_VIT, 12)
    x = torch.randn(2, 3, 64, 48)
    out = net(x)
    assert out.shape == (2, 12, 8, 6) and net.output_stride == 8
    out.square().mean().backward()
    assert net.patch_embed.proj.weight.grad is not None and net.blocks[2].mlp.fc1.weight.grad is None  # after the hook
    groups = net.lr_groups()
    assert len(groups["body"]) + 2 == sum(1 for _ in net.parameters())


def test_user_vit_weights_load_strictly_by_timm_names(tmp_path):
    source = build_backbone(TINY_VIT, 12)
    timm_like = {k: v for k, v in source.state_dict().items() if not k.startswith(("reassemble.", "head."))}
    timm_like["norm.weight"] = torch.ones(32)  # a full timm ViT has more keys; they are not used
    torch.save(timm_like, tmp_path / "vit.pth")
    net = build_backbone({**TINY_VIT, "vit_weights": str(tmp_path / "vit.pth")}, 12)
    assert torch.equal(net.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)
    assert net.vit_report["loaded"] == len(timm_like) - 1
    torch.save({"patch_embed.proj.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ZsbenchError, match="not a timm ViT of this size"):
        build_backbone({**TINY_VIT, "vit_weights": str(tmp_path / "bad.pth")}, 12)


def test_sazs_builds_on_the_vit_backbone():
    sets = [f"backbone.{k}={v}" for k, v in TINY_VIT.items()] + ["backbone.init=null", "dataset.n_train=8",
                                                                  "dataset.n_test=8"]
    run = prepare_run(RunRequest(method="sazs", split="synthetic-5i-f0", overrides=sets), training=False)
    logits = run.method.episode_logits(torch.randn(2, 3, 64, 64), torch.tensor([1, 5]), size=(64, 64))
    assert logits.shape == (2, 2, 64, 64)
