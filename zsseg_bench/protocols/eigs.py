"""Laplacian eigen-masks (SAZS's test-time shape candidates), from label-free pixel features.

Per image: label-free features on a grid give an affinity W: a Gaussian kernel over colour and
position (the synthetic world, below), or Deep Spectral Methods' clipped cosine of a DINO ViT's
last-layer keys (real images, dino.py; SAZS's masks are thought to come from that recipe). The
normalised Laplacian's smallest non-trivial eigenvectors (generalised problem (D - W) v = λ D v,
solved as the largest eigenvectors of D^-1/2 W D^-1/2) are taken, K = 5 of them. Each vector is binarised at 0 with its sign chosen
so that the smaller side is the foreground, then resized (nearest) to the label's resolution.

Solvers: dense batched `torch.linalg.eigh` for graphs up to `dense_max` nodes (a 64x64 image at
stride 4 has 256), `torch.lobpcg` per image above that (a 512x512 image at feature stride 8
has 4,096 nodes). No label is read anywhere in this module.

Features (`colour_position_features`): per-cell mean colour, standardised per image, and the
cell's position, on a stride grid. On real data the released PNGs are read instead where the user
has them (eigsource.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsseg_bench.errors import ZsbenchError

__all__ = ["rbf_affinity", "laplacian_eigenvectors", "eigen_masks", "colour_position_features",
           "masks_from_images", "DENSE_MAX"]

DENSE_MAX = 1024  # nodes: dense eigh below, lobpcg above


def rbf_affinity(features: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """[B, N, N] W = exp(-|f_i - f_j|^2 / (2 sigma^2)) of colour/position features (on these, Deep Spectral
    Methods' clipped cosine of the features lets position outweigh unlike colours)."""
    f = features.float()
    return torch.exp(-torch.cdist(f, f).square() / (2 * sigma ** 2))


def laplacian_eigenvectors(affinity: torch.Tensor, k: int = 5, dense_max: int = DENSE_MAX) -> torch.Tensor:
    """[B, N, k]: the k smallest non-trivial generalised eigenvectors of the graph Laplacian of the
    affinity [B, N, N] (the trivial vector dropped)."""
    inv_sqrt = affinity.sum(-1).clamp_min(1e-8).rsqrt()
    a = inv_sqrt.unsqueeze(-1) * affinity * inv_sqrt.unsqueeze(-2)
    n = a.shape[-1]
    if n < k + 1:
        raise ZsbenchError(f"a graph of {n} feature cells has fewer than k + 1 = {k + 1} eigenvectors; use a larger "
                           f"image, a smaller feature stride or patch, or a smaller k")
    if n <= dense_max:
        _, vecs = torch.linalg.eigh(a.double())  # ascending; the largest of A are the smallest of L
        u = vecs[..., -(k + 1):-1].flip(-1).float()
    else:
        outs = []
        for one in a:
            init = torch.randn(n, k + 1, generator=torch.Generator().manual_seed(0)).to(one)
            _, vec = torch.lobpcg(one, k=k + 1, X=init, largest=True, niter=200, tol=1e-4)
            outs.append(vec[:, 1:k + 1])
        u = torch.stack(outs)
    return u * inv_sqrt.unsqueeze(-1)  # back to v = D^-1/2 u


def eigen_masks(affinity: torch.Tensor, grid: tuple[int, int], size: tuple[int, int], k: int = 5,
                dense_max: int = DENSE_MAX) -> torch.Tensor:
    """bool [B, k, H, W]: binarised eigenvectors of the affinity [B, h*w, h*w] of a `grid` = (h, w)
    feature map, resized to `size`, the smaller side of each vector as foreground."""
    vecs = laplacian_eigenvectors(affinity, k, dense_max)  # [B, N, k]
    fg = vecs > 0
    flip = fg.float().mean(1, keepdim=True) > 0.5
    fg = torch.where(flip, ~fg, fg)
    masks = fg.transpose(1, 2).reshape(affinity.shape[0], k, *grid).float()
    return F.interpolate(masks, size=tuple(size), mode="nearest") > 0.5


def colour_position_features(images: torch.Tensor, stride: int = 4, position_weight: float = 0.5) -> torch.Tensor:
    """[B, 3 + 2, H/stride, W/stride] label-free features of the synthetic world: mean colour per
    cell, standardised per image and channel (so any per-channel normalisation of the input
    cancels), and the cell's position in [-1, 1] scaled by `position_weight`."""
    x = F.avg_pool2d(images.float(), stride) if stride > 1 else images.float()
    mean = x.mean((2, 3), keepdim=True)
    std = x.std((2, 3), keepdim=True).clamp_min(1e-6)
    colour = (x - mean) / std
    b, _, h, w = colour.shape
    ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([colour, position_weight * ys, position_weight * xs], dim=1)


def masks_from_images(images: torch.Tensor, size: tuple[int, int], k: int = 5, stride: int = 4,
                      position_weight: float = 0.5) -> torch.Tensor:
    """bool [B, k, H, W]: eigen-masks of the synthetic world's images (colour/position features)."""
    feats = colour_position_features(images, stride, position_weight)
    grid = tuple(feats.shape[-2:])
    return eigen_masks(rbf_affinity(feats.flatten(2).transpose(1, 2)), grid, size, k)
