"""Joint posterior moments over a finite pool, in bounded-memory batches on the model's device.

Every pool acquisition of :mod:`mfgp.acquisition` needs, for each candidate row ``c`` (a
composition at a fidelity) and a reference set ``R`` of target-fidelity rows (the pool's
compositions at the target):

* the predictive variance of the observation ``y_c`` (noise included),
* the posterior covariance ``cov(f_T(r), y_c) = cov(f_T(r), f(c))`` with every ``r`` in ``R``
  (observation noise is independent, so it never enters a cross term),
* the posterior means at ``R`` and at the candidates.

:func:`pool_moments` gets them from the model's own joint posterior at ``[C_batch, R]``, so it
works for every BoTorch model (the explicit-latent chain included); for mfgp's exact GPs it
takes the candidates' marginals (one triangular solve per candidate, against the cached
Cholesky factor) and the cross covariances by :meth:`posterior_covariance` (a solve for the
``m`` reference columns only). :class:`GreedyUpdates` then conditions the moments on each
choice of a greedy batch by a rank-1 update, without a new posterior.

Inside :func:`mfgp.fastvar.fast_variances` (``variances="fast"`` of
:func:`~mfgp.acquisition.select_batch`, or ``"auto"`` for a large model and pool) every
variance and covariance here uses the model's low-rank cache of ``K^-1`` (the factor of
:class:`GreedyUpdates` included: ``rank x N`` instead of ``n x N``); means stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.linalg import exact_solves
from mfgp.predict import model_device, predict_marginals, training_rows

__all__ = [
    "GreedyUpdates",
    "PoolMoments",
    "marginal_moments",
    "observation_noise_variance",
    "pool_moments",
    "supports_updates",
    "twin_moments",
]


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


def supports_updates(model) -> bool:
    """Whether ``model`` gives posterior covariances against a few rows cheaply.

    True for mfgp's exact GPs (and a feature map over one): their
    ``posterior_covariance`` needs no ``n x N`` solve, and their observation noise depends on
    the row's fidelity only. Other models get the generic path (a full posterior per round).
    """
    inner = getattr(model, "model", model)  # a FeatureMapModel's wrapped GP
    return all(hasattr(m, name) for m in (model, inner)
               for name in ("pool_factor", "factor_cross", "posterior_covariance"))


def observation_noise_variance(model, C: Tensor) -> Tensor:
    """Each row's observation noise variance in the outcome's units (``n``).

    From one posterior pair per fidelity present: the predictive variance of a new
    observation less that of the function, so it is the noise a new measurement at that
    row's fidelity is predicted with (a known-noise model's mean known noise there).
    """
    fid = C[:, -1]
    out = torch.empty(C.shape[0], dtype=C.dtype, device=C.device)
    for level in torch.unique(fid):
        at = fid == level
        x = C[at][:1]
        noisy = model.posterior(x, observation_noise=True).variance.reshape(-1)
        out[at] = (noisy - model.posterior(x).variance.reshape(-1)).clamp_min(0.0)
    return out


@torch.no_grad()
def marginal_moments(model, C: Tensor, *, batch_size: int = 4096,
                     variances: str | None = None) -> PoolMoments:  # fmt: skip
    """:class:`PoolMoments` without a reference set (objectives that need only marginals).

    ``variances``: ``"exact"``, ``"fast"``, ``"auto"`` (decided on the rows of ``C``) or
    ``None`` (as an enclosing :func:`mfgp.fastvar.fast_variances` sets).
    """
    from mfgp.fastvar import resolve_variances, variances_mode

    if variances is not None:
        mode = resolve_variances(variances, training_rows(model), C.shape[0], model)
        with variances_mode(mode):
            return marginal_moments(model, C, batch_size=batch_size)
    device, dtype = model_device(model)
    C = C.to(device=device, dtype=dtype)
    # max_bytes: blocks of about 64 MB (a few hundred candidates against several thousand
    # training rows) were the fastest on 2 cores (measured by hand at 6,897 training rows:
    # 2^28 and 2^24 bytes were 15-50% slower)
    mean, var_f = predict_marginals(model, C, batch_size=batch_size, max_bytes=2**26)
    if supports_updates(model):
        var_y = var_f + observation_noise_variance(model, C)
    else:
        _, var_y = predict_marginals(model, C, observation_noise=True, batch_size=batch_size)
    empty = mean.new_empty(0)
    return PoolMoments(mean, var_f, var_y.clamp_min(1e-12), empty, empty,
                       mean.new_empty(0, mean.shape[0]))  # fmt: skip


@torch.no_grad()
def pool_moments(model, C: Tensor, R: Tensor, *, batch_size: int = 512) -> PoolMoments:
    """The moments of candidates ``C`` (``n_c x (d + 1)``) and reference rows ``R`` (``m x ...``).

    With an mfgp GP: the candidates' marginals (one triangular solve per candidate) and the
    cross covariances from :meth:`posterior_covariance` against ``R`` (one solve for the
    ``m`` reference columns, then products). Otherwise: the joint posterior at
    ``[C_batch, R]`` for each batch, which any BoTorch model gives.

    Args:
        model: a single-output BoTorch model on contract inputs.
        C: candidate rows, each at the fidelity it would be observed at.
        R: reference rows at the target fidelity (the pool whose map one wants to learn, or
            among which one looks for the best).
        batch_size: candidates per joint posterior call of the generic path
            (``(batch + m)^2`` covariance entries).
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
    model.eval()
    if supports_updates(model):
        return GreedyUpdates(model, C, R).moments
    m, n = R.shape[0], C.shape[0]
    out = PoolMoments(*(torch.empty(k, dtype=dtype, device=device) for k in (n, n, n, m, m)),
                      cross=torch.empty(m, n, dtype=dtype, device=device))  # fmt: skip
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


