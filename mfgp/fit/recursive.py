"""The recursive AR1 trainer: the chain rule of the marginal likelihood, one level at a time."""

from __future__ import annotations

import functools
import math

import gpytorch
import torch
from gpytorch.likelihoods.noise_models import MultitaskHomoskedasticNoise
from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior
from linear_operator.utils.errors import NotPSDError
from torch import Tensor

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.exceptions import InputDataError
from mfgp.fit.engine import JITTERS, FitReport, best_of_starts, lbfgs, randomize
from mfgp.kernels.coregional import AR1Kernel
from mfgp.kernels.effect import CompositionEffect
from mfgp.kernels.means import FidelityMean
from mfgp.linalg import robust_cholesky

__all__ = ["fit_ar1_recursive", "level_hyperparameters", "sparse_level"]

#: prior on a sparse level's discrepancy variance (standardised units): Gamma(2, 2), mode 0.5,
#: mean 1, zero density at zero, so the discrepancy cannot vanish into the noise (see
#: ``sparse_level``)
SPARSE_OUTPUTSCALE = (2.0, 2.0)
#: a sparse level's noise: ``"fit"`` (its own, under the noise prior: the default) or
#: ``"below"`` (the level below's, not fitted; the rule before the campaign diagnostic, kept
#: for ``benchmarks/diag_*.py``)
SPARSE_NOISE = "fit"
#: the criterion a sparse level is fitted by: ``"likelihood"`` (its marginal likelihood given
#: the levels below, under the prior above: the default) or ``"loo"`` (its rows' leave-one-out
#: predictive densities, as a level that splits the composition effect below it; a
#: development option for ``benchmarks/diag_*.py``)
SPARSE_CRITERION = "likelihood"
#: ``(loc, scale)`` of a log-normal prior on a sparse level's noise variance (standardised
#: units) in place of the likelihood's own, or ``None`` (the likelihood's: the default); with
#: one noise shared by every level it is that noise's prior while the sparse level is fitted;
#: a development option for ``benchmarks/diag_*.py``
SPARSE_NOISE_PRIOR: tuple[float, float] | None = None
#: ``(mean, sd)`` of a normal prior on a sparse level's ``rho_t`` (standardised units: the
#: joint trainer's is ``N(1, 0.5^2)``), or ``None`` (no prior: the default); a development
#: option for ``benchmarks/diag_*.py``
SPARSE_RHO_PRIOR: tuple[float, float] | None = None


def level_hyperparameters(kernel: AR1Kernel, t: int) -> int:
    """The hyperparameters level ``t > 0`` would fit on its own rows.

    Its data kernel's, ``rho_t`` (and its weights), its noise and its intercept (counted for
    every model, so the rule depends on the data's shape, not on how the model was built).
    """
    own = sum(p.numel() for p in kernel.data_kernels[t].parameters())
    return own + 1 + (kernel.rho_dims or 0) + 2


def sparse_level(kernel: AR1Kernel, t: int, n_rows: int) -> bool:
    """Whether level ``t`` has fewer rows than the hyperparameters it would fit.

    Such a level (5 high-fidelity points of Park's 4-D function: 8 hyperparameters; 20 seed
    experiments on 132 magpie features) cannot tell its noise from its discrepancy: maximising
    its likelihood can put the residuals about ``rho_t f_{t-1}`` in the noise and shrink the
    discrepancy's variance to zero, which makes the predictions overconfident away from the
    data. :func:`fit_ar1_recursive` then puts a ``Gamma(2, 2)`` prior on the discrepancy's
    variance (standardised units: mode 0.5, zero density at zero); the level still fits its own
    noise, since an experimental level is noisier than the computed level below it.
    """
    return t > 0 and n_rows < level_hyperparameters(kernel, t)


def _effect(kernel: torch.nn.Module) -> CompositionEffect | None:
    """The composition effect of a level's data kernel, if it has one."""
    effect = getattr(kernel, "effect", None)
    return effect if isinstance(effect, CompositionEffect) else None


def _distinct_keys(Z: Tensor, effect: CompositionEffect) -> bool:
    """Whether the rows ``Z`` are of distinct compositions (by the effect's key columns)."""
    keys = Z[:, effect.active_dims.to(Z.device)]
    return torch.unique(keys, dim=0).shape[0] == keys.shape[0]


