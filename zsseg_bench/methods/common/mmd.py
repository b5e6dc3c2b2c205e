"""Multi-kernel Gaussian maximum mean discrepancy (MMD), vectorised over sets.

Both generative methods match generated features to real ones with a sum of Gaussian kernels

    k_s(x, y) = exp(-||x - y||^2 / (2 s)),   s in a bandwidth set,

where s acts as a variance (the official codes divide the squared distance by 2 s):
ZS3Net uses s in {2, 5, 10, 20, 40, 80}, CaGNet {2, 5, 10, 20, 40, 60}. The pieces are
exposed separately so each method can build its own estimator:

* `pairwise_sq_dists` / `kernel_sum`: the summed kernel matrix between two sets;
* `mmd2`: the biased squared MMD, mean K_xx + mean K_yy - 2 mean K_xy (summed over kernels),
  for a batch of set pairs at once, with optional masks for sets of different sizes (CaGNet
  computes one MMD per run of equal labels; pad the runs and pass masks);
* `mmd`: sqrt(max(mmd2, 0)), ZS3Net's GMMN loss.

Every function takes leading batch dimensions: x [..., n, D], y [..., m, D]. There is no
Python loop over points or sets (only over the handful of kernels).
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["ZS3NET_SIGMAS", "CAGNET_SIGMAS", "pairwise_sq_dists", "kernel_sum", "mmd2", "mmd"]

ZS3NET_SIGMAS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
CAGNET_SIGMAS = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)


def pairwise_sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 for x [..., n, D], y [..., m, D] -> [..., n, m] (clamped at 0)."""
    xx = (x * x).sum(-1, keepdim=True)
    yy = (y * y).sum(-1, keepdim=True).transpose(-1, -2)
    # One matrix product instead of n*m difference vectors; rounding can make it slightly negative.
    return (xx + yy - 2.0 * x @ y.transpose(-1, -2)).clamp_min(0.0)


def kernel_sum(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = ZS3NET_SIGMAS) -> torch.Tensor:
    """sum_s exp(-||x_i - y_j||^2 / (2 s)) -> [..., n, m]."""
    d2 = pairwise_sq_dists(x, y)
    # A loop over the few kernels (not over points) keeps memory at one [..., n, m] matrix.
    total = torch.zeros_like(d2)
    for s in sigmas:
        total = total + torch.exp(d2 * (-0.5 / float(s)))
    return total


def _masked_mean(k: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor:
    """Mean of k [..., n, m] over entries whose row (a [..., n]) and column (b [..., m]) are valid."""
    if a is None and b is None:
        return k.mean((-1, -2))
    a = torch.ones(k.shape[:-1], dtype=k.dtype, device=k.device) if a is None else a.to(k.dtype)
    b = torch.ones(k.shape[:-2] + k.shape[-1:], dtype=k.dtype, device=k.device) if b is None else b.to(k.dtype)
    weight = a.unsqueeze(-1) * b.unsqueeze(-2)
    return (k * weight).sum((-1, -2)) / weight.sum((-1, -2)).clamp_min(1.0)


def mmd2(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = ZS3NET_SIGMAS,
         x_mask: torch.Tensor | None = None, y_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Biased squared MMD between the sets x [..., n, D] and y [..., m, D] -> [...].

    Masks ([..., n], [..., m], bool) mark the valid points of padded sets."""
    kxx = _masked_mean(kernel_sum(x, x, sigmas), x_mask, x_mask)
    kyy = _masked_mean(kernel_sum(y, y, sigmas), y_mask, y_mask)
    kxy = _masked_mean(kernel_sum(x, y, sigmas), x_mask, y_mask)
    return kxx + kyy - 2.0 * kxy


def mmd(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = ZS3NET_SIGMAS,
        x_mask: torch.Tensor | None = None, y_mask: torch.Tensor | None = None, eps: float = 0.0) -> torch.Tensor:
    """sqrt(max(mmd2, 0) + eps): ZS3Net's GMMN loss. Pass a small eps when training, because the
    square root has an infinite slope at 0."""
    return torch.sqrt(mmd2(x, y, sigmas, x_mask, y_mask).clamp_min(0.0) + eps)
