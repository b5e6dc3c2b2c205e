"""Fusion of a binary prediction with the image's eigen-masks (SAZS's test-time step), by mode.

* ``none``: the prediction as it is.
* ``oracle``: as the official `test_sp` does it: per episode, whichever of the prediction and the K
  eigen-masks has the highest foreground IoU **against the ground truth** (the prediction on a
  tie). It reads the test labels: every record, table and report flags it `uses-test-labels`,
  and it is never a default.
* ``self`` (leakage-free): the eigen-mask that agrees best with the prediction (IoU between the two)
  replaces the prediction when that IoU is at least `threshold`; the threshold is chosen on
  held-out training-fold episodes (`choose_threshold`), never on the test fold. Its function
  takes no ground truth at all.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mask_iou", "fuse_oracle", "fuse_self", "choose_threshold", "THRESHOLD_GRID"]
# Candidate thresholds for `self`; above 1 means "never replace" (the prediction as it is).
THRESHOLD_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def mask_iou(masks: torch.Tensor, other: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Foreground IoU of each of `masks` [K, H, W] with `other` [H, W] (over `valid` pixels); 0 for an
    empty union."""
    if valid is not None:
        masks, other = masks & valid, other & valid
    inter = (masks & other).flatten(1).sum(1).float()
    union = (masks | other).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union))


def fuse_self(pred: torch.Tensor, eigs: torch.Tensor, threshold: float) -> torch.Tensor:
    """The eigen-mask closest to `pred` when its IoU with `pred` is >= threshold, else `pred`. No labels."""
    agreement = mask_iou(eigs, pred)
    best = int(agreement.argmax())
    return eigs[best] if float(agreement[best]) >= threshold else pred


def fuse_oracle(pred: torch.Tensor, eigs: torch.Tensor, truth: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Whichever of `pred` and `eigs` has the highest IoU with the ground truth (GT-informed)."""
    valid = truth != ignore_index
    fg = truth == 1
    candidates = torch.cat([pred.unsqueeze(0), eigs], 0)
    scores = mask_iou(candidates, fg, valid)
    return candidates[int(scores.argmax())]  # argmax takes the first maximum: the prediction on a tie


def choose_threshold(per_threshold_scores: dict[float, float]) -> float:
    """The threshold with the best held-out score; the largest (least replacing) among equals."""
    best = max(per_threshold_scores.values())
    return max(t for t, s in per_threshold_scores.items() if np.isclose(s, best))