class _EffectSplit:
    """Level ``t``'s residual variance ``tau``, split between its noise and its effect.

    When level ``t``'s rows are of distinct compositions, its likelihood sees the effect's
    variance ``s^2`` and the noise ``sigma_t^2`` only through their sum ``tau`` (each
    composition's effect meets one row), so the split is fitted with level ``t + 1``, whose
    rows share the effect through ``rho``: ``s^2 = (tau - 2e-6) sigmoid(share)``, the rest noise.

    Level ``t + 1`` is then fitted by its leave-one-out predictive density, not its likelihood:
    at its rows without a level-``t`` value the effect (times ``rho``) and level ``t + 1``'s
    noise are exchangeable, and on the band-gap development fold the likelihood traded the
    noise for the effect until the noise was 1e-3 of its value without the effect, with
    predictions overconfident (NLPD 1.97 against 0.78); the leave-one-out density scores the
    predictions the model makes (a composition's own lower value known, its target value not),
    and kept the noise at its usual size. The level above is fitted this way whatever share
    it finds, so a share of 0 gives nearly, not exactly, the model without the effect; its
    entry in ``FitReport.losses`` is then the leave-one-out loss per row.
    """

    def __init__(self, t: int, effect: CompositionEffect) -> None:
        self.t, self.effect = t, effect
        self.tau: Tensor | None = None  # read once level t is fitted

    def variance(self, share: Tensor) -> Tensor:
        """``s^2`` at the unconstrained ``share``."""
        return (self.tau - 2e-6).clamp_min(0.0) * torch.sigmoid(share)


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


