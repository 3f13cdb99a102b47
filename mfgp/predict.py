"""Marginal predictions in bounded memory, on the model's device.

Screening, cross-validation and the estimators' ``predict`` want one mean and one variance per
row, never a covariance across rows. :func:`predict_marginals` asks the model for ``b x 1 x d``
batches (each row its own one-point posterior: the diagonal only), in chunks sized so that the
largest intermediate (``draws x rows x training rows``) stays under ``max_bytes``.

Variances are exact by default; ``variances="fast"`` (or an enclosing
:func:`mfgp.fastvar.fast_variances`) uses the model's low-rank cache of the inverse training
covariance (:mod:`mfgp.fastvar`), means stay exact.
"""

from __future__ import annotations

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
from typing import NamedTuple

import torch
from botorch.models.model import Model
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.linalg import exact_solves

__all__ = ["OwnRows", "model_device", "predict_marginals", "training_rows"]


def model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's first floating parameter or buffer."""
    for t in (*model.parameters(), *model.buffers()):
        if t is not None and t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float64


def training_rows(model: torch.nn.Module) -> int:
    """The largest training set among the model's exact GPs (the cost of one query row)."""
    n = 1
    for module in model.modules():
        targets = getattr(module, "train_targets", None)
        if isinstance(targets, Tensor):
            n = max(n, targets.shape[-1])
    return n


class OwnRows(NamedTuple):
    """Observations a query row also conditions on: those of its own key (its composition).

    Row ``i`` of the queries conditions on the observations ``j`` with ``owner[j] ==
    query_owner[i]`` (besides the model's training rows) and on no others, so its prediction
    does not depend on which other rows are asked with it.

    Attributes:
        query_owner: ``n`` int64, the key of each query row (``-1``: none).
        X: ``m x (d + 1)`` the observations' inputs (untransformed, as ``train_X``).
        Y: ``m x 1`` their values.
        Yvar: ``m x 1`` their known noise variances (a model with known noise), or ``None``
            (the model's own noise at each row).
        owner: ``m`` int64, the key of each observation.
    """

    query_owner: Tensor
    X: Tensor
    Y: Tensor
    Yvar: Tensor | None
    owner: Tensor


