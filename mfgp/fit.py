"""Fitting mfgp's GPs: exact marginal likelihood, L-BFGS, seeded restarts, subset hyperparameters.

Solver choice, measured on 2 CPU cores: one exact marginal-likelihood step costs ~1 s at
n = 2,200 and ~6 s at n = 4,000, and GPyTorch's conjugate gradients (its default above 800
points) are slower still. So :func:`fit_gp`

* always uses Cholesky solves (:func:`mfgp.models.base.exact_solves`);
* fits hyperparameters on a random subset of at most ``max_fit_points`` rows, stratified by
  fidelity (default 1,500: ~0.1 s a step), then conditions the model on *all* rows: the
  posterior is exact on the full data, only the hyperparameters come from the subset;
* runs ``restarts`` extra L-BFGS runs from seeded random initial lengthscales and keeps the best;
* retries a failed Cholesky with growing jitter and reports the jitter that worked.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import gpytorch
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood, VariationalELBO
from linear_operator.utils.errors import NotPSDError
from tqdm.auto import tqdm

from mfgp.exceptions import NumericalError
from mfgp.kernels.coregional import AR1Kernel
from mfgp.models.base import exact_solves

__all__ = ["FitReport", "fit_gp", "fit_variational", "stratified_subset"]

JITTERS = (1e-8, 1e-6, 1e-4, 1e-3)


@dataclass
class FitReport:
    """What :func:`fit_gp` did.

    Attributes:
        loss: best negative marginal log likelihood per data point (on the fitting subset).
        losses: final loss of each start.
        n_fit: rows used for the hyperparameters; n_total: rows conditioned on.
        jitter: Cholesky jitter that worked.
        iterations: L-BFGS iterations of the best start.
    """

    loss: float
    losses: list[float] = field(default_factory=list)
    n_fit: int = 0
    n_total: int = 0
    jitter: float = JITTERS[0]
    iterations: int = 0


def stratified_subset(fidelity: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Row indices of a random subset of ``size`` rows, each fidelity in proportion (>= 1 row)."""
    n = fidelity.shape[0]
    if size >= n:
        return torch.arange(n, device=fidelity.device)
    g = torch.Generator().manual_seed(seed)
    picks = []
    levels = torch.unique(fidelity)
    for level in levels:
        rows = torch.nonzero(fidelity == level).squeeze(-1).cpu()
        k = max(1, round(size * rows.numel() / n))
        picks.append(rows[torch.randperm(rows.numel(), generator=g)[:k]])
    return torch.sort(torch.cat(picks)).values.to(fidelity.device)


