"""SimFormer's pixel-pixel similarity transfer: a similarity net trained on base pixels of two images,
distilled into the novel-class score vectors of pixels of two images sharing a novel class.

Images come in pairs: batch rows (0, 1), (2, 3), ... are partners, and every row is compared with
its partner's (both directions, the official `get_shuffle_idx`).

* Points: K per image drawn at random inside a region (the official draw: top-K of the region
  indicator plus U(0, 0.1) noise, so a region smaller than K is filled from outside it).
  Base pairs: 80 % of the points in one randomly chosen base class common to both images (the same
  class in both; any base pixel when none is common), 20 % anywhere outside that class; a pair counts when either pixel is
  a base pixel. Distillation points: in the pixels without a base label (novel or unlabelled).
* SimNet (the official `CroPixelResSimConvNet`, which the config builds): three residual blocks of
  two 1x1 conv + BN + ReLU on the concatenated 2C features, a 1x1 conv to two logits, and the
  softmax probability of "same class". Trained with class-balanced BCE on detached features; the
  balance weights come from the counts of the last 25 batches (kept in buffers, so a resumed run
  continues with them).
* Distillation: student = ReLU(cosine) between the two pixels' novel-class score vectors
  (softmax class probabilities x sigmoid masks summed over queries); teacher = SimNet on the
  detached features, no gradient. `ce`: binary cross-entropy with both clamped to [0.01, 0.99];
  `cce`: -relu(t - 0.5) log(s + 1) - relu(0.5 - t) log(2 - s). Mean over all point pairs of the
  image pairs that share a novel class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SimNet", "BalanceCounts", "sample_points", "gather_points", "pair_grid", "partner_index",
           "simnet_loss", "distill_loss"]


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 1), nn.BatchNorm2d(cout)
        self.squeeze = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        residual = F.relu(self.squeeze(x)) if self.squeeze is not None else x
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) + residual


class SimNet(nn.Module):
    """[..., 2C] pair features -> [...] probability that the two pixels share a class."""

    def __init__(self, in_dim: int, hidden: int, layers: int = 3):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.blocks = nn.Sequential(*[_Block(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.out = nn.Conv2d(hidden, 2, 1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        x = pairs.permute(0, 3, 1, 2)  # [B, 2C, K, K]: each pair one "pixel" of 1x1 convolutions
        return self.out(self.blocks(x)).softmax(1)[:, 1]


class BalanceCounts(nn.Module):
    """Negative/positive pair counts of the last `length` batches (the official queue starts at 1, 1)."""

    def __init__(self, length: int = 25):
        super().__init__()
        counts = torch.zeros(length, 2)
        counts[0] = 1.0
        self.register_buffer("counts", counts)
        self.register_buffer("cursor", torch.ones((), dtype=torch.long))

    def update(self, same: torch.Tensor) -> None:
        sub = same[:, ::5, ::5]
        self.counts[int(self.cursor) % self.counts.shape[0]] = torch.stack(
            [(sub == 0).sum(), (sub == 1).sum()]).float()
        self.cursor += 1

    def weights(self) -> tuple[float, float]:
        neg, pos = self.counts.sum(0).tolist()
        return pos / (pos + neg), neg / (pos + neg)  # (weight of negatives, weight of positives)


def partner_index(batch_size: int, device=None) -> torch.Tensor:
    """Row i's partner: 1, 0, 3, 2, ..."""
    idx = torch.arange(batch_size, device=device)
    return idx + 1 - 2 * (idx % 2)


def sample_points(region: torch.Tensor, k: int, noise: float = 0.1) -> torch.Tensor:
    """[B, H, W] float region -> [B, k] flat pixel indices, random inside the region first."""
    score = region.flatten(1) + torch.rand_like(region.flatten(1)) * noise
    return score.topk(k, dim=1).indices


