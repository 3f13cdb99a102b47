"""Kernels that mix the features of several frozen source models (a mixture of experts).

The input space is the concatenation of ``E`` experts' feature blocks (an
:class:`~mfgp.experts.ExpertStack`). Two ways to learn how much each expert contributes, both
by marginal likelihood, both with weights that sum to one and are read by ``weights()``:

* :class:`AdditiveExpertKernel`: ``k(x, x') = sum_e s_e k_e(phi_e(x), phi_e(x'))``, one
  Matern-5/2 per expert with its own output scale ``s_e`` (isotropic on a learned source's
  features, plus a linear kernel on its own prediction of its property; ARD on hand-made
  features); the weight of expert ``e`` is its share of the prior variance.
* :class:`GatedExpertKernel`: ``k(x, x') = s k(sum_e g_e phi_e(x), sum_e g_e phi_e(x'))`` with
  ``g = softmax(a)``, one scalar ``a_e`` per expert (Chang, Wang and Ertekin 2022's gate, here
  learned with the GP rather than a network head).

Either can be the data kernel of every mfgp architecture (each level of the AR1 and of the
multi-task model gets its own, so each level says which sources explain it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gpytorch.kernels import Kernel, LinearKernel, ScaleKernel
from gpytorch.priors import NormalPrior
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.kernels.coregional import default_data_kernel, matern_ard

__all__ = ["AdditiveExpertKernel", "GatedExpertKernel", "mixture_kernel"]


def _dims(active_dims: Sequence[int] | None) -> Tensor | None:
    return None if active_dims is None else torch.tensor(list(active_dims))


class AdditiveExpertKernel(Kernel):
    """A sum of scaled Matern-5/2 kernels, one per block of input columns.

    A block flagged in ``linear`` is a learned source's: its last column is the source model's
    prediction of its own property, which also gets a linear kernel (a learned multiple of the
    source's prediction, like the difference architecture's ``rho f_low``), and its Matern is
    isotropic. Other blocks (hand-made features) get an ARD Matern.

    Args:
        blocks: number of columns of each expert, in input order.
        active_dims: the input columns the blocks are laid over (default all).
        linear: per block, whether it ends in a source prediction (default none).

    Example:
        >>> k = AdditiveExpertKernel([2, 3])
        >>> k(torch.rand(4, 5)).shape, float(k.weights().sum())
        (torch.Size([4, 4]), 1.0)
    """

    def __init__(self, blocks: Sequence[int], active_dims: Sequence[int] | None = None,
                 linear: Sequence[bool] | None = None) -> None:  # fmt: skip
        super().__init__(active_dims=_dims(active_dims))
        self.blocks = [int(b) for b in blocks]
        flags = [False] * len(self.blocks) if linear is None else [bool(v) for v in linear]
        if len(flags) != len(self.blocks):
            raise ShapeError(f"linear has {len(flags)} flags for {len(self.blocks)} blocks")
        self.has_linear = flags
        # a learned source's block (it ends in its prediction) gets one lengthscale: on the
        # development split (seed 0 of benchmarks/bench_experts.py) that beat ARD on the band
        # gaps at every size and was better calibrated at 25-200 labels; hand-made features
        # (the Magpie block) keep ARD, which is what makes them strong with many labels
        self.kernels = torch.nn.ModuleList([ScaleKernel(matern_ard(b, ard=not lin))
                                            for b, lin in zip(self.blocks, self.has_linear)])
        for k in self.kernels:  # start with the prior variance shared equally
            k.outputscale = 1.0 / len(self.blocks)
        self.linear = torch.nn.ModuleList(
            [LinearKernel() if flag else torch.nn.Identity() for flag in self.has_linear]
        )
        for k in self.linear:
            if isinstance(k, LinearKernel):
                k.variance = 1.0 / len(self.blocks)

    def _parts(self, x: Tensor) -> list[Tensor]:
        if x.shape[-1] != sum(self.blocks):
            raise ShapeError(f"the kernel takes {sum(self.blocks)} columns, got {x.shape[-1]}")
        return list(torch.split(x, self.blocks, dim=-1))

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        out = None
        for k, lin, a, b in zip(self.kernels, self.linear, self._parts(x1), self._parts(x2)):
            term = k(a, b, diag=diag)
            term = term if diag else term.to_dense()
            if isinstance(lin, LinearKernel):
                extra = lin(a[..., -1:], b[..., -1:], diag=diag)
                term = term + (extra if diag else extra.to_dense())
            out = term if out is None else out + term
        return out

    def weights(self) -> Tensor:
        """Each expert's share of the prior variance (sums to one).

        An expert's variance is its Matern output scale plus, with a linear term on its
        source prediction ``p`` (the block's last column, min-max normalised to [0, 1] by the
        GP), that term's variance times 1/3, the mean of ``p^2`` for ``p`` uniform on [0, 1].
        """
        parts = []
        for k, lin in zip(self.kernels, self.linear):
            v = k.outputscale.detach().reshape(())
            if isinstance(lin, LinearKernel):
                v = v + lin.variance.detach().reshape(()) / 3
            parts.append(v)
        s = torch.stack(parts)
        return s / s.sum()


class GatedExpertKernel(Kernel):
    """One scaled ARD Matern-5/2 on a softmax-gated sum of equally wide expert blocks.

    Args:
        num_experts: ``E``.
        dim: columns of each expert's block.
        active_dims: the input columns the blocks are laid over (default all).

    Example:
        >>> k = GatedExpertKernel(3, 2)
        >>> k(torch.rand(4, 6)).shape, [round(w, 4) for w in k.weights().tolist()]
        (torch.Size([4, 4]), [0.3333, 0.3333, 0.3333])
    """

    def __init__(self, num_experts: int, dim: int,
                 active_dims: Sequence[int] | None = None) -> None:  # fmt: skip
        super().__init__(active_dims=_dims(active_dims))
        self.num_experts, self.dim = int(num_experts), int(dim)
        self.register_parameter("gate_logits", torch.nn.Parameter(torch.zeros(self.num_experts)))
        # a weak prior keeps a gate from running off to +-inf when two experts are redundant
        self.register_prior("gate_prior", NormalPrior(0.0, 2.0), lambda m: m.gate_logits)
        self.base = ScaleKernel(matern_ard(self.dim))

    def mix(self, x: Tensor) -> Tensor:
        """``... x (E * dim)`` -> ``... x dim``: the gated sum of the experts' features."""
        if x.shape[-1] != self.num_experts * self.dim:
            raise ShapeError(
                f"the kernel takes {self.num_experts} x {self.dim} columns, got {x.shape[-1]}"
            )
        parts = x.reshape(*x.shape[:-1], self.num_experts, self.dim)
        g = torch.softmax(self.gate_logits, dim=-1).to(x)
        return (parts * g.unsqueeze(-1)).sum(-2)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        out = self.base(self.mix(x1), self.mix(x2), diag=diag)
        return out if diag else out.to_dense()

    def weights(self) -> Tensor:
        """The gate, ``softmax(a)`` (sums to one)."""
        return torch.softmax(self.gate_logits.detach(), dim=-1)