def predict_marginals(
    model: Model,
    X: Tensor,
    *,
    observation_noise: bool = False,
    batch_size: int = 4096,
    max_bytes: int = 2**28,
    own_rows: OwnRows | None = None,
    variances: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Posterior mean and variance of every row of ``X``, computed one row at a time, chunked.

    Args:
        model: any single-output BoTorch model on contract inputs.
        X: ``n x (d + 1)`` inputs; moved to the model's device and dtype.
        observation_noise: the predictive of a new observation (noise included).
        batch_size: at most this many rows per posterior call.
        max_bytes: bound on the largest intermediate of one call: the rows per call are cut
            so that ``draws x rows x training rows`` floats fit (draws: the latent samples of
            an explicit-latent model, 1 otherwise).
        own_rows: observations that only the query rows of the same key condition on (the
            left-out lower-fidelity rows of each asked composition; see :class:`OwnRows`).
            Each such row gets the exact Gaussian update of the model's joint posterior at
            ``[x_i, X_own]`` by its own observations (hyperparameters unchanged: the same
            answer as ``conditioned_on(X_own, Y_own)`` queried at ``x_i``, except that a new
            observation's known noise is the fitted model's), computed in batches of equal
            size, always with exact covariances (the update of the mean reads them); rows
            without own observations get the model's marginals.
        variances: ``"exact"``, ``"fast"`` (:mod:`mfgp.fastvar`: a low-rank cache of the
            inverse training covariance, built once per fitted model; never below the exact
            variance), ``"auto"`` (fast when the model has at least
            :data:`~mfgp.fastvar.AUTO_MIN_ROWS` training rows and ``X`` at least
            :data:`~mfgp.fastvar.AUTO_MIN_QUERIES_ONE_OFF` rows: decided on this call's rows,
            so ask a pool in one call, or resolve once with
            :func:`mfgp.fastvar.resolve_variances`),
            or ``None``: as set by an enclosing :func:`mfgp.fastvar.fast_variances` (exact
            outside one). Means are exact either way (rows with own observations are
            updated with exact covariances).

    Returns:
        ``(mean, variance)``, each ``n``, on the model's device. Each row's values do not depend
        on the other rows or on the chunking (an explicit-latent model uses the same latent base
        samples for every one-row posterior).

    Example:
        >>> mean, var = predict_marginals(model, X)  # doctest: +SKIP
    """
    if X.dim() != 2:
        raise ShapeError(f"X must be n x (d + 1) contract inputs; got {tuple(X.shape)}")
    if variances is not None:
        from mfgp.fastvar import resolve_variances, variances_mode

        mode = resolve_variances(variances, training_rows(model), X.shape[0], model)
        with variances_mode(mode):
            return predict_marginals(model, X, observation_noise=observation_noise,
                                     batch_size=batch_size, max_bytes=max_bytes,
                                     own_rows=own_rows)  # fmt: skip
    if own_rows is not None:
        return _marginals_given_own_rows(model, X, own_rows, observation_noise=observation_noise,
                                         batch_size=batch_size, max_bytes=max_bytes)  # fmt: skip
    if batch_size < 1 or max_bytes < 1:
        raise InputDataError(
            f"batch_size and max_bytes must be >= 1; got {batch_size}, {max_bytes}"
        )
    device, dtype = model_device(model)
    X = X.to(device=device, dtype=dtype)
    n = X.shape[0]
    mean = torch.empty(n, dtype=dtype, device=device)
    var = torch.empty(n, dtype=dtype, device=device)
    groups = [(torch.arange(n, device=device), getattr(model, "n_samples", 1))]
    split = getattr(model, "latent_known", None)
    if split is not None:  # rows whose latent is observed need no latent draws
        known = split(X)
        groups = [(torch.nonzero(m).squeeze(-1), d)
                  for m, d in ((~known, model.n_samples), (known, 1)) if bool(m.any())]  # fmt: skip
    per_row = training_rows(model) * X.element_size() * 4
    with torch.no_grad(), exact_solves():
        for rows, draws in groups:
            chunk = max(1, min(batch_size, max_bytes // (per_row * draws)))
            for i in range(0, rows.numel(), chunk):
                r = rows[i : i + chunk]
                post = model.posterior(X[r].unsqueeze(-2), observation_noise=observation_noise)
                mean[r] = post.mean.reshape(-1)
                var[r] = post.variance.reshape(-1)
    return mean, var


def _posterior_noise(model: Model, X: Tensor, batch_size: int, max_bytes: int) -> Tensor:
    """A new observation's noise variance at each row: the posterior's with and without it."""
    _, with_noise = predict_marginals(model, X, observation_noise=True, batch_size=batch_size,
                                      max_bytes=max_bytes)  # fmt: skip
    _, without = predict_marginals(model, X, batch_size=batch_size, max_bytes=max_bytes)
    return (with_noise - without).clamp_min(0.0)


def _noise_variance(model: Model, X: Tensor, batch_size: int, max_bytes: int) -> Tensor:
    """The observation noise variance of a new observation at each row of ``X`` (outcome units).

    The noise is the likelihood's, whatever the training data, so it is read off the *prior*
    predictive (:class:`gpytorch.settings.prior_mode`: a kernel diagonal per row instead of a
    solve against every training row, the cost of a predictive variance). On a few rows of
    each fidelity it is first checked against the posterior's (the predictive variance with
    the noise less the one without); a model whose prior gives another noise (a likelihood
    that reads the training data) gets the posterior's at every row.
    """
    import gpytorch

    if X.shape[0] == 0:
        return X.new_zeros(0)
    level = X[:, -1]
    check = torch.cat([torch.nonzero(level == v).squeeze(-1)[:2] for v in torch.unique(level)])
    exact = _posterior_noise(model, X[check], batch_size, max_bytes)
    with gpytorch.settings.prior_mode(True):
        prior = _posterior_noise(model, X, batch_size, max_bytes)
    scale = float(exact.abs().max()) if exact.numel() else 0.0
    if torch.allclose(prior[check].to(exact), exact, rtol=1e-6, atol=1e-9 * max(scale, 1e-300)):
        return prior
    return _posterior_noise(model, X, batch_size, max_bytes)


def _marginals_given_own_rows(
    model: Model, X: Tensor, own: OwnRows, *, observation_noise: bool, batch_size: int,
    max_bytes: int,
) -> tuple[Tensor, Tensor]:
    """:func:`predict_marginals` where each row also conditions on its own observations."""
    from mfgp.linalg import robust_cholesky

    device, dtype = model_device(model)
    X = X.to(device=device, dtype=dtype)
    q_owner = own.query_owner.to(device)
    o_owner = own.owner.to(device)
    E_X, E_Y = own.X.to(device=device, dtype=dtype), own.Y.to(device=device, dtype=dtype)
    # each query row's own observations (sorted by owner): rows with none get the model's
    # marginals, the others are grouped by how many they have and updated in batches
    order = torch.argsort(o_owner, stable=True)
    keys, counts = torch.unique_consecutive(o_owner[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.searchsorted(keys, q_owner.clamp_min(0)).clamp(max=max(keys.numel() - 1, 0))
    has = (q_owner >= 0) & (keys.numel() > 0)
    if keys.numel():
        has = has & (keys[slot] == q_owner)
    plain = torch.nonzero(~has).squeeze(-1)
    mean = torch.empty(X.shape[0], dtype=dtype, device=device)
    var = torch.empty(X.shape[0], dtype=dtype, device=device)
    if plain.numel():
        mean[plain], var[plain] = predict_marginals(
            model, X[plain], observation_noise=observation_noise, batch_size=batch_size,
            max_bytes=max_bytes)  # fmt: skip
    rows = torch.nonzero(has).squeeze(-1)
    if not rows.numel():
        return mean, var
    if own.Yvar is not None:
        E_noise = own.Yvar.to(device=device, dtype=dtype).reshape(-1)
    else:
        used = torch.unique(torch.cat([order[starts[s]: starts[s] + counts[s]]
                                       for s in torch.unique(slot[rows]).tolist()]))  # fmt: skip
        E_noise = torch.zeros(E_X.shape[0], dtype=dtype, device=device)
        E_noise[used] = _noise_variance(model, E_X[used], batch_size, max_bytes)
    q_noise = (_noise_variance(model, X[rows], batch_size, max_bytes) if observation_noise
               else torch.zeros(rows.numel(), dtype=dtype, device=device))  # fmt: skip
    m_of = counts[slot[rows]]
    from mfgp.fastvar import fast_variances

    # exact joint covariances for the rows with own observations, also under fast variances:
    # their mean's update reads the covariances, and means stay exact (these rows are at most
    # the data's compositions, whatever the pool's size)
    with torch.no_grad(), exact_solves(), fast_variances(False):
        for m in torch.unique(m_of).tolist():
            pick = torch.nonzero(m_of == m).squeeze(-1)
            per_call = max(1, batch_size // (m + 1))
            for i in range(0, pick.numel(), per_call):
                sel = pick[i: i + per_call]  # positions in ``rows``
                r = rows[sel]
                idx = order[starts[slot[r]].unsqueeze(-1)
                            + torch.arange(m, device=device)]  # G x m own observations
                Q = torch.cat([X[r].unsqueeze(-2), E_X[idx]], dim=-2)  # G x (1 + m) x d
                post = model.posterior(Q)
                mu = post.mean.squeeze(-1)  # G x (1 + m)
                S = post.distribution.covariance_matrix  # G x (1 + m) x (1 + m)
                S_EE = S[:, 1:, 1:] + torch.diag_embed(E_noise[idx])
                L = robust_cholesky(S_EE)
                s = S[:, 1:, :1]  # G x m x 1: cov(f(E), f(x))
                w = torch.cholesky_solve(s, L).squeeze(-1)  # (S_EE)^-1 cov(f(E), f(x))
                resid = E_Y[idx].squeeze(-1) - mu[:, 1:]
                mean[r] = mu[:, 0] + (w * resid).sum(-1)
                var[r] = (S[:, 0, 0] - (w * s.squeeze(-1)).sum(-1)).clamp_min(0.0) + q_noise[sel]
    return mean, var