def gather_points(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] at flat indices [B, K] -> [B, K, C]."""
    flat = maps.flatten(2)
    return flat.gather(2, index[:, None, :].expand(-1, flat.shape[1], -1)).transpose(1, 2)


def pair_grid(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, K, C] x [B, K, C] -> [B, K, K, 2C]: every point of a with every point of b."""
    k = a.shape[1]
    return torch.cat([a[:, :, None].expand(-1, -1, k, -1), b[:, None].expand(-1, k, -1, -1)], dim=-1)


def _base_points(label: torch.Tensor, ignore_index: int, seen: torch.Tensor, k: int) -> torch.Tensor:
    """80/20 base points per image (module docstring); label [B, h, w] with novel pixels ignored."""
    b = label.shape[0]
    base = label != ignore_index
    k_classes = seen.numel()
    onehot = F.one_hot(torch.where(base, label, k_classes).flatten(1), k_classes + 1)[..., :k_classes]
    present = onehot.amax(1).bool()  # [B, K]
    common = present & present[partner_index(b, label.device)]
    draw = torch.multinomial(common.float() + (~common.any(1, keepdim=True)).float(), 1)[:, 0]
    draw = draw[0::2].repeat_interleave(2)  # one class per pair, as the official code samples it
    pick = torch.where(common.any(1), draw, torch.full((b,), -1, device=label.device))
    region = torch.where((pick >= 0)[:, None, None], label == pick[:, None, None], base).float()
    pos = sample_points(region, int(k * 0.8))
    neg = sample_points(1 - region, k - int(k * 0.8))
    return torch.cat([pos, neg], 1)


def simnet_loss(simnet: SimNet, balance: BalanceCounts, features: torch.Tensor, label: torch.Tensor,
                ignore_index: int, seen: torch.Tensor, k: int) -> torch.Tensor:
    """Class-balanced BCE of SimNet on base point pairs; features [B, C, h, w] (detached), label [B, h, w]."""
    points = _base_points(label, ignore_index, seen, k)
    partner = partner_index(label.shape[0], label.device)
    lab = label.flatten(1).gather(1, points)
    valid = (lab != ignore_index).float()
    feats = gather_points(features.detach(), points)
    pred = simnet(pair_grid(feats, feats[partner]))
    same = (lab[:, :, None] == lab[partner][:, None, :]).long()
    pair_valid = torch.maximum(valid[:, :, None], valid[partner][:, None, :])
    loss = F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), same.float(), reduction="none")
    balance.update(same)
    w_neg, w_pos = balance.weights()
    weight = torch.where(same.bool(), w_pos, w_neg)
    return (weight * loss * pair_valid).sum() / pair_valid.sum().clamp(min=1e-5)


def distill_loss(student_scores: torch.Tensor, teacher_features: torch.Tensor, simnet: SimNet, label: torch.Tensor,
                 ignore_index: int, shares_novel: torch.Tensor, k: int, func: str = "ce") -> torch.Tensor:
    """Distil SimNet into the novel score maps [B, U, h, w]; `shares_novel` bool [B] per row and partner."""
    if not bool(shares_novel.any()):
        return student_scores.sum() * 0.0
    points = sample_points((label == ignore_index).float(), k)
    partner = partner_index(label.shape[0], label.device)
    with torch.no_grad():
        feats = gather_points(teacher_features.detach(), points)
        teacher = simnet(pair_grid(feats, feats[partner]))
    scores = gather_points(student_scores, points)
    student = F.relu(F.cosine_similarity(scores[:, :, None], scores[partner][:, None, :], dim=-1))
    if func == "ce":
        t, s = teacher.clamp(0.01, 0.99), student.clamp(0.01, 0.99)
        loss = -t * torch.log(s) - (1 - t) * torch.log(1 - s)
    else:  # cce
        loss = -F.relu(teacher - 0.5) * torch.log(student + 1) - F.relu(0.5 - teacher) * torch.log(2 - student)
    return loss[shares_novel].mean()
