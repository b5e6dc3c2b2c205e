"""Episode lists, the fold metric, eigen-masks and fusion of the fss-zeroshot protocol (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsseg_bench.catalog.splits import load_split
from zsseg_bench.metrics.episodic import EpisodeMeter, binary_counts
from zsseg_bench.protocols.eigs import eigen_masks, masks_from_images, rbf_affinity
from zsseg_bench.protocols.episodes import build_episodes, check_episode_rule
from zsseg_bench.protocols.fusion import fuse_oracle, fuse_self


def _presence(n_images=7, seed=0):
    rng = np.random.default_rng(seed)
    presence = np.zeros((n_images, 256), dtype=bool)
    presence[:, 0] = True
    presence[:, 1:13] = rng.random((n_images, 12)) < 0.4
    return presence


def test_cycle_rule_walks_the_pairs_in_image_then_class_order_and_repeats():
    split = load_split("synthetic-5i-f0")  # fold classes cat (1), car (5), chair (9)
    presence = _presence()
    pairs = [(i, c) for i in range(7) for c in ("cat", "car", "chair") if presence[i, split.classes.id_of(c)]]
    eps = build_episodes(presence, split)
    assert len(eps) == 1000 and eps.n_pairs == len(pairs)
    got = [(int(i), split.eval_names[int(c)]) for i, c in zip(eps.images, eps.classes)]
    assert got == [pairs[e % len(pairs)] for e in range(1000)]
    again = build_episodes(presence, split)
    assert np.array_equal(again.images, eps.images) and np.array_equal(again.classes, eps.classes)


def test_random_rule_draws_class_then_image_under_its_seed():
    split = load_split("synthetic-5i-f0")
    presence = _presence(30)
    a = build_episodes(presence, split, rule={"rule": "random", "count": 200, "seed": 0})
    b = build_episodes(presence, split, rule={"rule": "random", "count": 200, "seed": 0})
    c = build_episodes(presence, split, rule={"rule": "random", "count": 200, "seed": 1})
    assert np.array_equal(a.images, b.images) and np.array_equal(a.classes, b.classes)
    assert not np.array_equal(a.images, c.images)
    raw = [split.classes.id_of(split.eval_names[int(k)]) for k in a.classes]
    assert presence[a.images, raw].all()  # every drawn image contains its class
    assert set(split.eval_names[int(k)] for k in a.classes) == {"cat", "car", "chair"}


def test_split_files_state_their_episode_rule():
    assert load_split("pascal5i-f0").raw["episodes"] == {"rule": "cycle", "count": 1000}
    assert load_split("coco20i-f2").raw["episodes"] == {"rule": "random", "count": 1000, "seed": 0}
    assert check_episode_rule({"rule": "sometimes"}).startswith("rule")
    assert check_episode_rule({"rule": "cycle", "count": 0}) == "count must be a positive integer"


def test_fold_metric_equals_a_hand_computation():
    # class 0: two episodes; class 1: one episode with an ignored pixel
    t1 = torch.tensor([[1, 1, 0, 0]])
    p1 = torch.tensor([[1, 0, 0, 0]])  # fg: I=1 U=2; bg: I=2 U=3
    t2 = torch.tensor([[1, 0, 0, 0]])
    p2 = torch.tensor([[1, 1, 0, 0]])  # fg: I=1 U=2; bg: I=2 U=3
    t3 = torch.tensor([[1, 255, 0, 1]])
    p3 = torch.tensor([[0, 1, 0, 1]])  # valid 0,2,3: fg I=1 U=2; bg I=1 U=2
    meter = EpisodeMeter(("a", "b"))
    meter.add(0, binary_counts(p1, t1, 255))
    meter.add(0, binary_counts(p2, t2, 255))
    meter.add(1, binary_counts(p3, t3, 255))
    scores = meter.scores()
    fg = [2 / 4, 1 / 2]  # class a: (1 + 1) / (2 + 2); class b: 1 / 2
    assert scores["FG-mIoU"] == pytest.approx(np.mean(fg))
    fb = np.mean([(2 + 2 + 1) / (3 + 3 + 2), (1 + 1 + 1) / (2 + 2 + 2)])
    assert scores["FB-IoU"] == pytest.approx(fb)
    assert scores["n_episodes"] == 3 and meter.per_class()["episodes"].tolist() == [2, 1]


def test_eigen_masks_of_two_flat_regions_separate_them():
    image = torch.zeros(1, 3, 64, 64)
    image[:, 0] = 0.2
    image[:, :, 16:40, 8:48] = torch.tensor([0.9, 0.1, 0.5]).view(1, 3, 1, 1)
    region = torch.zeros(64, 64, dtype=torch.bool)
    region[16:40, 8:48] = True
    masks = masks_from_images(image, (64, 64))[0]
    assert masks.shape == (5, 64, 64)
    first = masks[0]
    assert bool((first == region).all())  # the smaller side (the object) is the foreground


def test_dense_and_lobpcg_solvers_agree_on_the_first_eigen_mask():
    feats = torch.zeros(1, 2, 12, 12)
    feats[:, 0] = 1.0
    feats[:, :, 3:8, 2:9] = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    feats = feats + 0.01 * torch.randn(feats.shape, generator=torch.Generator().manual_seed(0))
    affinity = rbf_affinity(feats.flatten(2).transpose(1, 2), sigma=0.3)
    dense = eigen_masks(affinity, (12, 12), (12, 12), k=2)
    iterative = eigen_masks(affinity, (12, 12), (12, 12), k=2, dense_max=10)
    assert bool((dense[0, 0] == iterative[0, 0]).all())


def test_fusion_rules():
    truth = torch.tensor([[1, 1, 0, 0]])
    pred = torch.tensor([[0, 1, 1, 0]], dtype=torch.bool)
    eigs = torch.tensor([[[1, 1, 0, 0]], [[0, 1, 1, 1]]], dtype=torch.bool)
    assert torch.equal(fuse_oracle(pred, eigs, truth, 255), eigs[0])  # the candidate closest to the truth
    assert torch.equal(fuse_oracle(eigs[0], eigs, truth, 255), eigs[0])  # a tie keeps the prediction
    # self: eigs[1] agrees best with pred (IoU 2/3); replaced only at a threshold <= 2/3
    assert torch.equal(fuse_self(pred, eigs, 0.6), eigs[1])
    assert torch.equal(fuse_self(pred, eigs, 0.7), pred)
