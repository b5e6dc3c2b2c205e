"""Speed of CaGNet's content loss: the vectorised run-wise MMD vs the per-pixel Python loop of the
official form (tests/cagnet_reference.py).

    pytest tests/test_cagnet_mmd_speed.py --benchmark-enable

With benchmarking enabled both run on one VOC-sized step (8 images, 47x47 features, 600-d,
objects on an ignored background); in the normal test run (--benchmark-disable) they run once
on a tiny input, as a check that they agree.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers.cagnet_reference import content_mmd_loop
from zsseg_bench.methods.cagnet.losses import content_mmd_runs

IGNORE = 255


def _step(benchmark):
    b, h, d = (2, 12, 16) if benchmark.disabled else (8, 47, 600)
    g = torch.Generator().manual_seed(7)
    label = torch.full((b, h, h), IGNORE, dtype=torch.long)
    for i in range(b):  # three rectangular objects of random classes per image
        for _ in range(3):
            y, x = torch.randint(0, h - 4, (2,), generator=g).tolist()
            hh, ww = torch.randint(3, max(4, h // 2), (2,), generator=g).tolist()
            label[i, y:y + hh, x:x + ww] = int(torch.randint(15, (1,), generator=g))
    fake = torch.rand(b, d, h, h, generator=g)
    real = torch.rand(b, d, h, h, generator=g)
    return fake, real, label


def test_benchmark_content_mmd_vectorised(benchmark):
    fake, real, label = _step(benchmark)
    value = benchmark(lambda: float(content_mmd_runs(fake, real, label, label != IGNORE)))
    assert value > 0


def test_benchmark_content_mmd_loop_reference(benchmark):
    fake, real, label = _step(benchmark)
    value = benchmark.pedantic(lambda: float(content_mmd_loop(fake, real, label, IGNORE)), rounds=1, iterations=1)
    assert value == pytest.approx(float(content_mmd_runs(fake.double(), real.double(), label, label != IGNORE)),
                                  abs=1e-5)
