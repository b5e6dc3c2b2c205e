"""CaGNet's loss terms, as pure functions (official `losses.py`, `model.py`; methods/cagnet/README.md).

* `kl_term`: the contextual module's KL divergence to N(0, I), a mean over (valid pixels x
  channels), not a per-pixel sum over channels (the official weight 100 is for this mean).
* `adversarial_d` / `adversarial_g`: the official `gan_type: lsgan` is *not* least squares: it
  is an L1 distance between the sigmoid score and the target 1/0 (`adversarial: l1`). The
  corrections offered are true least squares on the raw score (`ls`) and the usual binary
  cross-entropy on the raw score (`bce`).
* `content_mmd_runs`: the official content loss. The fake and real features of the valid
  pixels, in (N, H, W) raster order, are cut into contiguous runs of equal label; each run
  gets one multi-kernel MMD, (sum K_ff + sum K_rr - 2 sum K_fr) / (2 n^2) summed over the
  kernels, clamped at 0, square-rooted; the loss is the mean over runs. The official code
  loops over pixels in Python; here runs are found with tensor operations and evaluated in a
  handful of length buckets (runs padded to their bucket's longest, masked), so the only
  Python loops are over buckets and kernels.
* `content_mmd_classes`: the per-class alternative: the same estimator on up to `samples`
  paired pixels drawn from each (image, class) group (or class over the batch).

All masks are "valid pixel" masks at feature resolution (training label != ignore).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from zsseg_bench.methods.common.mmd import CAGNET_SIGMAS, mmd2
from zsseg_bench.methods.common.sampling import sample_groups

__all__ = ["ADVERSARIAL", "kl_term", "masked_mean", "adversarial_d", "adversarial_g", "label_runs",
           "content_mmd_runs", "content_mmd_classes"]

ADVERSARIAL = ("l1", "ls", "bce")


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of values [B, C, h, w] (or [B, h, w]) over valid pixels [B, h, w] (and all channels)."""
    if values.dim() == valid.dim():
        values = values.unsqueeze(1)
    w = valid.unsqueeze(1).to(values.dtype)
    return (values * w).sum() / (w.sum() * values.shape[1]).clamp_min(1.0)


def kl_term(mu: torch.Tensor, logvar: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """-0.5 * mean over valid pixels and channels of (1 + logvar - mu^2 - exp(logvar))."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * masked_mean(1.0 + logvar - mu.pow(2) - logvar.exp(), valid)


def _real_fake(score: torch.Tensor, target: float, kind: str) -> torch.Tensor:
    """Per-pixel distance of a raw discriminator score [B, 1, h, w] to the target 1 or 0."""
    score = score.float()
    if kind == "l1":
        return (torch.sigmoid(score) - target).abs()
    if kind == "ls":
        return (score - target).pow(2)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(score, torch.full_like(score, target), reduction="none")
    raise ValueError(f"adversarial must be one of {', '.join(ADVERSARIAL)}, not {kind!r}")


def adversarial_d(real_score: torch.Tensor, fake_score: torch.Tensor, valid: torch.Tensor,
                  kind: str = "l1") -> torch.Tensor:
    """Discriminator loss: fake towards 0 plus real towards 1, each a masked mean."""
    return masked_mean(_real_fake(fake_score, 0.0, kind), valid) + masked_mean(_real_fake(real_score, 1.0, kind),
                                                                              valid)


def adversarial_g(fake_score: torch.Tensor, valid: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Generator loss: fake towards 1."""
    return masked_mean(_real_fake(fake_score, 1.0, kind), valid)


def label_runs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """labels [P] -> (start [R], length [R]) of the maximal runs of equal consecutive values."""
    p = labels.numel()
    change = torch.ones(p, dtype=torch.bool, device=labels.device)
    if p > 1:
        change[1:] = labels[1:] != labels[:-1]
    start = torch.nonzero(change, as_tuple=False).flatten()
    end = torch.cat([start[1:], torch.tensor([p], device=labels.device)])
    return start, end - start


def _valid_sequence(fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor, valid: torch.Tensor):
    """[B, D, h, w] maps -> features of the valid pixels in (N, H, W) raster order, and their labels."""
    d = fake.shape[1]
    keep = valid.flatten()
    f = fake.permute(0, 2, 3, 1).reshape(-1, d)[keep]
    r = real.permute(0, 2, 3, 1).reshape(-1, d)[keep]
    return f, r, label.flatten()[keep]


def content_mmd_runs(fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                     sigmas: Sequence[float] = CAGNET_SIGMAS, eps: float = 0.0,
                     max_entries: int = 1 << 24) -> torch.Tensor:
    """The official run-wise content MMD (see the module docstring). fake/real [B, D, h, w].

    `eps` is added under the square root (0 = the official form; a tiny value keeps the
    gradient finite where a run's fake and real features coincide). `max_entries` bounds the
    kernel matrices held at once (runs x length^2)."""
    f, r, lab = _valid_sequence(fake.float(), real.float(), label, valid)
    if lab.numel() == 0:
        return fake.sum() * 0.0
    start, length = label_runs(lab)
    # Bucket runs by length (powers of two) so that padding at most doubles a run.
    bucket = torch.floor(torch.log2(length.double())).long()
    total = f.new_zeros(())
    for b in torch.unique(bucket).tolist():
        sel = torch.nonzero(bucket == b, as_tuple=False).flatten()
        n_max = int(length[sel].max())
        per_chunk = max(1, max_entries // (n_max * n_max))
        for c in range(0, len(sel), per_chunk):
            s, n = start[sel[c: c + per_chunk]], length[sel[c: c + per_chunk]]
            offs = torch.arange(n_max, device=lab.device)
            mask = offs.unsqueeze(0) < n.unsqueeze(1)  # [R, n_max]
            idx = torch.where(mask, s.unsqueeze(1) + offs.unsqueeze(0), s.unsqueeze(1))
            m2 = mmd2(f[idx], r[idx], sigmas, mask, mask)  # biased MMD^2 per run, summed over kernels
            total = total + torch.sqrt((0.5 * m2).clamp_min(0.0) + eps).sum()
    return total / len(start)


def content_mmd_classes(fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                        num_classes: int, samples: int = 128, per_image: bool = True,
                        sigmas: Sequence[float] = CAGNET_SIGMAS, eps: float = 0.0) -> torch.Tensor:
    """Per-class content MMD: the run estimator on `samples` paired pixels (drawn with replacement)
    of each (image, class) group, or each class of the batch with per_image=False."""
    # Invalid pixels become an extra class that sample_groups treats as its ignore value.
    lab = torch.where(valid, label, torch.full_like(label, num_classes))
    d = fake.shape[1]
    index, _ = sample_groups(lab, num_classes + 1, num_classes, samples, per_image)
    if index is None:
        return fake.sum() * 0.0
    f = fake.float().permute(0, 2, 3, 1).reshape(-1, d)[index]
    r = real.float().permute(0, 2, 3, 1).reshape(-1, d)[index]
    return torch.sqrt((0.5 * mmd2(f, r, sigmas)).clamp_min(0.0) + eps).mean()
