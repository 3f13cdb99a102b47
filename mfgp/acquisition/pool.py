"""Joint posterior moments over a finite pool, in bounded-memory batches on the model's device.

Every pool acquisition of :mod:`mfgp.acquisition` needs, for each candidate row ``c`` (a
composition at a fidelity) and a reference set ``R`` of target-fidelity rows (the pool's
compositions at the target):

* the predictive variance of the observation ``y_c`` (noise included),
* the posterior covariance ``cov(f_T(r), y_c) = cov(f_T(r), f(c))`` with every ``r`` in ``R``
  (observation noise is independent, so it never enters a cross term),
* the posterior means at ``R`` and at the candidates.

:func:`pool_moments` gets them from the model's own joint posterior at ``[C_batch, R]``, so it
works for every BoTorch model of the package (the explicit-latent chain included); with
mfgp's cached Cholesky factor a batch is one kernel evaluation against the training rows and
one triangular solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.linalg import exact_solves
from mfgp.predict import model_device

__all__ = ["PoolMoments", "pool_moments"]


@dataclass
class PoolMoments:
    """Moments of a pool of candidates ``C`` and a reference set ``R`` (see the module).

    Attributes:
        mean: ``n_c`` posterior means at the candidates (their own fidelity).
        var_f: ``n_c`` posterior variances of the function at the candidates.
        var_y: ``n_c`` predictive variances of an observation at the candidates.
        mean_ref: ``m`` posterior means at the reference rows (target fidelity).
        var_ref: ``m`` posterior variances of the function at the reference rows.
        cross: ``m x n_c`` ``cov(f_T(r), y_c)``.
    """

    mean: Tensor
    var_f: Tensor
    var_y: Tensor
    mean_ref: Tensor
    var_ref: Tensor
    cross: Tensor


@torch.no_grad()
def pool_moments(model, C: Tensor, R: Tensor, *, batch_size: int = 512) -> PoolMoments:
    """The moments of candidates ``C`` (``n_c x (d + 1)``) and reference rows ``R`` (``m x ...``).

    Args:
        model: a single-output BoTorch model on contract inputs.
        C: candidate rows, each at the fidelity it would be observed at.
        R: reference rows at the target fidelity (the pool whose map one wants to learn, or
            among which one looks for the best).
        batch_size: candidates per joint posterior call (``(batch + m)^2`` covariance entries).
    """
    if C.dim() != 2 or R.dim() != 2 or C.shape[-1] != R.shape[-1]:
        raise ShapeError(
            f"C and R must be n x (d + 1) contract inputs of one width; got {tuple(C.shape)} "
            f"and {tuple(R.shape)}"
        )
    if batch_size < 1:
        raise InputDataError(f"batch_size must be >= 1; got {batch_size}")
    device, dtype = model_device(model)
    C, R = C.to(device=device, dtype=dtype), R.to(device=device, dtype=dtype)
    m, n = R.shape[0], C.shape[0]
    out = PoolMoments(*(torch.empty(k, dtype=dtype, device=device) for k in (n, n, n, m, m)),
                      cross=torch.empty(m, n, dtype=dtype, device=device))  # fmt: skip
    model.eval()
    for start in range(0, max(n, 1), batch_size):
        rows = slice(start, min(start + batch_size, n))
        b = rows.stop - rows.start
        with exact_solves():
            post = model.posterior(torch.cat([C[rows], R]))
            cov = post.distribution.covariance_matrix
            mean = post.mean.reshape(-1)
            noisy = model.posterior(C[rows], observation_noise=True).variance.reshape(-1)
        out.mean[rows], out.var_f[rows] = mean[:b], cov.diagonal()[:b]
        out.var_y[rows] = noisy.clamp_min(1e-12)
        out.cross[:, rows] = cov[b:, :b]
        if start == 0:
            out.mean_ref, out.var_ref = mean[b:].clone(), cov.diagonal()[b:].clone()
    return out
