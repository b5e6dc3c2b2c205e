"""SimFormer's optimiser (detectron2's MaskFormer recipe): AdamW, the backbone at lr x backbone_lr_mult, no
weight decay on normalisation layers and query embeddings, poly schedule without warm-up, and the
full model's gradient norm clipped before every step (detectron2's `full_model` clipping wraps the
optimiser's step the same way)."""

from __future__ import annotations

import torch
from torch import nn

from zsseg_bench.methods.common.optim import poly_lambda

__all__ = ["ClippedAdamW", "adamw_poly", "param_groups"]

_NO_DECAY = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d, nn.Embedding)


class ClippedAdamW(torch.optim.AdamW):
    def __init__(self, params, clip_norm: float = 0.0, **kwargs):
        super().__init__(params, **kwargs)
        self.clip_norm = clip_norm

    def step(self, closure=None):
        if self.clip_norm > 0:
            params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
        return super().step(closure)


def param_groups(segmenter: nn.Module, extra: list[nn.Module], lr: float, backbone_mult: float, weight_decay: float):
    """Trainable parameters in (backbone or not) x (decayed or not) groups."""
    groups: dict[tuple[bool, bool], list] = {}
    seen: set[int] = set()
    for owner in [segmenter, *extra]:
        for module_name, module in owner.named_modules():
            for name, p in module.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                backbone = owner is segmenter and module_name.startswith("backbone")
                groups.setdefault((backbone, isinstance(module, _NO_DECAY)), []).append(p)
    return [{"params": ps, "lr": lr * (backbone_mult if bb else 1.0), "weight_decay": 0.0 if nd else weight_decay}
            for (bb, nd), ps in groups.items()]


def adamw_poly(segmenter: nn.Module, extra: list[nn.Module], lr: float, iterations: int, schedule: dict):
    groups = param_groups(segmenter, extra, lr, schedule["backbone_lr_mult"], schedule["weight_decay"])
    opt = ClippedAdamW(groups, clip_norm=schedule["clip_norm"], lr=lr, weight_decay=schedule["weight_decay"])
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, poly_lambda(iterations, schedule["poly_power"]))
