"""Hungarian matching equals brute force; the batched costs equal per-pair hand computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from zsseg_bench.methods.maskformer.matching import Targets, batch_dice_cost, batch_focal_cost, hungarian, matching_cost


def brute_force(cost: np.ndarray) -> float:
    q, t = cost.shape
    return min(sum(cost[p[j], j] for j in range(t)) for p in itertools.permutations(range(q), t))


@pytest.mark.parametrize("seed", range(8))
def test_hungarian_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    b, q, t = 3, 6, 4
    cost = torch.from_numpy(rng.normal(size=(b, q, t)))
    valid = torch.from_numpy(rng.random((b, t)) < 0.7)
    match = hungarian(cost, valid)
    for i in range(b):
        slots = np.flatnonzero(valid[i].numpy())
        rows = match.batch == i
        assert sorted(match.slot[rows].tolist()) == slots.tolist()
        assert len(set(match.query[rows].tolist())) == len(slots)  # distinct queries
        total = float(cost[i, match.query[rows], match.slot[rows]].sum())
        expected = brute_force(cost[i][:, slots].numpy()) if len(slots) else 0.0
        assert total == pytest.approx(expected)


def test_costs_equal_pairwise_hand_computation():
    torch.manual_seed(0)
    logits, targets = torch.randn(1, 3, 10), (torch.rand(1, 2, 10) > 0.5).float()
    focal, dice = batch_focal_cost(logits, targets), batch_dice_cost(logits, targets)
    for q in range(3):
        for t in range(2):
            p, y = logits[0, q].sigmoid(), targets[0, t]
            ce = -(y * p.log() + (1 - y) * (1 - p).log())
            p_t = p * y + (1 - p) * (1 - y)
            f = ((0.25 * y + 0.75 * (1 - y)) * (1 - p_t) ** 2 * ce).mean()
            d = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
            assert float(focal[0, q, t]) == pytest.approx(float(f), rel=1e-5)
            assert float(dice[0, q, t]) == pytest.approx(float(d), rel=1e-5)


def test_maskless_slots_cost_only_their_class():
    torch.manual_seed(1)
    cls, masks = torch.randn(1, 4, 6), torch.randn(1, 4, 3, 3)
    targets = Targets(classes=torch.tensor([[2, 4]]), masks=torch.zeros(1, 2, 3, 3), has_mask=torch.tensor([[True, False]]))
    targets.masks[0, 0, 0] = 1
    cost = matching_cost(cls, masks, targets, class_weight=1.0, focal_weight=20.0, dice_weight=1.0)
    prob = cls.softmax(-1)
    assert torch.allclose(cost[0, :, 1], -prob[0, :, 4])
    assert not torch.allclose(cost[0, :, 0], -prob[0, :, 2])