class GreedyUpdates:
    """A pool's moments, conditioned on each choice of a greedy batch by rank-1 updates.

    Observing ``y_c`` moves no posterior mean when its fantasy is its predicted mean (the
    kriging believer of a greedy batch) and lowers every covariance by ``u(a) u(b)`` with
    ``u(a) = cov(f(a), y_c) / sd(y_c)`` under the posterior before it. The covariances against
    each chosen row come from the first pass's factor (:meth:`pool_factor`, when
    ``n_train x N`` floats fit in ``max_bytes``; else :meth:`posterior_covariance`, a kernel
    pass per choice) and are corrected for the rows chosen before it, so a batch of ``q``
    costs one posterior pass over the pool, not ``q``. The result equals conditioning the
    model on the fantasies (tested).

    Args:
        model: an mfgp GP (:func:`supports_updates`).
        C: candidates; R: reference rows (``None``: marginal objectives).
        max_bytes: the most the kept factor may take.
    """

    def __init__(self, model, C: Tensor, R: Tensor | None = None, *,
                 max_bytes: int = 2**30) -> None:  # fmt: skip
        device, dtype = model_device(model)
        self.model = model
        self.C = C.to(device=device, dtype=dtype)
        self.R = None if R is None else R.to(device=device, dtype=dtype)
        self.u_c: list[Tensor] = []
        self.u_r: list[Tensor] = []
        with torch.no_grad():
            model.eval()
            n_train = training_rows(model)
            self.factor = self.factor_r = None
            n_ref = 0 if self.R is None else self.R.shape[0]
            if n_train * (self.C.shape[0] + n_ref) * self.C.element_size() <= max_bytes:
                # the factors of the pool and the reference rows: every covariance a choice
                # needs is then a kernel between two sets less a product, with no solve
                self.factor = model.pool_factor(self.C)
                mean, var_f = self.factor.mean, self.factor.var
                if self.R is not None:
                    self.factor_r = model.pool_factor(self.R)
            else:
                mean, var_f = predict_marginals(model, self.C)
            var_y = (var_f + observation_noise_variance(model, self.C)).clamp_min(1e-12)
            empty = mean.new_empty(0)
            self.moments = PoolMoments(mean, var_f, var_y, empty, empty,
                                       mean.new_empty(0, mean.shape[0]))  # fmt: skip
            if self.R is not None:
                m = self.moments
                if self.factor_r is not None:
                    m.mean_ref, m.var_ref = self.factor_r.mean, self.factor_r.var
                    m.cross = model.factor_cross(self.factor_r, self.factor).contiguous()
                else:
                    m.mean_ref, m.var_ref = predict_marginals(model, self.R)
                    m.cross = model.posterior_covariance(self.C, self.R).transpose(-1, -2) \
                        .contiguous()  # fmt: skip

    @torch.no_grad()
    def condition(self, row: int) -> None:
        """Update the moments in place for an observation of candidate ``row``."""
        mom, z = self.moments, self.C[row : row + 1]
        if self.factor is not None:  # the chosen row's own column of the pool's factor
            at = torch.tensor([row], device=self.C.device)
            cov_c = self.model.factor_cross(self.factor, self.factor, at).reshape(-1)
            cov_r = (self.model.factor_cross(self.factor_r, self.factor, at).reshape(-1)
                     if self.R is not None else None)  # fmt: skip
        else:
            cov_c = self.model.posterior_covariance(self.C, z).reshape(-1)
            cov_r = (self.model.posterior_covariance(self.R, z).reshape(-1)
                     if self.R is not None else None)  # fmt: skip
        for k, uc in enumerate(self.u_c):
            cov_c = cov_c - uc * uc[row]
            if cov_r is not None:
                cov_r = cov_r - self.u_r[k] * uc[row]
        sd = mom.var_y[row].clamp_min(1e-12).sqrt()
        uc = cov_c / sd
        mom.var_f = (mom.var_f - uc.square()).clamp_min(0.0)
        mom.var_y = (mom.var_y - uc.square()).clamp_min(1e-12)
        self.u_c.append(uc)
        if cov_r is not None:
            ur = cov_r / sd
            mom.var_ref = (mom.var_ref - ur.square()).clamp_min(0.0)
            mom.cross = mom.cross - ur[:, None] * uc[None, :]
            self.u_r.append(ur)


@torch.no_grad()
def twin_moments(model, C: Tensor, target: float, *, batch_size: int = 2048
                 ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Each candidate's composition at the target fidelity (its *twin*) and their covariance.

    Returns ``(mean_g, var_g, cov_gc)``: the posterior mean and variance of ``g = f_T(x_c)``
    and ``cov(g, f(c))`` (``= var_g`` for a candidate at the target itself). One batched
    ``2 x 2`` joint posterior per candidate, ``batch_size`` candidates at a time.
    """
    device, dtype = model_device(model)
    C = C.to(device=device, dtype=dtype)
    twin = C.clone()
    twin[:, -1] = target
    n = C.shape[0]
    mean_g, var_g, cov = (torch.empty(n, dtype=dtype, device=device) for _ in range(3))
    model.eval()
    for start in range(0, n, batch_size):
        rows = slice(start, min(start + batch_size, n))
        with exact_solves():
            post = model.posterior(torch.stack([twin[rows], C[rows]], dim=-2))
        S = post.distribution.covariance_matrix  # b x 2 x 2
        mean_g[rows] = post.mean[..., 0, 0]
        var_g[rows] = S[:, 0, 0].clamp_min(1e-12)
        cov[rows] = S[:, 0, 1]
    return mean_g, var_g, cov
