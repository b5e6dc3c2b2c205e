"""SAZS's joint loss (the official `JointEdgeSegLoss`, read in utils.py), term by term.

total = NLL(seg) + bce_weight x class-balanced edge BCE + attention_weight x edge-attention NLL
        (+ inverseform weight x InverseForm distance, an optional plug-in: inverseform.py)

* Edge truth: pixels within `radius` of the binary target's boundary (the official code takes a
  Euclidean distance transform of the mask; here a square window of the same radius, i.e. the
  Chebyshev distance, on the device).
* Class-balanced BCE: positives weighted by the negative share, negatives by the positive share
  (ignored pixels weigh 0).
* Edge attention: the segmentation NLL on the pixels where the predicted edge probability exceeds
  `attention_threshold` (0.8), the others ignored; 0 when there are none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["edge_truth", "balanced_edge_bce", "edge_attention_nll"]


def edge_truth(target: torch.Tensor, ignore_index: int, radius: int = 2) -> torch.Tensor:
    """float [B, 1, H, W]: 1 within `radius` pixels of a boundary of the binary `target` [B, H, W]."""
    fg = (target == 1).float().unsqueeze(1)
    k = 2 * radius + 1
    dilated = F.max_pool2d(fg, k, stride=1, padding=radius)
    eroded = -F.max_pool2d(-fg, k, stride=1, padding=radius)
    return (dilated - eroded).clamp(0, 1)


def balanced_edge_bce(edge_logits: torch.Tensor, edges: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Class-balanced binary cross-entropy of edge logits [B, 1, H, W] against `edges` on `valid` pixels."""
    valid = valid.unsqueeze(1).float()
    pos = (edges * valid).sum()
    neg = ((1 - edges) * valid).sum()
    total = (pos + neg).clamp_min(1)
    weight = (edges * (neg / total) + (1 - edges) * (pos / total)) * valid
    return F.binary_cross_entropy_with_logits(edge_logits.float(), edges, weight=weight, reduction="sum") / total


def edge_attention_nll(log_probs: torch.Tensor, target: torch.Tensor, edge_logits: torch.Tensor, ignore_index: int,
                       threshold: float = 0.8) -> torch.Tensor:
    """Segmentation NLL restricted to pixels whose predicted edge probability exceeds `threshold`."""
    on_edge = torch.sigmoid(edge_logits.detach().float()).squeeze(1) > threshold
    focused = torch.where(on_edge, target, torch.full_like(target, ignore_index))
    if not bool((focused != ignore_index).any()):
        return log_probs.sum() * 0.0
    return F.nll_loss(log_probs, focused, ignore_index=ignore_index)
