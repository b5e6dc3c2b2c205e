"""The complementary loss and the distillation loss equal hand computations on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from zsseg_bench.methods.maskformer.losses import complementary_loss
from zsseg_bench.methods.maskformer.matching import Assignment, Targets
from zsseg_bench.methods.maskformer.similarity import distill_loss


def focal(x: float, y: float) -> float:
    p = 1 / (1 + math.exp(-x))
    ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    return (0.25 * y + 0.75 * (1 - y)) * (1 - p_t) ** 2 * ce


def dice(xs, ys) -> float:
    ps = [1 / (1 + math.exp(-x)) for x in xs]
    return 1 - (2 * sum(p * y for p, y in zip(ps, ys)) + 1) / (sum(ps) + sum(ys) + 1)


def test_complementary_loss_by_hand():
    # One image, 1x4 pixels, 3 queries: query 0 matched to a base class (mask on pixels 0, 1),
    # queries 1 and 2 matched to novel classes (no mask). Query 2 is unmatched in a second image
    # without novel classes, which must not count.
    mask_logits = torch.tensor([[[[5.0, 5.0, -5.0, -5.0]], [[-1.0, 0.5, 2.0, -4.0]], [[-3.0, 1.5, -1.0, -4.0]]],
                                [[[1.0, 1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]]])
    masks = torch.zeros(2, 3, 1, 4)
    masks[0, 0, 0, :2] = 1
    masks[1, 0, 0, :] = 1
    targets = Targets(classes=torch.tensor([[0, 5, 6], [1, -1, -1]]), masks=masks,
                      has_mask=torch.tensor([[True, False, False], [True, False, False]]))
    match = Assignment(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 0]))
    ignore = -2.9444
    got = complementary_loss(mask_logits, targets, match, ignore, focal_weight=20.0, dice_weight=1.0)
    pred = [max(a, b, ignore) for a, b in zip([-1.0, 0.5, 2.0, -4.0], [-3.0, 1.5, -1.0, -4.0])]  # [-1, 1.5, 2, -2.94]
    goal = [0.0, 0.0, 1.0, 1.0]
    expected = 20 * sum(focal(x, y) for x, y in zip(pred, goal)) / 4 + dice(pred, goal)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_distillation_loss_by_hand(monkeypatch):
    # Two images (a pair), 1x2 pixels each, both pixels unlabelled: the points are both pixels.
    scores = torch.tensor([[[[0.9, 0.1]], [[0.1, 0.8]]], [[[0.7, 0.2]], [[0.3, 0.6]]]])  # [B=2, U=2, 1, 2]
    label = torch.full((2, 1, 2), 255)
    teacher_value = torch.tensor([[0.8, 0.3], [0.4, 0.9]])  # SimNet(pair) for image 0 vs image 1, both orders

    class FixedSimNet(torch.nn.Module):
        def forward(self, pairs):
            return torch.stack([teacher_value, teacher_value.T])

    monkeypatch.setattr("zsseg_bench.methods.maskformer.similarity.sample_points",
                        lambda region, k, noise=0.1: torch.tensor([[0, 1], [0, 1]]))
    got = distill_loss(scores, torch.zeros(2, 1, 1, 2), FixedSimNet(), label, 255, torch.tensor([True, True]), 2, "ce")
    vec = scores.flatten(2).transpose(1, 2)  # [B, K, U]
    total, n = 0.0, 0
    for b, other in ((0, 1), (1, 0)):
        t = teacher_value if b == 0 else teacher_value.T
        for i in range(2):
            for j in range(2):
                cos = float(torch.nn.functional.cosine_similarity(vec[b, i], vec[other, j], dim=0))
                s = min(max(max(cos, 0.0), 0.01), 0.99)
                tt = min(max(float(t[i, j]), 0.01), 0.99)
                total += -tt * math.log(s) - (1 - tt) * math.log(1 - s)
                n += 1
    assert float(got) == pytest.approx(total / n, rel=1e-5)
    # cce: thresholded at 0.5
    got = distill_loss(scores, torch.zeros(2, 1, 1, 2), FixedSimNet(), label, 255, torch.tensor([True, True]), 2,
                       "cce")
    assert torch.isfinite(got)
    # no pair sharing a novel class: zero
    assert float(distill_loss(scores, torch.zeros(2, 1, 1, 2), FixedSimNet(), label, 255,
                              torch.tensor([False, False]), 2, "ce")) == 0.0
