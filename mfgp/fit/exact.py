"""The exact-GP trainer: marginal likelihood, Cholesky solves, hyperparameters on a subset.

Solver choice, measured on 2 CPU cores: one exact marginal-likelihood step costs ~1 s at
n = 2,200 and ~6 s at n = 4,000, and GPyTorch's conjugate gradients (its default above 800
points) are slower still. So :func:`fit_gp`

* always uses Cholesky solves (`mfgp.linalg.exact_solves`);
* fits hyperparameters on a random subset of at most ``max_fit_points`` rows, stratified by
  fidelity (default 1,500: ~0.1 s a step), then conditions the model on *all* rows: the
  posterior is exact on the full data, only the hyperparameters come from the subset;
* runs ``restarts`` extra L-BFGS runs from seeded random initial lengthscales and keeps the best
  (:func:`mfgp.fit.engine.best_of_starts`);
* retries a failed Cholesky with growing jitter and reports the jitter that worked.
"""

from __future__ import annotations

import functools
import warnings

import gpytorch
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from mfgp.fit.engine import (
    JITTERS,
    FitReport,
    best_of_starts,
    lbfgs,
    randomize,
    stratified_subset,
)
from mfgp.linalg import exact_solves

__all__ = ["fit_gp"]


def _mll_run(mll, X, y, max_iter: int, jitter: float) -> tuple[float, int]:
    def objective():
        return -mll(mll.model(X), y, X).sum()

    owned = [(p, None) for p in mll.parameters() if p.requires_grad]
    with exact_solves():
        return lbfgs(objective, owned, max_iter)


def fit_gp(
    model,
    *,
    max_iter: int = 100,
    restarts: int = 0,
    max_fit_points: int | None = 1500,
    seed: int = 0,
    progress: bool = False,
) -> FitReport:
    """Fit an exact GPyTorch/BoTorch model's hyperparameters by maximising the marginal likelihood.

    Args:
        model: an ``ExactGP`` (every mfgp GP), in any mode; returned in eval mode.
        max_iter: L-BFGS iterations per start.
        restarts: extra starts from seeded random lengthscales (the best is kept).
        max_fit_points: fit hyperparameters on a stratified subset of this many rows (``None``:
            all rows); the model is then conditioned on all rows.
        seed: the seed of the subset and of the restarts.
        progress: show a progress bar over starts.

    Returns:
        A :class:`FitReport`.

    Raises:
        NumericalError: the Cholesky factorisation failed even with the largest jitter.
    """
    inner = getattr(model, "gp", None)  # ExplicitLatentGP: fit its GP on [x, latent]
    if isinstance(inner, gpytorch.models.ExactGP):
        sync = getattr(model, "sync_latents", None)
        if sync is not None:
            sync()  # the training latents of the latent model as it is now
        return fit_gp(inner, max_iter=max_iter, restarts=restarts,
                      max_fit_points=max_fit_points, seed=seed, progress=progress)  # fmt: skip
    # train mode first: BoTorch's eval() replaces train_inputs by their transformed copies and
    # train() restores the originals, which are what must be subset and restored here
    model.train()
    X_all = model.train_inputs[0]
    y_all = model.train_targets
    fixed_noise = isinstance(model.likelihood, gpytorch.likelihoods.FixedNoiseGaussianLikelihood)
    noise_all = model.likelihood.noise.clone() if fixed_noise else None
    n = X_all.shape[-2]
    idx = (
        torch.arange(n, device=X_all.device)
        if max_fit_points is None
        else stratified_subset(X_all[..., -1], max_fit_points, seed)
    )
    X, y = X_all[..., idx, :], y_all[..., idx]
    model.set_train_data(X, y, strict=False)
    if fixed_noise:
        model.likelihood.noise = noise_all[..., idx]
    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    g = torch.Generator().manual_seed(seed)
    try:
        starts = best_of_starts(model, functools.partial(_mll_run, mll, X, y, max_iter),
                                restarts=restarts, g=g, progress=progress,
                                randomize_start=functools.partial(randomize, model))  # fmt: skip
    finally:
        model.set_train_data(X_all, y_all, strict=False)  # hyperparameters only were fitted
        if fixed_noise:
            model.likelihood.noise = noise_all
    if starts.jitter > JITTERS[0]:
        warnings.warn(f"Cholesky needed jitter {starts.jitter:g} to fit", stacklevel=2)
    if starts.failed:
        warnings.warn(
            f"fit: start(s) {starts.failed} failed numerically and were skipped; the best of "
            f"the {restarts + 1 - len(starts.failed)} others is kept",
            stacklevel=2,
        )
    model.eval()
    return FitReport(loss=starts.loss, losses=starts.losses, n_fit=int(idx.numel()), n_total=n,
                     jitter=starts.jitter, iterations=starts.iterations,
                     failed_starts=starts.failed)  # fmt: skip
