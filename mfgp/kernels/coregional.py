"""Coregionalisation kernels: linear model of coregionalisation and Kennedy-O'Hagan AR1."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from gpytorch import settings as gpytorch_settings
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import IndexKernel, Kernel, ScaleKernel
from gpytorch.kernels import MaternKernel as _GPyTorchMatern
from gpytorch.priors import LogNormalPrior, NormalPrior
from torch import Tensor

from mfgp.exceptions import ShapeError

__all__ = ["AR1Kernel", "CoregionalKernel", "LCMKernel", "MaternKernel", "default_data_kernel",
           "matern_ard"]  # fmt: skip


class MaternKernel(_GPyTorchMatern):
    """GPyTorch's Matern kernel, whose ARD Matern-5/2 block is evaluated in place without autograd.

    Prediction evaluates the kernel between every training row and a block of queries (a
    screen: thousands of rows by thousands of candidates, tens of MB a block). GPyTorch's
    forward builds its result from eight temporaries of that size; without autograd
    (``torch.no_grad()``, nothing requiring a gradient) this one reuses two, with the same
    operations in the same order, so the values are the same bits (tested). Anything else
    (gradients, the diagonal, another ``nu``, one lengthscale, trace mode) is GPyTorch's.
    """

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        grad = torch.is_grad_enabled() and (
            x1.requires_grad or x2.requires_grad or self.raw_lengthscale.requires_grad
        )  # fmt: skip
        if (grad or diag or self.nu != 2.5 or self.ard_num_dims is None or self.ard_num_dims < 2
                or params.get("last_dim_is_batch", False) or gpytorch_settings.trace_mode.on()):
            return super().forward(x1, x2, diag=diag, **params)
        mean = x1.mean(dim=-2, keepdim=True)
        x1_ = (x1 - mean).div(self.lengthscale)
        x2_ = (x2 - mean).div(self.lengthscale)
        if params or torch.equal(x1_, x2_):
            return matern52_(self.covar_dist(x1_, x2_, **params))
        # GPyTorch's distance between different inputs, with its clamp in place
        return matern52_(torch.cdist(x1_, x2_).clamp_min_(1e-15))


def matern52_(d: Tensor) -> Tensor:
    """Matern-5/2 of distances ``d`` (scaled by the lengthscales), reusing ``d``'s memory.

    GPyTorch's ``exp(-sqrt(5) d) * ((sqrt(5) d + 1) + 5/3 d^2)`` with the same operations in
    the same order (the same bits), two temporaries instead of eight; ``d`` is overwritten.
    """
    t = d * math.sqrt(5)
    e = torch.neg(t).exp_()
    d.square_().mul_(5.0 / 3.0)
    return t.add_(1).add_(d).mul_(e)


def matern_ard(
    d: int,
    batch_shape: torch.Size | None = None,
    active_dims: Sequence[int] | None = None,
    lengthscale_min: float = 2.5e-2,
    ard: bool = True,
) -> MaternKernel:
    """ARD Matern-5/2 with BoTorch's dimension-scaled lengthscale prior, lengthscales >= 0.025.

    The prior ``LogNormal(sqrt(2) + log(d) / 2, sqrt(3))`` (Hvarfner et al. 2024) keeps
    high-dimensional inputs from being over-fitted. The lower bound matters numerically too:
    GPyTorch evaluates distances as ``|x|^2 + |x'|^2 - 2 x.x'`` on ``x / lengthscale``, which
    loses all precision (a kernel matrix with eigenvalues of -0.1) once a lengthscale drifts
    to 1e-7, as an unconstrained one did on the band-gap data. ``lengthscale_min`` raises
    the bound where a kernel must stay smooth (the explicit-latent model's kernel on its latent).
    ``ard=False``: one lengthscale for all ``d`` inputs, with the same prior.
    """
    batch_shape = torch.Size() if batch_shape is None else batch_shape
    prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
    dims = None if active_dims is None else torch.tensor(list(active_dims))
    return MaternKernel(
        nu=2.5,
        ard_num_dims=d if ard else None,
        batch_shape=batch_shape,
        active_dims=dims,
        lengthscale_prior=prior,
        # softplus-transformed bound: mfgp fits with unconstrained L-BFGS (no box bounds)
        lengthscale_constraint=GreaterThan(
            lengthscale_min, initial_value=max(prior.mode, 2 * lengthscale_min)
        ),
    )


def default_data_kernel(
    d: int, batch_shape: torch.Size | None = None, active_dims: Sequence[int] | None = None
) -> ScaleKernel:
    """:func:`matern_ard` with an output scale: the data kernel of every mfgp model."""
    batch_shape = torch.Size() if batch_shape is None else batch_shape
    # active_dims on the outer kernel: ScaleKernel calls its base kernel's forward directly
    dims = None if active_dims is None else torch.tensor(list(active_dims))
    return ScaleKernel(matern_ard(d, batch_shape), batch_shape=batch_shape, active_dims=dims)


class CoregionalKernel(Kernel):
    """``K((x, s), (x', t)) = sum_q B_q[s, t] k_q(x, x')`` on inputs ``... x n x (d + 1)``.

    Subclasses define :meth:`task_covariances` (``Q x T x T``). The last input column is the
    fidelity index; the data kernels see the first ``d`` columns only.

    Args:
        data_kernels: ``Q`` kernels on the features.
        num_tasks: ``T``, the number of fidelities (or tasks).
    """

    def __init__(self, data_kernels: Sequence[Kernel], num_tasks: int) -> None:
        super().__init__()
        self.data_kernels = torch.nn.ModuleList(data_kernels)
        self.num_tasks = num_tasks

    def task_covariances(self) -> Tensor:
        """``Q x T x T`` positive semi-definite task covariances."""
        raise NotImplementedError

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] < 2:
            raise ShapeError(
                "inputs must be ... x n x (d + 1) with the fidelity index last; "
                f"got {tuple(x.shape)}"
            )
        s = x[..., -1].round().long()
        if s.numel() and (s.min() < 0 or s.max() >= self.num_tasks):
            raise ShapeError(
                f"fidelity index {int(s.max() if s.max() >= self.num_tasks else s.min())} outside "
                f"0..{self.num_tasks - 1}: the last input column must be the fidelity index"
            )
        return x[..., :-1], s

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        f1, s1 = self._split(x1)
        f2, s2 = self._split(x2)
        B = self.task_covariances()
        out = None
        for q, kernel in enumerate(self.data_kernels):
            if diag:
                term = B[q][s1, s2] * kernel(f1, f2, diag=True)
            else:
                Kq = kernel(f1, f2).to_dense()
                term = B[q][s1.unsqueeze(-1), s2.unsqueeze(-2)] * Kq
            out = term if out is None else out + term
        return out


class LCMKernel(CoregionalKernel):
    """Linear model of coregionalisation: ``B_q = W_q W_q^T + diag(v_q)`` (ICM when ``Q = 1``).

    Args:
        data_kernels: ``Q`` kernels on the features (one gives the intrinsic model, ICM).
        num_tasks: number of tasks or fidelities.
        rank: rank of each ``W_q``.
    """

    def __init__(self, data_kernels: Sequence[Kernel], num_tasks: int, rank: int = 1) -> None:
        super().__init__(data_kernels, num_tasks)
        self.task_kernels = torch.nn.ModuleList(
            [IndexKernel(num_tasks=num_tasks, rank=rank) for _ in data_kernels]
        )

    def task_covariances(self) -> Tensor:  # noqa: D102
        return torch.stack([k.covar_matrix.to_dense() for k in self.task_kernels])

    def task_correlation(self) -> Tensor:
        """``T x T`` correlation between tasks implied by the summed task covariances."""
        B = self.task_covariances().sum(0)
        d = B.diagonal().sqrt()
        return B / (d[:, None] * d[None, :])


class AR1Kernel(CoregionalKernel):
    """Kennedy-O'Hagan autoregressive kernel for ``T`` ordered fidelities.

    ``f_0 = delta_0`` and ``f_t = rho_t f_{t-1} + delta_t`` with independent GPs ``delta_t``, so
    ``f_t(x) = sum_{j<=t} c_{j,t}(x) delta_j(x)`` with ``c_{j,t} = prod_{k=j+1}^{t} rho_k`` and

    ``K((x, s), (x', t)) = sum_j c_{j,s}(x) c_{j,t}(x') k_j(x, x')``:

    one exact joint kernel over all fidelities. With ``rho_dims = None`` each ``rho_t`` is a
    constant (``B_j = c_j c_j^T`` are then ordinary task covariances). With ``rho_dims = d`` it is
    a smooth function of the (min-max normalised) features, ``rho_t(x) = rho_t + w_t . (x - 1/2)``
    (Le Gratiet 2013's ``rho(x) = g(x)^T beta`` with a linear basis), and the weights ``w_t`` have
    a ``N(0, 1 / d)`` prior, so that ``rho`` varies by about +-0.3 over the data unless the data
    insist.

    Args:
        data_kernels: ``T`` kernels, the one of ``delta_t`` at position ``t``.
        num_tasks: ``T``; defaults to ``len(data_kernels)``.
        rho_dims: ``None`` (constant ``rho_t``) or the number ``d`` of features ``rho_t(x)``
            is linear in.
    """

    def __init__(
        self,
        data_kernels: Sequence[Kernel],
        num_tasks: int | None = None,
        rho_dims: int | None = None,
    ) -> None:
        T = len(data_kernels) if num_tasks is None else num_tasks
        if len(data_kernels) != T:
            raise ShapeError(f"AR1 needs one data kernel per fidelity: {len(data_kernels)} != {T}")
        super().__init__(data_kernels, T)
        self.register_parameter("rho", torch.nn.Parameter(torch.ones(max(T - 1, 0))))
        self.rho_dims = rho_dims
        if rho_dims is None:
            self.rho_weights = None
        else:
            if rho_dims < 1:
                raise ShapeError(f"rho_dims must be None or >= 1; got {rho_dims}")
            weights = torch.nn.Parameter(torch.zeros(max(T - 1, 0), rho_dims))
            self.register_parameter("rho_weights", weights)
            self.register_prior(
                "rho_weights_prior",
                NormalPrior(0.0, 1.0 / math.sqrt(rho_dims)),
                lambda m: m.rho_weights,
            )

    def rho_at(self, f: Tensor) -> Tensor:
        """``rho_1(x) .. rho_{T-1}(x)`` at features ``... x n x d``: ``... x n x (T - 1)``."""
        if self.rho_weights is None:
            return self.rho.expand(*f.shape[:-1], self.rho.shape[0])
        return self.rho + (f[..., : self.rho_dims] - 0.5) @ self.rho_weights.transpose(-1, -2)

    def scales(self, f: Tensor, s: Tensor) -> Tensor:
        """``... x n x T``: entry ``[i, j]`` is ``c_{j, s_i}(x_i)`` (0 where ``j > s_i``)."""
        R = self.rho_at(f)
        eye = torch.eye(self.num_tasks, dtype=f.dtype, device=f.device)
        v = eye[0].expand(*f.shape[:-1], self.num_tasks)
        per_level = [v]
        for t in range(1, self.num_tasks):
            v = v * R[..., t - 1 : t] + eye[t]
            per_level.append(v)
        V = torch.stack(per_level, dim=-2)  # ... x n x T(level) x T(j)
        index = s[..., None, None].expand(*s.shape, 1, self.num_tasks)
        return V.gather(-2, index).squeeze(-2)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        f1, s1 = self._split(x1)
        f2, s2 = self._split(x2)
        A1, A2 = self.scales(f1, s1), self.scales(f2, s2)
        out = None
        for j, kernel in enumerate(self.data_kernels):
            if diag:
                term = A1[..., j] * A2[..., j] * kernel(f1, f2, diag=True)
            elif self._in_place(kernel, s1, s2):
                # prediction: the block scaled in place, on the rows at level >= j only (a
                # prediction at the target level against every training row evaluated delta_1
                # on the PBE rows too, to multiply it by 0)
                rows = self._levels_from(j, s1, s2) if out is not None else None
                i1, i2 = rows if rows is not None else (slice(None), slice(None))
                if rows is not None and not (i1.numel() and i2.numel()):
                    continue
                g1, g2 = f1[i1], f2[i2]
                if kernel.active_dims is not None:  # what ScaleKernel's call would select
                    g1 = g1.index_select(-1, kernel.active_dims)
                    g2 = g2.index_select(-1, kernel.active_dims)
                block = kernel.base_kernel.forward(g1, g2)  # a fresh tensor, as ScaleKernel's
                block.mul_((kernel.outputscale * A1[i1, j])[:, None]).mul_(A2[None, i2, j])
                if out is None:
                    out = block
                elif rows is None:
                    out.add_(block)
                else:
                    out.index_put_((i1[:, None], i2[None, :]), block, accumulate=True)
                continue
            elif (out is not None and out.dim() == 2
                  and (rows := self._levels_from(j, s1, s2)) is not None):  # fmt: skip
                # delta_j enters only rows at level >= j: evaluate its kernel on those alone
                # (a prediction at the target level against every training row evaluated
                # delta_1 on the PBE rows too, to multiply it by 0)
                i1, i2 = rows
                if i1.numel() and i2.numel():
                    block = kernel(f1[i1], f2[i2]).to_dense()
                    block = A1[i1, j, None] * A2[None, i2, j] * block
                    # in place: ``out`` is the fresh sum of the terms before
                    out.index_put_((i1[:, None], i2[None, :]), block, accumulate=True)
                continue
            else:
                term = A1[..., :, j, None] * A2[..., None, :, j] * kernel(f1, f2).to_dense()
            out = term if out is None else out + term
        return out

    @staticmethod
    def _in_place(kernel, s1: Tensor, s2: Tensor) -> bool:
        """Whether ``kernel``'s block may be built and scaled in place (prediction, see forward).

        Without autograd, for unbatched inputs and a ScaleKernel over mfgp's
        :class:`MaternKernel` (whose block is a fresh tensor): the entries are the same
        products as the dense form's, in another order (equal to rounding).
        """
        return (not torch.is_grad_enabled() and s1.dim() == 1 and s2.dim() == 1
                and type(kernel) is ScaleKernel and kernel.outputscale.dim() == 0
                and type(kernel.base_kernel) is MaternKernel)  # fmt: skip

    @staticmethod
    def _levels_from(j: int, s1: Tensor, s2: Tensor) -> tuple[Tensor, Tensor] | None:
        """Rows of ``x1`` and ``x2`` at level ``>= j``, where that leaves some out; else ``None``.

        Only without autograd and for unbatched inputs (prediction: the cached factor and the
        cross-covariances), where the skipped entries are exact zeros (``0 * k``), so the sum
        is the same; fitting keeps the dense form.
        """
        if torch.is_grad_enabled() or s1.dim() != 1 or s2.dim() != 1:
            return None
        k1, k2 = s1 >= j, s2 >= j
        if bool(k1.all()) and bool(k2.all()):
            return None
        return torch.nonzero(k1).squeeze(-1), torch.nonzero(k2).squeeze(-1)

    def coefficients(self) -> Tensor:
        """``T x T`` matrix ``C[j, t] = c_{j,t}`` of the constant ``rho_t`` (zero for ``t < j``)."""
        T = self.num_tasks
        rows = []
        for j in range(T):
            entries = []
            for t in range(T):
                if t < j:
                    entries.append(torch.zeros((), dtype=self.rho.dtype, device=self.rho.device))
                elif t == j:
                    entries.append(torch.ones((), dtype=self.rho.dtype, device=self.rho.device))
                else:
                    entries.append(entries[-1] * self.rho[t - 1])
            rows.append(torch.stack(entries))
        return torch.stack(rows)

    def task_covariances(self) -> Tensor:
        """``T x T x T`` covariances ``B_j = c_j c_j^T`` (of the constant parts when ``rho(x)``)."""
        C = self.coefficients()
        return C.unsqueeze(-1) * C.unsqueeze(-2)
