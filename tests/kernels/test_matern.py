"""mfgp's Matern kernel: GPyTorch's values, with the no-gradient block evaluated in place."""

import gpytorch
import pytest
import torch

from mfgp.kernels import MaternKernel, matern_ard

DT = torch.float64


@pytest.mark.parametrize("shape", [(300, 200), (7, 1)])
def test_the_in_place_block_is_gpytorchs_to_the_bit(shape):
    """Issue 35: a screen evaluates training rows x candidates blocks of tens of MB; the
    in-place evaluation must give GPyTorch's values exactly (same operations, same order)."""
    g = torch.Generator().manual_seed(0)
    k = matern_ard(6)
    assert isinstance(k, MaternKernel)
    k.lengthscale = torch.rand(1, 6, generator=g, dtype=DT) + 0.2

    def ref(a, b, **kw):  # GPyTorch's forward on the same kernel
        return gpytorch.kernels.MaternKernel.forward(k, a, b, **kw)

    x1 = torch.rand(shape[0], 6, generator=g, dtype=DT)
    x2 = torch.rand(shape[1], 6, generator=g, dtype=DT)
    with torch.no_grad():
        fast = k.forward(x1, x2)
        assert torch.equal(fast, ref(x1, x2))
        assert torch.equal(k.forward(x1, x1), ref(x1, x1))
        assert torch.equal(k.forward(x1, x1, diag=True), ref(x1, x1, diag=True))
    # with gradients: GPyTorch's path, which differentiates
    x2g = x2.clone().requires_grad_(True)
    k.forward(x1, x2g).sum().backward()
    assert x2g.grad is not None and torch.isfinite(x2g.grad).all()
    out = k.forward(x1, x2)  # grad mode on, the lengthscale requires grad
    assert out.requires_grad
    torch.testing.assert_close(out.detach(), fast, rtol=0, atol=0)
