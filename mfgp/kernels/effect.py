"""A composition's own effect: an identity kernel on the composition, shared up the AR1 chain.

A lower fidelity's value of a composition carries structure that no smooth function of its
composition features can see: the polymorph a DFT database keeps, its ground state. A
composition-only GP puts that structure in the level's noise and discards it, although the
level above inherits it (the experimental gap of ZnO follows ZnO's own PBE gap, not the PBE
gap of compositions with similar features). :class:`CompositionEffect` models it as a GP of
its own,

``k_e((x, c), (x', c')) = s^2 [c = c']``,

nonzero only between rows of the same composition ``c``. Added to level ``t``'s discrepancy
kernel of an :class:`~mfgp.kernels.AR1Kernel` (:class:`WithCompositionEffect`), the effect is
part of ``f_t`` and is carried to every level above by ``rho``: a composition's own computed
value then moves its prediction above, by the share ``s^2 / (s^2 + sigma_t^2)`` of its
deviation that the fit attributes to the composition rather than to noise.

The composition enters the GP's inputs as two key columns, :func:`composition_keys` of the raw
featurizer output: a hash of the featurizer's exact output, which is a deterministic function
of the reduced composition (the same formula featurized alone or in any batch gives the same
bits). :class:`CompositionKeyedMap` appends them in front of the fidelity column.
"""

from __future__ import annotations

import functools

import torch
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel
from torch import Tensor

__all__ = ["KEY_COLUMNS", "CompositionEffect", "CompositionKeyedMap", "WithCompositionEffect",
           "composition_keys"]  # fmt: skip

#: number of key columns a keyed map appends (two 22-bit halves of a 44-bit hash: exact in
#: float32 and float64 alike)
KEY_COLUMNS = 2
_HALF_BITS = 22
_MASK = (1 << _HALF_BITS) - 1


@functools.lru_cache(maxsize=8)
def _multipliers(d: int) -> Tensor:
    """Odd 62-bit multipliers, one per column: a multiply-add hash (wrapping int64 arithmetic)."""
    g = torch.Generator().manual_seed(20261206)
    return torch.randint(0, 2**62, (d,), generator=g, dtype=torch.int64) | 1


def composition_keys(feats: Tensor) -> Tensor:
    """``... x 2`` integer-valued keys of raw feature rows ``... x d``, in ``feats``'s dtype.

    Equal rows get equal keys; distinct rows collide with probability about ``2^-44`` per
    pair. Works on the rows' exact bits (``-0.0`` is taken as ``0.0``), on their device.
    """
    x = (feats + 0.0).contiguous()
    if x.dtype == torch.float64:
        bits = x.view(torch.int64)
    elif x.dtype == torch.float32:
        bits = x.view(torch.int32).to(torch.int64)
    else:
        bits = x.to(torch.float32).view(torch.int32).to(torch.int64)
    h = (bits * _multipliers(bits.shape[-1]).to(bits.device)).sum(-1)
    for shift, factor in ((31, 0x7FB5D329728EA185), (27, 0x1B873593F2C9A4B7)):
        h = torch.bitwise_xor(h, torch.bitwise_right_shift(h, shift)) * factor
    h = torch.bitwise_xor(h, torch.bitwise_right_shift(h, 33))
    lo = torch.bitwise_and(h, _MASK)
    hi = torch.bitwise_and(torch.bitwise_right_shift(h, _HALF_BITS), _MASK)
    return torch.stack([hi, lo], dim=-1).to(feats.dtype)


class CompositionKeyedMap(torch.nn.Module):
    """``[features, fidelity] -> [map(features), keys, fidelity]``: a feature map plus the keys.

    Holds no state of its own: its ``state_dict`` is the wrapped map's (under ``inner.``).

    Args:
        inner: the raw-feature map (a :class:`~mfgp.models.FeatureMap`), or ``None`` for the
            identity.
    """

    def __init__(self, inner: torch.nn.Module | None) -> None:
        super().__init__()
        self.inner = inner

    @property
    def data_kernel(self):
        """The kernel factory the wrapped map asks for (see :class:`~mfgp.models.FeatureMap`)."""
        return getattr(self.inner, "data_kernel", None)

    def forward(self, X: Tensor) -> Tensor:
        """Map the features, then put the composition keys before the fidelity column."""
        Z = X if self.inner is None else self.inner(X)
        keys = composition_keys(X[..., :-1]).to(Z)
        return torch.cat([Z[..., :-1], keys, Z[..., -1:]], dim=-1)


class CompositionEffect(Kernel):
    """``s^2 [key(x) = key(x')]`` on the :data:`KEY_COLUMNS` key columns it is given.

    Args:
        active_dims: the key columns of the inputs it is called on.
        variance: initial ``s^2``.
    """

    has_lengthscale = False

    def __init__(self, active_dims, variance: float = 0.1, **kwargs) -> None:
        super().__init__(active_dims=torch.as_tensor(list(active_dims)), **kwargs)
        self.register_parameter("raw_variance", torch.nn.Parameter(torch.zeros(())))
        self.register_constraint("raw_variance", Positive())
        self.variance = variance

    @property
    def variance(self) -> Tensor:
        """``s^2``, the effect's variance (standardised outcome units)."""
        return self.raw_variance_constraint.transform(self.raw_variance)

    @variance.setter
    def variance(self, value) -> None:
        value = torch.as_tensor(value, dtype=self.raw_variance.dtype,
                                device=self.raw_variance.device).clamp_min(1e-30)  # fmt: skip
        self.initialize(raw_variance=self.raw_variance_constraint.inverse_transform(value))

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        if diag:
            same = (x1 == x2).all(-1)
        else:
            same = (x1.unsqueeze(-2) == x2.unsqueeze(-3)).all(-1)
        return self.variance * same.to(x1.dtype)


class WithCompositionEffect(Kernel):
    """A level's discrepancy kernel plus its composition effect: ``k(x, x') + k_e(c, c')``.

    Args:
        base: the kernel on the features (it selects its columns with ``active_dims``).
        effect: the :class:`CompositionEffect` (on the key columns).
    """

    def __init__(self, base: Kernel, effect: CompositionEffect) -> None:
        super().__init__()
        self.base = base
        self.effect = effect

    @property
    def outputscale(self) -> Tensor:
        """The base kernel's output scale (what a sparse level's prior acts on)."""
        return self.base.outputscale

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:  # noqa: D102
        base, effect = self.base(x1, x2, diag=diag), self.effect(x1, x2, diag=diag)
        if not diag:
            base, effect = base.to_dense(), effect.to_dense()
        return base + effect
