"""Optimizers and learning-rate schedules shared by the methods (the official recipes)."""

from __future__ import annotations

import torch

from zsseg_bench.catalog.schema import NonNegativeFloat, Section

__all__ = ["poly_lambda", "sgd_poly", "adam", "SGDOptions"]


class SGDOptions(Section):
    """The SGD settings of a stage (its lr is the base of the per-group multipliers)."""

    lr: NonNegativeFloat  # 0 freezes the parameters (the BatchNorm statistics still move)
    momentum: NonNegativeFloat
    weight_decay: NonNegativeFloat


def poly_lambda(max_iter: int, power: float = 0.9, every: int = 1):
    """lr factor (1 - it/max_iter)^power, recomputed every `every` iterations (SPNet, CaGNet)."""

    def factor(it: int) -> float:
        it = (it // every) * every
        return max(0.0, 1.0 - it / max(1, max_iter)) ** power

    return factor


def sgd_poly(groups: list[dict], lr: float, iterations: int, momentum: float = 0.9, weight_decay: float = 5e-4,
             power: float = 0.9, every: int = 1):
    """SGD with per-group lr multipliers (`lr_mult`) under one poly schedule."""
    param_groups = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        if params:
            param_groups.append({"params": params, "lr": lr * g.get("lr_mult", 1.0),
                                 "weight_decay": g.get("weight_decay", weight_decay)})
    opt = torch.optim.SGD(param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, poly_lambda(iterations, power, every))
    return opt, sched


def adam(params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999)):
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, weight_decay=weight_decay, betas=betas)