def _eager_kernels(fn):
    """Run ``fn`` with GPyTorch's kernels evaluated eagerly.

    Every matrix here is made dense anyway; skipping the lazy wrapper saves its overhead on
    every likelihood step and gives the same numbers.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with gpytorch.settings.lazily_evaluate_kernels(False):
            return fn(*args, **kwargs)

    return wrapper


@_eager_kernels
def fit_ar1_recursive(
    model,
    *,
    max_iter: int = 100,
    restarts: int = 0,
    max_fit_points: int | None = 1500,
    max_condition_points: int = 4000,
    seed: int = 0,
    progress: bool = False,
    sparse: str | bool = "auto",
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

    Composition effects: a level below the top whose data kernel has a
    :class:`~mfgp.kernels.effect.CompositionEffect` (``AR1Spec(composition_effect=True)``) has
    its residual variance split between noise and effect by the level above, which is then
    fitted by its leave-one-out density (see ``_EffectSplit``); with known noise, or
    compositions repeated at the level, the level's own likelihood fits its effect.

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
        sparse: ``"auto"``: a level with fewer rows than the hyperparameters it fits
            (:func:`sparse_level`) gets a ``Gamma(2, 2)`` prior on its discrepancy's variance;
            ``False``: no prior. Chosen on development splits only: the synthetic functions'
            dev seeds and a campaign-sized band-gap split
            (``benchmarks/results/diag_synthetic_sparse_noise.md``,
            ``benchmarks/results/diag_sparse_campaign.md``).

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
    pending: _EffectSplit | None = None  # the level below's effect, split at this level
    if sparse not in ("auto", False):
        raise InputDataError(f"sparse must be 'auto' or False; got {sparse!r}")
    for t in progress_bar(range(T), progress=progress, desc="AR1 levels", leave=False):
        rows = _level_rows(levels, t, max_fit_points, g)
        if rows.numel() == 0:
            losses.append(float("nan"))
            continue
        Z, y = Z_all[rows], y_all[rows]
        m = S = pieces = None
        split = pending if pending is not None and pending.t == t - 1 else None
        if split is not None:
            split.tau = lik.noise.reshape(-1)[t - 1].detach().clone()
        if t > 0:
            below = Z.clone()
            below[:, -1] = t - 1
            with torch.no_grad():
                m, S, pieces = _lower_posterior(model, Z_all, y_all, levels, t, below, noise_of,
                                                max_condition_points, g, split)  # fmt: skip
        effect = _effect(kernel.data_kernels[t])
        pending = None
        if effect is not None:
            with torch.no_grad():
                if (not fixed_noise and per_level_noise
                        and _distinct_keys(Z_all[levels == t], effect)):  # fmt: skip
                    effect.variance = 0.0  # its share of the noise is fitted with level t + 1
                    pending = _EffectSplit(t, effect)
                else:  # repeats or known noise: level t's own likelihood sees the effect
                    effect.variance = 0.1
        # what level t fits, and which entries of shared tensors are its own
        skip = set() if pending is None else {id(p) for p in effect.parameters()}
        owned: list[tuple[torch.nn.Parameter, Tensor | None]] = [
            (p, None) for p in kernel.data_kernels[t].parameters() if id(p) not in skip
        ]
        if t > 0:
            owned.append((kernel.rho, torch.arange(kernel.rho.numel()) == t - 1))
            if kernel.rho_weights is not None:
                mask = (torch.arange(T - 1) == t - 1).unsqueeze(-1).expand_as(kernel.rho_weights)
                owned.append((kernel.rho_weights, mask))
        thin = sparse == "auto" and sparse_level(kernel, t, int((levels == t).sum()))
        borrow = thin and SPARSE_NOISE == "below"
        if borrow and not fixed_noise and per_level_noise:
            with torch.no_grad():  # the noise of the level below (a shared noise stays as is)
                noise_now = lik.noise.clone()
                noise_now.reshape(-1)[t] = noise_now.reshape(-1)[t - 1]
                lik.noise = noise_now
        if thin:
            logger.info("AR1 level %d: %d rows for %d hyperparameters; Gamma prior on the "
                        "discrepancy's variance%s", t + 1, rows.numel(),
                        level_hyperparameters(kernel, t),
                        ", noise from the level below" if borrow else "")  # fmt: skip
        if not fixed_noise and not borrow:
            raw = lik.noise_covar.raw_noise
            owned.append((raw, (torch.arange(raw.numel()) == t).reshape(raw.shape)
                          if per_level_noise else None))  # fmt: skip
        if per_level_mean:
            owned.append((mean.constants, torch.arange(T) == t))
        elif t == 0:
            owned += [(p, None) for p in mean.parameters()]
        owned = [(p, None if k is None else k.to(p.device)) for p, k in owned if p.requires_grad]

        if t > 0 and per_level_mean:
            with torch.no_grad():  # start from the shared-constant model
                mean.constants[t] = mean.constants[t - 1]
        noise = functools.partial(noise_of, rows, t)  # re-read at every step: it is fitted
        scale = getattr(kernel.data_kernels[t], "outputscale", None)
        scale_prior = (GammaPrior(*SPARSE_OUTPUTSCALE).to(scale)
                       if thin and scale is not None else None)  # fmt: skip
        noise_prior = (LogNormalPrior(*SPARSE_NOISE_PRIOR).to(y)
                       if thin and SPARSE_NOISE_PRIOR is not None else None)  # fmt: skip
        rho_prior = (NormalPrior(*SPARSE_RHO_PRIOR).to(y)
                     if thin and SPARSE_RHO_PRIOR is not None else None)  # fmt: skip
        if split is not None:  # the level below's effect: its share, a parameter of this step
            model.register_parameter("_effect_share", torch.nn.Parameter(
                torch.zeros((), dtype=y.dtype, device=y.device)))  # fmt: skip
            owned.append((model._effect_share, None))
            pieces = (*pieces, functools.partial(split.variance, model._effect_share))
        loo = split is not None or (thin and SPARSE_CRITERION == "loo")
        level = functools.partial(_level_nll, model, t, Z, y, noise, m, S,
                                  outputscale_prior=scale_prior, effect=pieces,
                                  noise_prior=noise_prior, rho_prior=rho_prior,
                                  criterion="loo" if loo else "likelihood")  # fmt: skip

        def randomize_level(g: torch.Generator, t: int = t) -> None:
            randomize(kernel.data_kernels[t], g)
            if t > 0:
                with torch.no_grad():
                    kernel.rho[t - 1] = 1.0 + torch.randn((), generator=g).item()

        def run(jitter: float, level=level, owned=owned) -> tuple[float, int]:
            return lbfgs(functools.partial(level, jitter), owned, max_iter)

        try:
            best = best_of_starts(model, run, restarts=restarts,
                                  randomize_start=randomize_level, g=g,
                                  where=f"level {t}: ")  # fmt: skip
            if split is not None:
                with torch.no_grad():
                    s2 = split.variance(model._effect_share)
                    split.effect.variance = s2
                    noise_now = lik.noise.clone()
                    noise_now.reshape(-1)[t - 1] = split.tau - s2
                    lik.noise = noise_now
                logger.info("AR1 level %d: composition effect %.3g of its residual variance "
                            "%.3g (fitted with level %d)", t, float(s2), float(split.tau),
                            t + 1)  # fmt: skip
        finally:  # the share is a parameter of this step only, never of the model
            if split is not None:
                del model._effect_share
        used_jitter = max(used_jitter, best.jitter)
        failed += best.failed
        logger.info("AR1 level %d of %d: loss %.4g per row on %d rows", t + 1, T,
                    best.loss / rows.numel(), rows.numel())  # fmt: skip
        losses.append(best.loss / rows.numel())
        n_fit += rows.numel()
        iterations += best.iterations
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


def _level_nll(model, t, Z, y, noise, m, S, jitter, *, outputscale_prior=None,
               effect=None, criterion: str = "likelihood", noise_prior=None,
               rho_prior=None) -> Tensor:  # fmt: skip
    """``-log p(y_t | y_<t)`` minus the log priors of level ``t``'s own parameters.

    ``noise()`` gives the rows' noise variances; ``m``, ``S`` the lower level's posterior;
    ``outputscale_prior``: a sparse level's prior on its discrepancy's variance; ``effect``:
    ``(mC, G, Q, s2)`` when the level below's composition effect is split here: its posterior
    is then ``m + s2 mC`` and ``S + s2 G - s2^2 Q`` (:func:`_lower_posterior`), ``s2()`` the
    effect's variance; ``criterion``: ``"likelihood"`` or ``"loo"``, the negative sum of the
    rows' leave-one-out log predictive densities (each row's lower rows kept);
    ``noise_prior``: a prior on level ``t``'s noise in place of the likelihood's;
    ``rho_prior``: a prior on its ``rho_t``.
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
        if effect is not None:
            mC, G, Q, variance = effect
            s2 = variance()
            m, S = m + s2 * mC, S + s2 * G - s2.square() * Q
        mu = mu + r * (m - mean(below).expand(n))
        cov = cov + r.unsqueeze(-1) * S * r.unsqueeze(-2)
    cov = cov + torch.diag_embed(noise() + jitter)
    L, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise NotPSDError(f"level {t} covariance not positive definite")
    if criterion == "loo":
        # leave-one-out predictive density of each row (its own lower rows kept): the effect
        # is exchangeable with this level's noise at rows without a lower value, and the
        # likelihood can trade one for the other until the noise vanishes; the LOO density
        # scores the predictions the model will make, own lower value known (Bachoc 2013:
        # cross-validation is the safer criterion when the model is misspecified)
        Kinv = torch.cholesky_inverse(L)
        alpha = Kinv @ (y - mu).unsqueeze(-1)
        d = Kinv.diagonal()
        nll = 0.5 * (alpha.squeeze(-1).square() / d - d.log()).sum()
        nll = nll + 0.5 * n * math.log(2 * math.pi)
    else:
        a = torch.linalg.solve_triangular(L, (y - mu).unsqueeze(-1), upper=False)
        nll = 0.5 * a.square().sum() + L.diagonal().log().sum() + 0.5 * n * math.log(2 * math.pi)
    prior = _log_priors(kernel.data_kernels[t])
    noise_model = lik.noise_covar
    if not isinstance(lik, gpytorch.likelihoods.FixedNoiseGaussianLikelihood):
        if noise_prior is None:
            noise_prior = getattr(noise_model, "noise_prior", None)
        if noise_prior is not None:
            own = (
                lik.noise[t] if isinstance(noise_model, MultitaskHomoskedasticNoise) else lik.noise
            )
            prior = prior + noise_prior.log_prob(own).sum()
    if outputscale_prior is not None:
        scale = kernel.data_kernels[t].outputscale
        prior = prior + outputscale_prior.log_prob(scale).sum()
    if rho_prior is not None and t > 0:
        prior = prior + rho_prior.log_prob(kernel.rho[t - 1]).sum()
    if t > 0 and kernel.rho_weights is not None:
        prior = prior + kernel.rho_weights_prior.log_prob(kernel.rho_weights[t - 1]).sum()
    return nll - prior


