"""A per-pixel Python-loop implementation of CaGNet's official content loss (the run-wise MMD of
its `losses.py`, as zsseg_bench/methods/cagnet/losses.py describes it), written from that
description, to check the vectorised one and to time it against."""

from __future__ import annotations

import torch


def content_mmd_loop(fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor, ignore: int,
                     sigmas=(2.0, 5.0, 10.0, 20.0, 40.0, 60.0)) -> torch.Tensor:
    """fake, real [B, D, h, w], label [B, h, w] -> mean over runs of sqrt(max(0, sum_bw sum(S * K)))."""
    b_n, _, h, w = fake.shape
    runs: list[list[tuple[int, int, int]]] = []
    prev = None
    for b in range(b_n):  # raster order over (N, H, W), ignored pixels skipped
        for i in range(h):
            for j in range(w):
                lab = int(label[b, i, j])
                if lab == ignore:
                    continue
                if lab != prev:
                    runs.append([])
                    prev = lab
                runs[-1].append((b, i, j))
    total = fake.new_zeros(())
    for run in runs:
        n = len(run)
        f = torch.stack([fake[b, :, i, j] for b, i, j in run])
        r = torch.stack([real[b, :, i, j] for b, i, j in run])
        z = torch.cat([f, r])
        d2 = torch.cdist(z, z).pow(2)
        s = torch.cat([torch.full((n,), 1.0 / n), torch.full((n,), -1.0 / n)]).to(z)
        scale = 0.5 * s[:, None] * s[None, :]  # the centred scale matrix, halved (as the official loss)
        value = sum((scale * torch.exp(-d2 / (2.0 * bw))).sum() for bw in sigmas)
        total = total + torch.sqrt(value.clamp_min(0.0))
    return total / max(1, len(runs))