def mixture_kernel(mixture: str, blocks: Sequence[int], active_dims: Sequence[int] | None = None,
                   linear: Sequence[bool] | None = None) -> Kernel:  # fmt: skip
    """The data kernel over concatenated expert blocks.

    Args:
        mixture: ``"additive"`` (:class:`AdditiveExpertKernel`), ``"gated"``
            (:class:`GatedExpertKernel`) or ``"concat"`` (one ARD Matern on all the columns,
            :func:`~mfgp.kernels.default_data_kernel`).
        blocks: columns of each expert.
        active_dims: the input columns the blocks occupy.
        linear: (``"additive"``) for each block, whether its last column is the source's
            prediction, which then also gets a linear kernel (a learned scale of the source
            model's own prediction, the difference architecture's ``rho f_source``).
    """
    if mixture == "additive":
        return AdditiveExpertKernel(blocks, active_dims, linear)
    if mixture == "gated":
        if len(set(blocks)) != 1:
            raise InputDataError(f"a gated mixture needs equally wide experts; got {list(blocks)}")
        return GatedExpertKernel(len(blocks), blocks[0], active_dims)
    if mixture == "concat":
        return default_data_kernel(sum(blocks), active_dims=active_dims)
    raise InputDataError(f"mixture must be 'additive', 'gated' or 'concat'; got {mixture!r}")
