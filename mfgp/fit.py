"""Fitting mfgp's GPs: exact marginal likelihood, L-BFGS, seeded restarts, subset hyperparameters.

Solver choice, measured on 2 CPU cores: one exact marginal-likelihood step costs ~1 s at
n = 2,200 and ~6 s at n = 4,000, and GPyTorch's conjugate gradients (its default above 800
points) are slower still. So :func:`fit_gp`

* always uses Cholesky solves (`mfgp.linalg.exact_solves`);
* fits hyperparameters on a random subset of at most ``max_fit_points`` rows, stratified by
  fidelity (default 1,500: ~0.1 s a step), then conditions the model on *all* rows: the
  posterior is exact on the full data, only the hyperparameters come from the subset;
* runs ``restarts`` extra L-BFGS runs from seeded random initial lengthscales and keeps the best;
* retries a failed Cholesky with growing jitter and reports the jitter that worked.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import gpytorch
import torch
from gpytorch.likelihoods.noise_models import MultitaskHomoskedasticNoise
from gpytorch.mlls import ExactMarginalLogLikelihood, VariationalELBO
from linear_operator.utils.errors import NanError, NotPSDError
from torch import Tensor
from tqdm.auto import tqdm

from mfgp.exceptions import NumericalError
from mfgp.kernels.coregional import AR1Kernel
from mfgp.kernels.means import FidelityMean
from mfgp.linalg import exact_solves, robust_cholesky

__all__ = ["FitReport", "fit_ar1_recursive", "fit_gp", "fit_variational", "stratified_subset"]

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
        failed_starts: starts that failed numerically (skipped; ``inf`` in ``losses``).

    Every trainer reports the same unit: the negative log marginal likelihood (minus the log
    priors, where the trainer includes them) divided by the number of rows it was computed on.
    """

    loss: float
    losses: list[float] = field(default_factory=list)
    n_fit: int = 0
    n_total: int = 0
    jitter: float = JITTERS[0]
    iterations: int = 0
    failed_starts: list[int] = field(default_factory=list)


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

    Lengthscales: log-uniform in [0.1, 10] times their current value (at least 0.05 and 5%
    above their lower bound). AR1 scale factors ``rho``:
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
                bound = module.raw_lengthscale_constraint.lower_bound.to(ls)
                module.lengthscale = torch.maximum(ls * factor, (1.05 * bound).clamp_min(0.05))


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


def _with_jitter(model, init: dict, run, fallback: bool, where: str) -> tuple[float, int, float]:
    """``run(jitter) -> (loss, iterations)`` from state ``init``, retried with growing jitter.

    Returns ``(loss, iterations, jitter)``; when every jitter fails, ``(inf, 0, jitter)`` if an
    earlier start can stand in (``fallback``), else :class:`NumericalError`.
    """
    for jitter in JITTERS:
        model.load_state_dict(init)  # each jitter retries the same start
        try:
            loss, iters = run(jitter)
            if not math.isfinite(loss):
                raise NotPSDError("non-finite loss")
            return loss, iters, jitter
        except (NotPSDError, NanError, torch.linalg.LinAlgError) as err:
            if jitter == JITTERS[-1]:
                if fallback:
                    return math.inf, 0, jitter
                raise NumericalError(
                    f"{where}Cholesky failed with jitter up to {jitter:g} ({err}); rescale the "
                    "inputs, drop duplicated rows or raise the noise lower bound"
                ) from err
    raise AssertionError("unreachable")


def _exact_lbfgs(mll, X, y, max_iter: int, jitter: float) -> tuple[float, int]:
    with exact_solves(), gpytorch.settings.cholesky_jitter(jitter, jitter):
        return _run_lbfgs(mll, X, y, max_iter)


