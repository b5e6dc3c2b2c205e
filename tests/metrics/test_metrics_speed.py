"""Speed of confusion-matrix accumulation: one batched bincount vs a per-image NumPy loop.

182 classes (COCO-Stuff), a batch of 8 label maps of 513 x 513 with 10% ignore pixels. In CI
(benchmarks disabled) each runs once and the results are compared; measure with
`pytest tests/test_metrics_speed.py --benchmark-enable` (the README quotes the ratio).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsseg_bench.metrics import ConfusionMeter

K, B, S, IGNORE = 182, 8, 513, 255


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    target = rng.integers(0, K, (B, S, S)).astype(np.int64)
    target[rng.random(target.shape) < 0.1] = IGNORE
    pred = rng.integers(0, K, (B, S, S)).astype(np.int64)
    return pred, target


def numpy_per_image(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The plain reference: one bincount per image, summed in Python."""
    hist = np.zeros((K, K), dtype=np.int64)
    for p, t in zip(pred, target):
        keep = (t >= 0) & (t < K)
        hist += np.bincount(K * t[keep] + p[keep], minlength=K * K).reshape(K, K)
    return hist


def zsbench_batched(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    meter = ConfusionMeter(K, IGNORE)
    meter.update(pred, target)
    return meter.numpy()


@pytest.mark.benchmark(group="confusion-182x513x513x8")
def test_confusion_zsbench_batched(benchmark, batch):
    pred, target = batch
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    result = benchmark(zsbench_batched, p, t)
    np.testing.assert_array_equal(result, numpy_per_image(pred, target))


@pytest.mark.benchmark(group="confusion-182x513x513x8")
def test_confusion_numpy_per_image_loop(benchmark, batch):
    pred, target = batch
    result = benchmark(numpy_per_image, pred, target)
    assert result.sum() == (target != IGNORE).sum()
