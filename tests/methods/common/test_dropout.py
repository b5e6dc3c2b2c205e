import pytest
import torch

from zsseg_bench.methods.common.dropout import FastDropout


def test_fast_dropout_keeps_the_expected_share_and_the_mean():
    torch.manual_seed(0)
    drop = FastDropout(0.3).train()
    x = torch.ones(200_000)
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.02


def test_fast_dropout_is_identity_in_eval_and_at_p0_and_rejects_p1():
    x = torch.randn(4, 8)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    with pytest.raises(ValueError):
        FastDropout(1.0)


def test_fast_dropout_gradient_flows_through_kept_elements_only():
    x = torch.randn(1000, requires_grad=True)
    y = FastDropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)