def _masked_run(level, owned, max_iter: int, jitter: float) -> tuple[float, int]:
    return _lbfgs_masked(functools.partial(level, jitter), owned, max_iter)


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
    start_state = {k: v.clone() for k, v in model.state_dict().items()}
    best: tuple[float, dict, int] | None = None
    losses: list[float] = []
    used_jitter = JITTERS[0]
    failed: list[int] = []
    try:
        for start in tqdm(range(restarts + 1), desc="fit", disable=not progress, leave=False):
            model.load_state_dict(start_state)
            if start > 0:
                _randomize(model, g)
            init = {k: v.clone() for k, v in model.state_dict().items()}
            run = functools.partial(_exact_lbfgs, mll, X, y, max_iter)
            loss, iters, jitter = _with_jitter(model, init, run, True, "")
            if not math.isfinite(loss):
                failed.append(start)
            else:
                used_jitter = max(used_jitter, jitter)
                if jitter > JITTERS[0]:
                    warnings.warn(
                        f"Cholesky needed jitter {jitter:g} to fit (start {start})", stacklevel=2
                    )
            losses.append(loss)  # the marginal log likelihood is already per data point
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, {k: v.clone() for k, v in model.state_dict().items()}, iters)
    finally:
        model.set_train_data(X_all, y_all, strict=False)
        if fixed_noise:
            model.likelihood.noise = noise_all
    if best is None:
        raise NumericalError(
            f"every start ({restarts + 1}) failed: the Cholesky factorisation failed with "
            f"jitter up to {JITTERS[-1]:g} or the loss was not finite; rescale the inputs, drop "
            "duplicated rows or raise the noise lower bound"
        )
    if failed:
        warnings.warn(
            f"fit: start(s) {failed} failed numerically and were skipped; the best of the "
            f"{restarts + 1 - len(failed)} others is kept",
            stacklevel=2,
        )
    model.load_state_dict(best[1])  # hyperparameters only; the full data were restored above
    model.eval()
    return FitReport(
        loss=best[0],
        losses=losses,
        n_fit=int(idx.numel()),
        n_total=n,
        jitter=used_jitter,
        iterations=best[2],
        failed_starts=failed,
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


def _level_rows(levels: torch.Tensor, t: int, size: int | None, g: torch.Generator):
    rows = torch.nonzero(levels == t).squeeze(-1)
    if size is not None and rows.numel() > size:
        rows = rows[torch.randperm(rows.numel(), generator=g)[:size].to(rows.device)]
    return torch.sort(rows).values


def _log_priors(module: torch.nn.Module) -> Tensor:
    total = 0.0
    for _, owner, prior, closure, _ in module.named_priors():
        total = total + prior.log_prob(closure(owner)).sum()
    return total


def fit_ar1_recursive(
    model,
    *,
    max_iter: int = 100,
    restarts: int = 0,
    max_fit_points: int | None = 1500,
    max_condition_points: int = 4000,
    seed: int = 0,
    progress: bool = False,
) -> FitReport:
    """Fit an AR1 model level by level: the chain rule of its marginal likelihood.

    ``log p(y_0, .., y_T) = sum_t log p(y_t | y_0, .., y_{t-1})``, and under the AR1 kernel

    ``y_t | y_<t ~ N(mu_t + rho_t (m - mu_{t-1}), D S D + K_t + sigma_t^2 I)``

    where ``m`` and ``S`` are the posterior mean and covariance of ``f_{t-1}`` at the level-t
    inputs given the lower levels, ``D = diag(rho_t(x))`` and ``K_t`` is the kernel of
    ``delta_t``. Level ``t``'s own parameters (``delta_t``'s kernel, ``rho_t`` or ``rho_t(x)``,
    its noise) appear in the terms ``>= t`` only, so maximising term ``t`` with the levels below
    fixed is one block-coordinate pass over the *joint* likelihood (exact, no nested-design
    assumption: the uncertainty of ``f_{t-1}`` at the level-t points is in ``S``). Compared with
    :func:`fit_gp` on the joint model:

    * each level's hyperparameters see up to ``max_fit_points`` of *its own* rows (the joint fit
      shares ``max_fit_points`` across levels, so a scarce top level gets few);
    * each step factorises a matrix of one level's rows, not of all levels' rows;
    * the shared constant mean (or level 0's constant) is fixed after level 0.

    The posterior is still the exact joint one, conditioned on all rows.

    Args:
        model: an :class:`~mfgp.models.AR1GP` (any ``FidelityGP`` with an
            :class:`~mfgp.kernels.AR1Kernel`); returned in eval mode.
        max_iter: L-BFGS iterations per level and start.
        restarts: extra seeded starts per level (random lengthscales and ``rho``).
        max_fit_points: rows per level for its hyperparameters (``None``: all).
        max_condition_points: lower-level rows that ``m`` and ``S`` are conditioned on; rows at
            the same features as the level's fitting rows come first, then a random fill.
        seed: seeds the subsets and the restarts.
        progress: show a progress bar over levels.

    Returns:
        A :class:`FitReport`: ``losses`` the best negative log likelihood per row of each level,
        ``loss`` their row-weighted mean, ``iterations`` summed over levels.
    """
    kernel = model.covar_module
    if not isinstance(kernel, AR1Kernel):
        raise TypeError(
            f"recursive fitting needs an AR1Kernel; {type(model).__name__} has "
            f"{type(kernel).__name__} (use fit_gp)"
        )
    model.train()
    lik = model.likelihood
    fixed_noise = isinstance(lik, gpytorch.likelihoods.FixedNoiseGaussianLikelihood)
    per_level_noise = isinstance(lik.noise_covar, MultitaskHomoskedasticNoise)
    X_all, y_all = model.train_inputs[0], model.train_targets
    with torch.no_grad():
        Z_all = model.transform_inputs(X_all)
    levels = Z_all[:, -1].round().long()
    T = kernel.num_tasks
    g = torch.Generator().manual_seed(seed)
    mean = model.mean_module
    per_level_mean = isinstance(mean, FidelityMean)

    def noise_of(rows: Tensor, t: int) -> Tensor:
        if fixed_noise:
            return lik.noise[rows]
        if per_level_noise:
            return lik.noise[t].expand(rows.numel())
        return lik.noise.reshape(-1)[:1].expand(rows.numel())

    losses, n_fit, iterations, used_jitter = [], 0, 0, JITTERS[0]
    failed: list[int] = []
    for t in tqdm(range(T), desc="levels", disable=not progress, leave=False):
        rows = _level_rows(levels, t, max_fit_points, g)
        if rows.numel() == 0:
            losses.append(float("nan"))
            continue
        Z, y = Z_all[rows], y_all[rows]
        m = S = None
        if t > 0:
            below = Z.clone()
            below[:, -1] = t - 1
            with torch.no_grad():
                m, S = _lower_posterior(model, Z_all, y_all, levels, t, below, noise_of,
                                        max_condition_points, g)  # fmt: skip
        # what level t fits, and which entries of shared tensors are its own
        owned: list[tuple[torch.nn.Parameter, Tensor | None]] = [
            (p, None) for p in kernel.data_kernels[t].parameters()
        ]
        if t > 0:
            owned.append((kernel.rho, torch.arange(kernel.rho.numel()) == t - 1))
            if kernel.rho_weights is not None:
                mask = (torch.arange(T - 1) == t - 1).unsqueeze(-1).expand_as(kernel.rho_weights)
                owned.append((kernel.rho_weights, mask))
        if not fixed_noise:
            raw = lik.noise_covar.raw_noise
            owned.append((raw, (torch.arange(raw.numel()) == t).reshape(raw.shape)
                          if per_level_noise else None))  # fmt: skip
        if per_level_mean:
            owned.append((mean.constants, torch.arange(T) == t))
        elif t == 0:
            owned += [(p, None) for p in mean.parameters()]
        owned = [(p, None if k is None else k.to(p.device)) for p, k in owned if p.requires_grad]

        noise = functools.partial(noise_of, rows, t)  # re-read at every step: it is fitted
        level = functools.partial(_level_nll, model, t, Z, y, noise, m, S)

        start_state = {k: v.clone() for k, v in model.state_dict().items()}
        best: tuple[float, dict, int] | None = None
        for start in range(restarts + 1):
            model.load_state_dict(start_state)
            if start > 0:
                _randomize(kernel.data_kernels[t], g)
                if t > 0:
                    with torch.no_grad():
                        kernel.rho[t - 1] = 1.0 + torch.randn((), generator=g).item()
            init = {k: v.clone() for k, v in model.state_dict().items()}
            run = functools.partial(_masked_run, level, owned, max_iter)
            loss, iters, jitter = _with_jitter(model, init, run, True, f"level {t}: ")
            if math.isfinite(loss):
                used_jitter = max(used_jitter, jitter)
                if best is None or loss < best[0]:
                    best = (loss, {k: v.clone() for k, v in model.state_dict().items()}, iters)
            else:
                failed.append(start)
        if best is None:
            raise NumericalError(
                f"level {t}: every start ({restarts + 1}) failed (Cholesky with jitter up to "
                f"{JITTERS[-1]:g}); rescale the inputs, drop duplicated rows or raise the noise "
                "lower bound"
            )
        model.load_state_dict(best[1])
        losses.append(best[0] / rows.numel())
        n_fit += rows.numel()
        iterations += best[2]
    model.eval()
    finite = [(v, n) for v, n in zip(losses, [int((levels == t).sum()) for t in range(T)])
              if math.isfinite(v)]  # fmt: skip
    total = sum(n for _, n in finite)
    return FitReport(
        loss=sum(v * n for v, n in finite) / max(total, 1),
        losses=losses,
        n_fit=n_fit,
        n_total=int(X_all.shape[-2]),
        jitter=used_jitter,
        iterations=iterations,
        failed_starts=failed,
    )


def _level_nll(model, t, Z, y, noise, m, S, jitter) -> Tensor:
    """``-log p(y_t | y_<t)`` minus the log priors of level ``t``'s own parameters.

    ``noise()`` gives the rows' noise variances; ``m``, ``S`` the lower level's posterior.
    """
    kernel, mean, lik = model.covar_module, model.mean_module, model.likelihood
    feats = Z[:, :-1]
    n = y.numel()
    mu = mean(Z).expand(n)
    cov = kernel.data_kernels[t](feats, feats).to_dense()
    if t > 0:
        below = Z.clone()
        below[:, -1] = t - 1
        r = kernel.rho_at(feats)[:, t - 1]
        mu = mu + r * (m - mean(below).expand(n))
        cov = cov + r.unsqueeze(-1) * S * r.unsqueeze(-2)
    cov = cov + torch.diag_embed(noise() + jitter)
    L, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise NotPSDError(f"level {t} covariance not positive definite")
    a = torch.linalg.solve_triangular(L, (y - mu).unsqueeze(-1), upper=False)
    nll = 0.5 * a.square().sum() + L.diagonal().log().sum() + 0.5 * n * math.log(2 * math.pi)
    prior = _log_priors(kernel.data_kernels[t])
    noise_model = lik.noise_covar
    if not isinstance(lik, gpytorch.likelihoods.FixedNoiseGaussianLikelihood):
        if getattr(noise_model, "noise_prior", None) is not None:
            own = (
                lik.noise[t] if isinstance(noise_model, MultitaskHomoskedasticNoise) else lik.noise
            )
            prior = prior + noise_model.noise_prior.log_prob(own).sum()
    if t > 0 and kernel.rho_weights is not None:
        prior = prior + kernel.rho_weights_prior.log_prob(kernel.rho_weights[t - 1]).sum()
    return nll - prior


def _lower_posterior(model, Z_all, y_all, levels, t, at, noise_of, cap, g):
    """Posterior mean and covariance of ``f_{t-1}`` at inputs ``at`` given levels ``< t``."""
    kernel, mean = model.covar_module, model.mean_module
    lower = torch.nonzero(levels < t).squeeze(-1)
    if lower.numel() > cap:
        # rows at the same features as the fitting rows first (the nested part), then random
        keys = {row.tobytes() for row in at[:, :-1].cpu().numpy()}
        feats = Z_all[lower, :-1].cpu().numpy()
        nested = torch.tensor([row.tobytes() in keys for row in feats], device=lower.device)
        first, rest = lower[nested], lower[~nested]
        rest = rest[torch.randperm(rest.numel(), generator=g)[: max(cap - first.numel(), 0)]]
        lower = torch.sort(torch.cat([first, rest])).values
    Zl, yl = Z_all[lower], y_all[lower]
    noise = torch.empty_like(yl)
    for s in range(t):
        at_s = levels[lower] == s
        noise[at_s] = noise_of(lower[at_s], s)
    L = robust_cholesky(kernel(Zl, Zl).to_dense() + torch.diag_embed(noise))
    Kx = kernel(at, Zl).to_dense()
    alpha = torch.cholesky_solve((yl - mean(Zl).expand(yl.numel())).unsqueeze(-1), L)
    m = mean(at).expand(at.shape[0]) + (Kx @ alpha).squeeze(-1)
    V = torch.linalg.solve_triangular(L, Kx.transpose(-1, -2), upper=False)
    S = kernel(at, at).to_dense() - V.transpose(-1, -2) @ V
    return m, 0.5 * (S + S.transpose(-1, -2))


def _lbfgs_masked(objective, owned, max_iter: int) -> tuple[float, int]:
    """L-BFGS on ``owned`` parameters, moving only the entries where the mask is true."""
    params = [p for p, _ in owned]
    opt = torch.optim.LBFGS(
        params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        for p, mask in owned:
            if mask is not None and p.grad is not None:
                p.grad.mul_(mask.to(p.grad))
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = float(objective())
    return loss, int(opt.state[opt._params[0]].get("n_iter", 0))