def _randomize(model: torch.nn.Module, g: torch.Generator) -> None:
    """Seeded random restart.

    Lengthscales: log-uniform in [0.1, 10] times their current value. AR1 scale factors ``rho``:
    drawn from N(1, 1), since the marginal likelihood in ``rho`` is often multi-modal (a level
    explained by the one below, or by its own discrepancy).
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, AR1Kernel) and module.rho.numel():
                module.rho.copy_(1.0 + torch.randn(module.rho.shape, generator=g).to(module.rho))
            if isinstance(module, gpytorch.kernels.Kernel) and module.has_lengthscale:
                ls = module.lengthscale
                factor = torch.exp((torch.rand(ls.shape, generator=g) * 2 - 1) * math.log(10)).to(
                    ls
                )
                module.lengthscale = (ls * factor).clamp_min(0.05)


def _run_lbfgs(mll, X, y, max_iter: int) -> tuple[float, int]:
    params = [p for p in mll.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def closure():
        opt.zero_grad()
        loss = -mll(mll.model(X), y, X).sum()
        loss.backward()
        return loss

    opt.step(closure)
    state = opt.state[opt._params[0]]
    with torch.no_grad():
        loss = float(-mll(mll.model(X), y, X).sum())
    return loss, int(state.get("n_iter", 0))


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
    start_state = {k: v.clone() for k, v in model.state_dict().items()}
    best: tuple[float, dict, int] | None = None
    losses: list[float] = []
    used_jitter = JITTERS[0]
    try:
        for start in tqdm(range(restarts + 1), desc="fit", disable=not progress, leave=False):
            model.load_state_dict(start_state)
            if start > 0:
                _randomize(model, g)
            init = {k: v.clone() for k, v in model.state_dict().items()}
            for jitter in JITTERS:
                model.load_state_dict(init)  # each jitter retries the same start
                try:
                    with exact_solves(), gpytorch.settings.cholesky_jitter(jitter, jitter):
                        loss, iters = _run_lbfgs(mll, X, y, max_iter)
                    if not math.isfinite(loss):
                        raise NotPSDError("non-finite loss")
                    used_jitter = max(used_jitter, jitter)
                    break
                except (NotPSDError, torch.linalg.LinAlgError) as err:
                    if jitter == JITTERS[-1]:
                        if best is not None:
                            loss, iters = math.inf, 0
                            break
                        raise NumericalError(
                            f"Cholesky failed with jitter up to {jitter:g} ({err}); rescale the "
                            "inputs, drop duplicated rows or raise the noise lower bound"
                        ) from err
            if jitter > JITTERS[0] and math.isfinite(loss):
                warnings.warn(
                    f"Cholesky needed jitter {jitter:g} to fit (start {start})", stacklevel=2
                )
            losses.append(loss / y.shape[-1])
            if best is None or loss < best[0]:
                best = (loss, {k: v.clone() for k, v in model.state_dict().items()}, iters)
    finally:
        model.set_train_data(X_all, y_all, strict=False)
        if fixed_noise:
            model.likelihood.noise = noise_all
    assert best is not None
    model.load_state_dict(best[1])  # hyperparameters only; the full data were restored above
    model.eval()
    return FitReport(
        loss=best[0] / y.shape[-1],
        losses=losses,
        n_fit=int(idx.numel()),
        n_total=n,
        jitter=used_jitter,
        iterations=best[2],
    )


def fit_variational(
    model,
    *,
    epochs: int = 30,
    batch_size: int = 1024,
    lr: float = 0.02,
    min_steps: int = 300,
    seed: int = 0,
    progress: bool = False,
) -> FitReport:
    """Fit a sparse variational GP (e.g. :class:`~mfgp.models.GPClassifier`) by the ELBO.

    Adam on seeded mini-batches: the variational distribution, kernel and mean are learned
    together; the inducing points stay where the model put them.

    Args:
        model: a BoTorch ``ApproximateGPyTorchModel`` with ``train_inputs`` and ``train_targets``.
        epochs: passes over the training rows.
        batch_size: rows per step.
        lr: Adam learning rate.
        min_steps: run more epochs if needed to take at least this many Adam steps (small data
            sets have one step per epoch).
        seed: seeds the batches.
        progress: show a progress bar over epochs.

    Returns:
        A :class:`FitReport` whose ``loss`` is the final epoch's negative ELBO per row and
        ``losses`` the per-epoch history.
    """
    X, y = model.train_inputs[0], model.train_targets
    n = X.shape[0]
    model.train()
    elbo = VariationalELBO(model.likelihood, model.model, num_data=n)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(seed)
    history: list[float] = []
    epochs = max(epochs, math.ceil(min_steps / math.ceil(n / batch_size)))
    bar = tqdm(range(epochs), desc="fit", disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=g).to(X.device)
        total = 0.0
        for i in range(0, n, batch_size):
            b = order[i : i + batch_size]
            opt.zero_grad()
            loss = -elbo(model(X[b]), y[b])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
        history.append(total / n)
        if not math.isfinite(history[-1]):
            raise NumericalError(
                f"the ELBO became non-finite after {len(history)} epochs; lower lr={lr:g}"
            )
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    return FitReport(loss=history[-1], losses=history, n_fit=n, n_total=n,
                     iterations=len(history))  # fmt: skip
