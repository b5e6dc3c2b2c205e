"""A MaskFormer-style segmenter (Cheng et al., NeurIPS 2021), written for the harness (no detectron2).

backbone -> pixel decoder (an FPN over the backbone's levels, GroupNorm, MaskFormer's
`BasePixelDecoder`) -> per-pixel mask features [B, D_mask, H/4, W/4] (at the finest level);
transformer decoder (DETR's post-norm decoder, N learnt queries, cross-attention to the coarsest
level plus a sine position encoding) -> per layer and query: class logits over K + no-object and a
mask embedding whose dot product with the mask features gives the query's mask logits. Every
decoder layer's outputs are returned for deep supervision (the last one is the prediction).

Semantic inference (MaskFormer's `semantic_inference`): scores[c] = sum over queries of
softmax(class)[c] x sigmoid(mask), no-object dropped.

Backbones: any registered harness backbone. One with `pyramid(x)` (the ResNet-50 here) gives
several levels; any other gives its single feature map, which is then both the mask-feature
level and, average-pooled by `model.memory_pool`, the transformer's input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.methods.common.backbones import build_backbone

__all__ = ["MaskFormerSegmenter", "PixelDecoder", "TransformerDecoder", "sine_position", "semantic_scores"]


def sine_position(x: torch.Tensor, dim: int) -> torch.Tensor:
    """DETR's normalised 2-D sine encoding [B, dim, H, W] for a map x [B, *, H, W]."""
    b, _, h, w = x.shape
    half = dim // 2
    y = torch.arange(1, h + 1, device=x.device, dtype=torch.float32)[:, None].expand(h, w) / h * 2 * math.pi
    xx = torch.arange(1, w + 1, device=x.device, dtype=torch.float32)[None, :].expand(h, w) / w * 2 * math.pi
    freq = 10000 ** (2 * (torch.arange(half, device=x.device) // 2) / half)
    py, px = y[None] / freq[:, None, None], xx[None] / freq[:, None, None]
    py = torch.stack([py[0::2].sin(), py[1::2].cos()], 1).flatten(0, 1)
    px = torch.stack([px[0::2].sin(), px[1::2].cos()], 1).flatten(0, 1)
    return torch.cat([py, px], 0)[None].expand(b, -1, -1, -1).to(x.dtype)


def _conv_gn(cin: int, cout: int, kernel: int, groups: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.GroupNorm(groups, cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class PixelDecoder(nn.Module):
    """FPN: lateral 1x1 + top-down nearest upsampling + 3x3 output convs; mask features by a 3x3 conv."""

    def __init__(self, in_channels: list[int], conv_dim: int, mask_dim: int, groups: int = 32):
        super().__init__()
        groups = math.gcd(groups, conv_dim)
        self.lateral = nn.ModuleList(_conv_gn(c, conv_dim, 1, groups, False) for c in in_channels[:-1])
        self.output = nn.ModuleList(_conv_gn(conv_dim, conv_dim, 3, groups, True) for _ in in_channels[:-1])
        self.top = _conv_gn(in_channels[-1], conv_dim, 3, groups, True)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 3, padding=1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        y = self.top(levels[-1])
        for i in range(len(levels) - 2, -1, -1):
            y = self.lateral[i](levels[i]) + F.interpolate(y, size=levels[i].shape[-2:], mode="nearest")
            y = self.output[i](y)
        return self.mask_features(y)


class _DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt, query_pos, memory, memory_pos):
        q = tgt + query_pos
        tgt = self.norms[0](tgt + self.drop(self.self_attn(q, q, tgt, need_weights=False)[0]))
        tgt = self.norms[1](tgt + self.drop(self.cross_attn(tgt + query_pos, memory + memory_pos, memory,
                                                            need_weights=False)[0]))
        return self.norms[2](tgt + self.drop(self.ffn(tgt)))


class TransformerDecoder(nn.Module):
    """Post-norm DETR decoder; returns every layer's output after the shared final LayerNorm [L, B, N, D]."""

    def __init__(self, dim: int, heads: int, ffn: int, layers: int, queries: int, dropout: float):
        super().__init__()
        self.query_embed = nn.Embedding(queries, dim)
        self.layers = nn.ModuleList(_DecoderLayer(dim, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, memory: torch.Tensor, memory_pos: torch.Tensor) -> torch.Tensor:
        b = memory.shape[0]
        query_pos = self.query_embed.weight[None].expand(b, -1, -1)
        tgt = torch.zeros_like(query_pos)
        outs = []
        for layer in self.layers:
            tgt = layer(tgt, query_pos, memory, memory_pos)
            outs.append(self.norm(tgt))
        return torch.stack(outs)


class MaskFormerSegmenter(nn.Module):
    """backbone + pixel decoder + transformer decoder + class head + mask-embedding MLP."""

    def __init__(self, cfg: dict, num_classes: int):
        super().__init__()
        m = cfg["model"]
        self.backbone = build_backbone(cfg["backbone"], m["backbone_channels"])
        channels = list(getattr(self.backbone, "pyramid_channels", [m["backbone_channels"]]))
        self.pixel_decoder = PixelDecoder(channels, m["conv_dim"], m["mask_dim"], m["gn_groups"])
        self.input_proj = nn.Conv2d(channels[-1], m["hidden_dim"], 1)
        self.memory_pool = m["memory_pool"]
        self.decoder = TransformerDecoder(m["hidden_dim"], m["heads"], m["ffn_dim"], m["decoder_layers"],
                                          m["queries"], m["dropout"])
        self.class_head = nn.Linear(m["hidden_dim"], num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(m["hidden_dim"], m["hidden_dim"]), nn.ReLU(inplace=True),
                                        nn.Linear(m["hidden_dim"], m["hidden_dim"]), nn.ReLU(inplace=True),
                                        nn.Linear(m["hidden_dim"], m["mask_dim"]))

    def levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        pyramid = getattr(self.backbone, "pyramid", None)
        return list(pyramid(images)) if pyramid is not None else [self.backbone(images)]

    def forward(self, images: torch.Tensor) -> dict:
        """{"class_logits": [L, B, N, K+1], "mask_logits": [L, B, N, h, w], "mask_features": [B, D, h, w]}."""
        levels = self.levels(images)
        mask_features = self.pixel_decoder(levels)
        coarsest = levels[-1] if self.memory_pool == 1 else F.avg_pool2d(levels[-1], self.memory_pool, ceil_mode=True)
        memory = self.input_proj(coarsest)
        pos = sine_position(memory, memory.shape[1])
        hs = self.decoder(memory.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2))
        masks = torch.einsum("lbnc,bchw->lbnhw", self.mask_embed(hs), mask_features)
        return {"class_logits": self.class_head(hs), "mask_logits": masks, "mask_features": mask_features}


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor, classes=None) -> torch.Tensor:
    """[B, N, K+1] x [B, N, h, w] -> [B, K, h, w] (or only the columns `classes`)."""
    prob = class_logits.float().softmax(-1)[..., :-1]
    if classes is not None:
        prob = prob[..., classes]
    return torch.einsum("bnk,bnhw->bkhw", prob, mask_logits.float().sigmoid())
