"""Set prediction targets, matching costs and Hungarian assignment, batched over the images.

Targets of a batch are padded to T slots per image: `classes` [B, T] (-1 in empty slots), binary
`masks` [B, T, P] over P pixels and `has_mask` [B, T]. A slot without a mask is a class known only
from an image-level label (a novel class in the weak-shot setting): it takes part in matching
through its class cost only (SimFormer's matcher gives its mask cost weight 0).

Costs are one einsum over the whole batch ([B, Q, T]); only `linear_sum_assignment` itself runs per
image, on the CPU, over that image's filled slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = ["Targets", "batch_focal_cost", "batch_dice_cost", "matching_cost", "hungarian", "Assignment"]


@dataclass
class Targets:
    classes: torch.Tensor  # long [B, T], -1 where no target
    masks: torch.Tensor  # float [B, T, H, W] in {0, 1} (all zero where has_mask is False)
    has_mask: torch.Tensor  # bool [B, T]

    @property
    def valid(self) -> torch.Tensor:
        return self.classes >= 0


@dataclass
class Assignment:
    """Matched (image, query, target slot) triples, as three long tensors of equal length."""

    batch: torch.Tensor
    query: torch.Tensor
    slot: torch.Tensor


def batch_focal_cost(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Sigmoid focal loss of every (query, target) pair, mean over pixels: [B, Q, P] x [B, T, P] -> [B, Q, T]."""
    prob = logits.sigmoid()
    pos = (1 - prob) ** gamma * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = prob ** gamma * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    if alpha >= 0:
        pos, neg = pos * alpha, neg * (1 - alpha)
    cost = torch.einsum("bqp,btp->bqt", pos, targets) + torch.einsum("bqp,btp->bqt", neg, 1 - targets)
    return cost / logits.shape[-1]


def batch_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - dice of every (query, target) pair, with MaskFormer's +1 smoothing: -> [B, Q, T]."""
    prob = logits.sigmoid()
    numerator = 2 * torch.einsum("bqp,btp->bqt", prob, targets)
    denominator = prob.sum(-1)[:, :, None] + targets.sum(-1)[:, None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def matching_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor, targets: Targets, *, class_weight: float,
                  focal_weight: float, dice_weight: float) -> torch.Tensor:
    """[B, Q, T] cost: -class_weight * p(target class) for every slot, plus the mask costs (focal, dice)
    for slots with a mask; masks are compared at the predictions' resolution (targets nearest-resized)."""
    prob = class_logits.float().softmax(-1)  # [B, Q, K+1]
    index = targets.classes.clamp(min=0)[:, None, :].expand(-1, prob.shape[1], -1)
    cost = -class_weight * prob.gather(2, index)
    h, w = mask_logits.shape[-2:]
    tmask = targets.masks
    if tmask.shape[-2:] != (h, w):
        tmask = F.interpolate(tmask, size=(h, w), mode="nearest")
    pred = mask_logits.float().flatten(2)
    tmask = tmask.flatten(2).to(pred.dtype)
    mask_cost = focal_weight * batch_focal_cost(pred, tmask) + dice_weight * batch_dice_cost(pred, tmask)
    return cost + mask_cost * targets.has_mask[:, None, :].to(cost.dtype)


@torch.no_grad()
def hungarian(cost: torch.Tensor, valid: torch.Tensor) -> Assignment:
    """Minimum-cost assignment of each image's filled target slots to distinct queries."""
    cost_np = cost.detach().float().cpu().numpy()
    valid_np = valid.cpu().numpy()
    rows_b, rows_q, rows_t = [], [], []
    for b in range(cost_np.shape[0]):
        slots = np.flatnonzero(valid_np[b])
        if slots.size == 0:
            continue
        q, t = linear_sum_assignment(cost_np[b][:, slots])
        rows_b.append(np.full(len(q), b))
        rows_q.append(q)
        rows_t.append(slots[t])
    device = cost.device

    def cat(parts):
        return torch.from_numpy(np.concatenate(parts).astype(np.int64)).to(device) if parts else \
            torch.zeros(0, dtype=torch.long, device=device)

    return Assignment(cat(rows_b), cat(rows_q), cat(rows_t))
