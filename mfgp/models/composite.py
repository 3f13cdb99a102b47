"""Composite quantities: linear combinations of jointly predicted values, with their variance.

A reaction energy ``sum_i w_i H(x_i)``, or the gap between two fidelities ``f_hi(x) - f_lo(x)``,
is a linear map of the joint posterior: its variance ``w^T Sigma w`` includes the covariances,
and is smaller than the naive ``sum w_i^2 sigma_i^2`` when errors are positively correlated
(errors that cancel, as Hutchinson et al. exploit).
"""

from __future__ import annotations

import torch
from botorch.models.model import Model
from torch import Tensor

from mfgp.exceptions import ShapeError
from mfgp.models.base import exact_solves

__all__ = ["linear_combination"]


def linear_combination(
    model: Model,
    X: Tensor,
    weights: Tensor,
    observation_noise: bool = False,
    independent: bool = False,
) -> tuple[Tensor, ...]:
    """Mean and variance of ``W f(X)`` under the joint posterior.

    Args:
        model: any single-output BoTorch model.
        X: ``q x (d + 1)`` inputs (each row a composition at a fidelity).
        weights: ``q`` weights for one combination, or ``k x q`` for ``k`` combinations.
        observation_noise: include the observation noise of each term.
        independent: also return ``sum_i w_i^2 sigma_i^2``, the variance the combination would
            have if its terms were independent (the covariance's diagonal only).

    Returns:
        ``(mean, variance)`` (and the independent variance), each of shape ``k`` (or scalars
        for a single combination).

    Example:
        >>> # heat of reaction A + B -> AB: H(AB) - H(A) - H(B)
        >>> w = torch.tensor([-1.0, -1.0, 1.0])
        >>> m, v = linear_combination(model, X_abc, w)  # doctest: +SKIP
    """
    W = weights.to(X)
    single = W.dim() == 1
    W = W.unsqueeze(0) if single else W
    if W.shape[-1] != X.shape[-2]:
        raise ShapeError(f"weights have {W.shape[-1]} terms but X has {X.shape[-2]} rows")
    with exact_solves():
        post = model.posterior(X, observation_noise=observation_noise)
    mean = post.mean.squeeze(-1)
    cov = post.distribution.covariance_matrix
    m = W @ mean
    v = torch.einsum("kq,qr,kr->k", W, cov, W).clamp_min(0.0)
    out = (m, v, (W**2 * cov.diagonal(dim1=-2, dim2=-1)).sum(-1)) if independent else (m, v)
    return tuple(t[0] for t in out) if single else out