def _lower_posterior(model, Z_all, y_all, levels, t, at, noise_of, cap, g, split=None):
    """Posterior mean and covariance of ``f_{t-1}`` at inputs ``at`` given levels ``< t``.

    With ``split`` (level ``t - 1``'s composition effect, its variance still in the noise of
    level ``t - 1``'s rows, which are of distinct compositions), also the pieces of the
    posterior as a function of the effect's variance ``s2``: the noisy covariance of the lower
    rows does not depend on it (``tau`` on the diagonal either way), and the cross-covariance
    gains ``s2 C`` (``C``: 1 where a lower row of level ``t - 1`` is of an ``at`` row's
    composition), so the mean is ``m + s2 C alpha`` and the covariance
    ``S + s2 (C_aa - P - P^T) - s2^2 C K^-1 C^T`` with ``P = C K^-1 K_x^T``. Returns
    ``(m, S, pieces)``, ``pieces`` ``(C alpha, C_aa - P - P^T, C K^-1 C^T)`` or ``None``.
    """
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
    S = 0.5 * (S + S.transpose(-1, -2))
    if split is None:
        return m, S, None
    dims = split.effect.active_dims.to(at.device)
    ka, kl = at[:, dims], Zl[:, dims]
    C = ((ka.unsqueeze(-2) == kl.unsqueeze(-3)).all(-1)
         & (levels[lower] == t - 1).unsqueeze(-2)).to(at.dtype)  # fmt: skip
    W = torch.linalg.solve_triangular(L, C.transpose(-1, -2), upper=False)
    P = W.transpose(-1, -2) @ V
    C_aa = (ka.unsqueeze(-2) == ka.unsqueeze(-3)).all(-1).to(at.dtype)
    Q = W.transpose(-1, -2) @ W
    return m, S, ((C @ alpha).squeeze(-1), C_aa - P - P.transpose(-1, -2),
                  0.5 * (Q + Q.transpose(-1, -2)))  # fmt: skip
