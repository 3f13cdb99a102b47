"""The AR1 kernel is the Kennedy-O'Hagan model, written out by hand."""

import torch
from gpytorch.kernels import MaternKernel

from mfgp.kernels import AR1Kernel

DT = torch.float64


def kernels(T):
    out = []
    for t in range(T):
        k = MaternKernel(nu=2.5).to(DT)
        k.lengthscale = 0.2 + 0.3 * t
        out.append(k)
    return out


def at(x, level):
    return torch.cat([x, torch.full_like(x[:, :1], float(level))], -1)


def test_two_levels():
    ks = kernels(2)
    K = AR1Kernel(ks).to(DT)
    with torch.no_grad():
        K.rho.fill_(1.7)
    x, y = torch.rand(5, 1, dtype=DT), torch.rand(4, 1, dtype=DT)
    k0, k1 = ks[0](x, y).to_dense(), ks[1](x, y).to_dense()
    with torch.no_grad():
        torch.testing.assert_close(K(at(x, 1), at(y, 1)).to_dense(), 1.7**2 * k0 + k1)
        torch.testing.assert_close(K(at(x, 0), at(y, 1)).to_dense(), 1.7 * k0)
        torch.testing.assert_close(K(at(x, 1), at(y, 0)).to_dense(), 1.7 * k0)
        torch.testing.assert_close(K(at(x, 0), at(y, 0)).to_dense(), k0)


def test_three_levels():
    ks = kernels(3)
    K = AR1Kernel(ks).to(DT)
    with torch.no_grad():
        K.rho.copy_(torch.tensor([0.8, -1.3], dtype=DT))
    r1, r2 = 0.8, -1.3
    x, y = torch.rand(5, 1, dtype=DT), torch.rand(3, 1, dtype=DT)
    k0, k1, k2 = (k(x, y).to_dense() for k in ks)
    with torch.no_grad():
        torch.testing.assert_close(K(at(x, 2), at(y, 2)).to_dense(),
                                   r2**2 * (r1**2 * k0 + k1) + k2)  # fmt: skip
        torch.testing.assert_close(K(at(x, 1), at(y, 2)).to_dense(), r2 * (r1**2 * k0 + k1))
        torch.testing.assert_close(K(at(x, 0), at(y, 2)).to_dense(), r1 * r2 * k0)
        torch.testing.assert_close(K(at(x, 1), at(y, 1)).to_dense(), r1**2 * k0 + k1)


def test_rho_of_x():
    ks = kernels(2)
    K = AR1Kernel(ks, rho_dims=1).to(DT)
    with torch.no_grad():
        K.rho.fill_(1.2)
        K.rho_weights.fill_(0.5)
    x, y = torch.rand(5, 1, dtype=DT), torch.rand(4, 1, dtype=DT)
    rx, ry = 1.2 + 0.5 * (x - 0.5), 1.2 + 0.5 * (y - 0.5)  # rho(x) = rho + w (x - 1/2)
    k0, k1 = ks[0](x, y).to_dense(), ks[1](x, y).to_dense()
    with torch.no_grad():
        torch.testing.assert_close(K(at(x, 1), at(y, 1)).to_dense(), rx * ry.T * k0 + k1)
        torch.testing.assert_close(K(at(x, 0), at(y, 1)).to_dense(), ry.T * k0)
