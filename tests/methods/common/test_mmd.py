"""The vectorised multi-kernel MMD (methods/common/mmd.py) against a plain double loop."""

import math

import pytest
import torch

from zsseg_bench.methods.common.mmd import CAGNET_SIGMAS, ZS3NET_SIGMAS, kernel_sum, mmd, mmd2
from zsseg_bench.methods.zs3net import GMMN


def loop_kernel_mean(a, b, sigmas):
    """mean over all pairs (i, j) of sum_s exp(-||a_i - b_j||^2 / (2 s)), one pair at a time."""
    total = 0.0
    for i in range(len(a)):
        for j in range(len(b)):
            d2 = sum((float(a[i][t]) - float(b[j][t])) ** 2 for t in range(len(a[i])))
            total += sum(math.exp(-d2 / (2.0 * s)) for s in sigmas)
    return total / (len(a) * len(b))


def loop_mmd2(x, y, sigmas):
    return loop_kernel_mean(x, x, sigmas) + loop_kernel_mean(y, y, sigmas) - 2.0 * loop_kernel_mean(x, y, sigmas)


@pytest.mark.parametrize("sigmas", [ZS3NET_SIGMAS, CAGNET_SIGMAS])
def test_mmd2_equals_double_loop(sigmas):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(17, 6, generator=g, dtype=torch.float64) * 2.0
    y = torch.randn(23, 6, generator=g, dtype=torch.float64) * 2.0 + 0.7
    ref = loop_mmd2(x.tolist(), y.tolist(), sigmas)
    assert abs(float(mmd2(x, y, sigmas)) - ref) < 1e-6
    assert abs(float(mmd(x, y, sigmas)) - math.sqrt(ref)) < 1e-6
    # float32 (what training uses) agrees too
    assert abs(float(mmd2(x.float(), y.float(), sigmas)) - ref) < 1e-5


def test_batched_and_masked_sets_equal_separate_loops():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 9, 5, generator=g, dtype=torch.float64) * 3
    y = torch.randn(3, 7, 5, generator=g, dtype=torch.float64) * 3
    x_mask = torch.ones(3, 9, dtype=torch.bool)
    y_mask = torch.ones(3, 7, dtype=torch.bool)
    x_mask[1, 4:] = False  # set 1 has 4 real points, padded to 9
    y_mask[2, :2] = False
    got = mmd2(x, y, ZS3NET_SIGMAS, x_mask, y_mask)
    for k in range(3):
        ref = loop_mmd2(x[k][x_mask[k]].tolist(), y[k][y_mask[k]].tolist(), ZS3NET_SIGMAS)
        assert abs(float(got[k]) - ref) < 1e-6


def test_zero_for_identical_sets_and_grows_with_shift():
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3
    assert abs(float(mmd2(x, x))) < 1e-10
    assert float(mmd(x, x)) == 0.0
    values = [float(mmd(x, x + shift)) for shift in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[0] > 0


def test_kernel_sum_diagonal_is_number_of_kernels():
    x = torch.randn(5, 3)
    k = kernel_sum(x, x, (1.0, 2.0, 3.0))
    assert torch.allclose(k.diagonal(), torch.full((5,), 3.0))


@pytest.mark.slow
def test_training_the_generator_lowers_the_mmd():
    """A GMMN conditioned on two class embeddings learns two toy Gaussian feature clusters."""
    torch.manual_seed(0)
    emb = torch.eye(2)
    centres = torch.tensor([[3.0, -2.0, 1.0, 0.0], [-1.0, 2.0, -3.0, 2.0]])

    def real(n):
        return centres.unsqueeze(1) + 0.5 * torch.randn(2, n, 4)

    gen = GMMN(embed_dim=2, noise_dim=2, hidden=64, out_dim=4, dropout=0.0)
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)

    def loss_now(n=128):
        return mmd(gen(emb.unsqueeze(1).expand(-1, n, -1)), real(n), eps=1e-8).mean()

    with torch.no_grad():
        before = float(loss_now(512))
    for _ in range(300):
        opt.zero_grad()
        loss_now().backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_now(512))
    assert after < 0.3 * before, (before, after)


# ---- speed: pytest tests/test_mmd.py --benchmark-enable -k benchmark ------------------------------
# With benchmarking enabled both run on 4096 x 600 features (the loop takes minutes); in the
# normal test run (--benchmark-disable) they run once on 64 points, as a check that they agree.
def _bench_sets(benchmark):
    n = 64 if benchmark.disabled else 4096
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, 600, generator=g) * 0.2, torch.randn(n, 600, generator=g) * 0.2 + 0.05


def loop_mmd2_numpy(x, y, sigmas):
    """The O(n^2) double loop with numpy for each 600-d distance (pure Python would take hours)."""
    a, b = x.double().numpy(), y.double().numpy()

    def mean_k(p, q):
        total = 0.0
        for i in range(len(p)):
            for j in range(len(q)):
                d = p[i] - q[j]
                d2 = float(d @ d)
                total += sum(math.exp(-d2 / (2.0 * s)) for s in sigmas)
        return total / (len(p) * len(q))

    return mean_k(a, a) + mean_k(b, b) - 2.0 * mean_k(a, b)


def test_benchmark_mmd_vectorised(benchmark):
    x, y = _bench_sets(benchmark)
    value = benchmark(lambda: float(mmd2(x, y)))
    assert value > 0


def test_benchmark_mmd_loop_reference(benchmark):
    x, y = _bench_sets(benchmark)
    value = benchmark.pedantic(loop_mmd2_numpy, args=(x, y, ZS3NET_SIGMAS), rounds=1, iterations=1)
    assert abs(value - float(mmd2(x.double(), y.double()))) < 1e-6
