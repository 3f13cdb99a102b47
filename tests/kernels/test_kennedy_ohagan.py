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


def test_ar1_kernel_skips_lower_levels_only_where_their_term_is_zero():
    """Without autograd ``delta_j`` is evaluated on rows at level >= j only (issue 35: a
    target-level prediction evaluated it on every PBE row to multiply it by 0); the kernel must
    equal the dense sum on mixed levels, three fidelities, constant and input-dependent rho."""
    import torch

    from mfgp.kernels import AR1Kernel, default_data_kernel

    g = torch.Generator().manual_seed(0)
    for rho_dims in (None, 2):
        k = AR1Kernel([default_data_kernel(3) for _ in range(3)], rho_dims=rho_dims).double()
        with torch.no_grad():
            k.rho.copy_(torch.tensor([0.8, 1.3], dtype=torch.float64))
            if rho_dims:
                k.rho_weights.normal_(generator=g)
        x1 = torch.cat([torch.rand(40, 3, generator=g, dtype=torch.float64),
                        torch.randint(0, 3, (40, 1), generator=g).double()], -1)  # fmt: skip
        x2 = torch.cat([torch.rand(25, 3, generator=g, dtype=torch.float64),
                        torch.randint(1, 3, (25, 1), generator=g).double()], -1)  # fmt: skip
        dense = k.forward(x1, x2)  # grad mode: the dense form
        with torch.no_grad():
            assert AR1Kernel._levels_from(1, x1[:, -1].long(), x2[:, -1].long()) is not None
            sparse = k.forward(x1, x2)
            torch.testing.assert_close(sparse, dense.detach(), rtol=1e-13, atol=1e-14)
            torch.testing.assert_close(k.forward(x1, x1), k.forward(x1, x1).T, rtol=1e-13,
                                       atol=1e-14)  # fmt: skip
            batched = k.forward(x1.expand(2, -1, -1), x2.expand(2, -1, -1))
            torch.testing.assert_close(batched[1], dense.detach(), rtol=1e-13, atol=1e-14)


def test_ar1_kernel_in_place_prediction_blocks_equal_the_dense_form():
    """Without autograd a ScaleKernel-over-Matern term is built and scaled in place (issue 35:
    pool scoring's cross-covariances); it must equal the dense form, with the ScaleKernel's own
    active dimensions and beside a term that is not in place (an RBF)."""
    import torch
    from gpytorch.kernels import RBFKernel, ScaleKernel

    from mfgp.kernels import AR1Kernel
    from mfgp.kernels.coregional import matern_ard

    g = torch.Generator().manual_seed(1)
    terms = [ScaleKernel(matern_ard(2), active_dims=[0, 2]), ScaleKernel(RBFKernel()),
             ScaleKernel(matern_ard(3))]  # fmt: skip
    k = AR1Kernel(terms).double()
    with torch.no_grad():
        k.rho.copy_(torch.tensor([0.7, 1.1], dtype=torch.float64))
        for t in terms:
            t.outputscale = 0.5 + torch.rand((), generator=g, dtype=torch.float64)
    assert AR1Kernel._in_place(terms[0], torch.zeros(1), torch.zeros(1)) is False  # grad mode
    x1 = torch.cat([torch.rand(30, 3, generator=g, dtype=torch.float64),
                    torch.randint(0, 3, (30, 1), generator=g).double()], -1)  # fmt: skip
    x2 = torch.cat([torch.rand(20, 3, generator=g, dtype=torch.float64),
                    torch.randint(0, 3, (20, 1), generator=g).double()], -1)  # fmt: skip
    dense = k.forward(x1, x2).detach()
    with torch.no_grad():
        s = torch.zeros(1)
        assert [AR1Kernel._in_place(t, s, s) for t in terms] == [True, False, True]
        torch.testing.assert_close(k.forward(x1, x2), dense, rtol=1e-13, atol=1e-14)
