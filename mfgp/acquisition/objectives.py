"""What a campaign wants from its next observations, scored over a finite pool.

Each objective scores candidate rows (a composition at a fidelity) from
:class:`~mfgp.acquisition.pool.PoolMoments`; information objectives divide by the row's cost,
so a cheap computation competes with an expensive experiment on value per unit cost.

* :class:`LearnMap`: the mean reduction of the target's posterior variance over the reference
  pool that observing the row brings (``sum_r cov(f_T(r), y_c)^2 / var(y_c) / m``): exact for
  a Gaussian process, whatever value is observed.
* :class:`KnowledgeGradient`: the discrete-pool multi-fidelity knowledge gradient,
  ``E[max_r mu'_T(r)] - max_r mu_T(r)`` after observing ``y_c``: the fantasized posterior mean
  is ``mu_T(r) + cov(f_T(r), y_c) / sd(y_c) Z`` with one standard normal ``Z``, so the
  expectation of the maximum of these lines is computed exactly from their upper envelope
  (Frazier, Powell & Dayanik 2009), no Monte Carlo and no inner optimisation.
* :class:`MaxValueEntropy`: cost-weighted max-value entropy search, the information a row's
  observation brings about the pool's best target value ``f* = max_r f_T(r)`` (Wang & Jegelka
  2017), in the lower-bound form of GIBBON (Moss et al. 2021): conditioning on ``f*`` is
  approximated by truncating the candidate's own composition at the target, ``f_T(x_c) <= f*``,
  and the truncated predictive of ``y_c`` by a Gaussian of its exact variance, so the gain is
  ``-1/2 log(1 - rho^2 r (gamma + r))`` with ``gamma = (f* - mu_T(x_c)) / sd_T(x_c)``,
  ``r = phi(gamma) / Phi(gamma)`` and ``rho`` the correlation of ``y_c`` with ``f_T(x_c)``.
  ``f*`` is taken at stratified quantiles of the distribution of the maximum over the pool's
  compositions with independent marginals (Wang & Jegelka's approximation), so scores are
  deterministic.
* :class:`UpperConfidenceBound`, :class:`WindowHits` (the probability that the measured value
  lies in ``[lo, hi]``, e.g. band gaps for single-junction photovoltaics): target-fidelity
  rows only, from the predictive of a new measurement.
* :class:`Uncertainty` (uncertainty sampling: the predictive std) and :class:`GreedyMean`
  (pure exploitation: the predicted mean, or its closeness to a value): the usual baselines,
  target-fidelity rows only.
* :class:`LogNoisyExpectedImprovement`: BoTorch's ``qLogNoisyExpectedImprovement`` at the
  target, the candidates scored as ``n x 1 x d`` batches.

Objectives maximise; ``maximize=False`` looks for the lowest value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import special
from torch import Tensor

from mfgp.acquisition.pool import PoolMoments, twin_moments
from mfgp.exceptions import InputDataError

__all__ = [
    "OBJECTIVES",
    "KnowledgeGradient",
    "LearnMap",
    "LogNoisyExpectedImprovement",
    "MaxValueEntropy",
    "Objective",
    "UpperConfidenceBound",
    "WindowHits",
    "GreedyMean",
    "Uncertainty",
    "envelope_lines",
    "expected_max_of_lines",
    "expected_max_of_lines_batch",
    "make_objective",
    "max_value_quantiles",
]


def expected_max_of_lines(a: np.ndarray, b: np.ndarray) -> float:
    """``E[max_i (a_i + b_i Z)]`` for ``Z ~ N(0, 1)``, exactly, from the upper envelope.

    Lines sorted by slope; of equal slopes the highest is kept; a line is dropped when it is
    never the maximum. On the envelope's pieces ``[c_{k-1}, c_k]`` the expectation is
    ``a_k (Phi(c_k) - Phi(c_{k-1})) + b_k (phi(c_{k-1}) - phi(c_k))``.

    Example:
        >>> round(expected_max_of_lines(np.array([0.0, 0.0]), np.array([-1.0, 1.0])), 6)
        0.797885
    """
    order = np.lexsort((a, b))  # by slope, then intercept
    a, b = np.asarray(a, dtype=np.float64)[order], np.asarray(b, dtype=np.float64)[order]
    keep = np.append(b[1:] != b[:-1], True)  # the highest intercept of each slope
    a, b = a[keep], b[keep]
    lines: list[int] = []
    left: list[float] = []  # the z from which each envelope line is the maximum
    for i in range(a.size):
        z = -math.inf
        while lines:
            j = lines[-1]
            z = (a[j] - a[i]) / (b[i] - b[j])
            if z <= left[-1]:
                lines.pop()
                left.pop()
                z = -math.inf
            else:
                break
        lines.append(i)
        left.append(z)
    edges = np.array(left[1:] + [math.inf])
    starts = np.array(left)
    ai, bi = a[lines], b[lines]
    mass = special.ndtr(edges) - special.ndtr(starts)
    dens = _normal_pdf(starts) - _normal_pdf(edges)
    return float(np.sum(ai * mass + bi * dens))


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    """The standard normal density (0 at +-inf), without scipy.stats' per-call overhead."""
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


#: the lines kept by :func:`envelope_lines` are those maximal somewhere in ``[-Z_RANGE, Z_RANGE]``
Z_RANGE = 10.0


def envelope_lines(a: np.ndarray, B: np.ndarray, *, knots: int = 5,
                   chunk: int = 512) -> np.ndarray:  # fmt: skip
    """Which lines ``a_i + B_ic z`` can be the maximum of candidate ``c``'s for ``|z| <= 10``.

    A vectorised filter in front of :func:`expected_max_of_lines`: at ``knots`` points ``z_k``
    of ``[-10, 10]`` the maximal line ``l_k`` is found; on ``[z_k, z_{k+1}]`` the envelope is at
    least ``max(l_k, l_{k+1})``, so a line below it at ``z_k``, ``z_{k+1}`` and the crossing of
    ``l_k`` and ``l_{k+1}`` (a line minus the maximum of two lines is concave and piecewise
    linear: its maximum is at one of these) is never the maximum there. Only the survivors
    (a few per candidate) go through the envelope; beyond ``|z| = 10`` the normal density
    is below ``1e-22``, so the expectation is unchanged to double precision of the inputs'
    scale. Lines that tie with the bound are kept.

    Args:
        a: ``m`` intercepts, shared by every candidate.
        B: ``m x n`` slopes, one column per candidate.
        knots: grid points of ``[-10, 10]``.
        chunk: candidates per vectorised pass (memory ``m x chunk x knots``).

    Returns:
        An ``m x n`` boolean mask of the lines to keep.
    """
    at_ = torch.as_tensor(np.asarray(a, dtype=np.float64))
    Bt = torch.as_tensor(np.asarray(B, dtype=np.float64))
    z = torch.linspace(-Z_RANGE, Z_RANGE, knots, dtype=torch.float64)
    keep = torch.zeros(Bt.shape, dtype=torch.bool)
    for lo in range(0, Bt.shape[1], chunk):
        b_all = Bt[:, lo : lo + chunk]  # m x c
        # cheap first pass: a line whose highest value on the interval is below some line's
        # lowest there is never the maximum; only lines that pass it for some candidate of
        # the chunk go through the knots
        reach = Z_RANGE * b_all.abs()
        floor = (at_[:, None] - reach).amax(0)  # c
        tol0 = 1e-12 * (1.0 + floor.abs())
        first = (at_[:, None] + reach) >= (floor - tol0)  # m x c
        rows = torch.nonzero(first.any(1)).squeeze(-1)
        b, a_rows = b_all[rows], at_[rows]
        values = torch.addcmul(a_rows[:, None, None], b[:, :, None], z)  # r x c x k
        bound_k, top = values.max(0)  # c x k: the maximal line at each knot
        cols = torch.arange(b.shape[1])[:, None]
        at, bt = a_rows[top], b[top, cols]  # c x k
        a0, b0, a1, b1 = at[:, :-1], bt[:, :-1], at[:, 1:], bt[:, 1:]
        cross = torch.where(b1 != b0, (a0 - a1) / torch.where(b1 != b0, b1 - b0, 1.0), z[:-1])
        cross = torch.minimum(torch.maximum(cross, z[:-1]), z[1:])  # c x (k - 1)
        bound_c = torch.maximum(a0 + b0 * cross, a1 + b1 * cross)
        tol = 1e-12 * (1.0 + bound_k.abs().amax(1))  # c
        hit = (values >= (bound_k - tol[:, None])).any(-1)
        line_c = torch.addcmul(a_rows[:, None, None], b[:, :, None], cross)  # r x c x (k - 1)
        hit |= (line_c >= (bound_c - tol[:, None])).any(-1)
        keep[rows, lo : lo + chunk] = hit & first[rows]
    return keep.numpy()


def expected_max_of_lines_batch(a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """:func:`expected_max_of_lines` of every column of ``B`` (intercepts ``a`` shared), fast.

    The lines that cannot be maximal (:func:`envelope_lines`) are dropped first, in one
    vectorised pass, so the exact envelope runs over a few lines per candidate instead of
    all ``m``.

    Example:
        >>> a = np.array([0.0, 0.0, -5.0])
        >>> B = np.array([[-1.0], [1.0], [0.0]])
        >>> round(float(expected_max_of_lines_batch(a, B)[0]), 6)
        0.797885
    """
    a = np.asarray(a, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(B).all()):
        raise InputDataError(
            f"expected_max_of_lines_batch needs finite intercepts and slopes; got "
            f"{int((~np.isfinite(a)).sum())} non-finite of {a.size} intercepts and "
            f"{int((~np.isfinite(B)).sum())} of {B.size} slopes (a model whose predictive "
            "variance is 0 or NaN: check its noise and its fit)")
    keep = envelope_lines(a, B)
    return np.array([expected_max_of_lines(a[keep[:, c]], B[keep[:, c], c])
                     for c in range(B.shape[1])])  # fmt: skip


@dataclass(frozen=True)
class Objective:
    """Base class: what an objective needs is declared, not recognised by its name.

    Class attributes (a campaign or :func:`~mfgp.acquisition.select_batch` reads them):

    * ``information``: scores every fidelity, per unit cost, from the joint moments of the
      candidates and the reference rows ``R`` (:class:`~mfgp.acquisition.pool.PoolMoments`).
    * ``needs_model``: its score calls the (conditioned) model itself.
    * ``needs_baseline``: its score needs the observed target rows (``baseline``).
    * ``needs_gaussian``: it reasons about a Gaussian target on the user's scale, so a
      surrogate whose predictive is not Gaussian (a hurdle's point mass at zero) cannot serve
      it.
    * ``from_predictive``: target rows only, scored by :meth:`score_predictive` from the
      predictive distribution of a new measurement on the user's scale (what a hurdle's
      point-mass mixture gives), not from Gaussian moments.
    * ``additive``: a batch's value is the sum of its rows' values (expected window hits,
      expected sum of means), so a batch is the best ``q`` rows: no row is conditioned on the
      fantasy of another (a fantasy at the mean would shrink neighbours' variances and raise
      their window probability, clustering the batch).
    * ``variance_led``: its ranking is led by the predictive variance alone, so a ranking
      with fast (low-rank) variances is led by the rows where they are worst; ``"auto"``
      variances then keep their accuracy check even when exact variances decide
      (:func:`~mfgp.acquisition.select_batch`'s ``refine``).
    * ``units``: what a score is measured in.
    """

    name: ClassVar[str] = ""
    information: ClassVar[bool] = False
    #: scores call the (conditioned) model itself, not only the pool's moments
    needs_model: ClassVar[bool] = False
    needs_baseline: ClassVar[bool] = False
    needs_gaussian: ClassVar[bool] = False
    from_predictive: ClassVar[bool] = False
    additive: ClassVar[bool] = False
    variance_led: ClassVar[bool] = False
    units: ClassVar[str] = ""

    def score(self, moments: PoolMoments, *, cost: Tensor, is_target: Tensor,
              model=None, C: Tensor | None = None, R: Tensor | None = None,
              baseline: Tensor | None = None, **kwargs) -> Tensor:  # fmt: skip
        """One score per candidate (``-inf`` where the objective does not apply)."""
        if self.from_predictive:
            from mfgp.distributions import GaussianPredictive

            at = torch.nonzero(is_target).squeeze(-1)
            pred = GaussianPredictive(moments.mean[at].cpu().numpy(),
                                      moments.var_y[at].sqrt().cpu().numpy())  # fmt: skip
            return self.scores_at(pred, at, cost)
        raise NotImplementedError

    def score_predictive(self, predictive) -> np.ndarray:
        """Scores of target rows from their predictive (``from_predictive`` objectives)."""
        raise NotImplementedError

    def scores_at(self, predictive, at: Tensor, cost: Tensor) -> Tensor:
        """``-inf`` everywhere but at the target rows ``at``, scored from ``predictive``."""
        out = torch.full_like(cost, -math.inf)
        if at.numel():
            out[at] = torch.as_tensor(np.asarray(self.score_predictive(predictive),
                                                 dtype=np.float64)).to(out)  # fmt: skip
        return out

    def to_dict(self) -> dict:
        """JSON: ``{"name": ..., **fields}``."""
        import dataclasses

        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class LearnMap(Objective):
    """Mean reduction of the target's posterior variance over the reference pool, per cost."""

    name: ClassVar[str] = "learn"
    information: ClassVar[bool] = True
    units: ClassVar[str] = "target variance removed per reference row, per unit cost"

    def score(self, moments, *, cost, is_target, ref_weight: Tensor | None = None,
              obs_weight: Tensor | None = None, **kwargs) -> Tensor:  # fmt: skip
        """The variance reduction per cost, optionally weighted.

        ``ref_weight`` (``m``) weighs the reference rows and ``obs_weight`` (``n``) is the
        chance that an observation enters the Gaussian model (a hurdle's regression sees a
        target row only if it is not a metal).
        """
        cross2 = moments.cross.square()
        if ref_weight is not None:
            cross2 = cross2 * ref_weight.to(cross2)[:, None]
        gain = cross2.sum(0) / moments.var_y / moments.cross.shape[0]
        if obs_weight is not None:
            gain = gain * obs_weight.to(gain)
        return gain / cost


@dataclass(frozen=True)
class KnowledgeGradient(Objective):
    """Discrete-pool multi-fidelity knowledge gradient per unit cost (exact, see the module)."""

    name: ClassVar[str] = "kg"
    information: ClassVar[bool] = True
    needs_gaussian: ClassVar[bool] = True
    units: ClassVar[str] = "expected gain in the best predicted target value, per unit cost"
    maximize: bool = True

    def score(self, moments, *, cost, is_target, **kwargs) -> Tensor:  # noqa: D102
        sign = 1.0 if self.maximize else -1.0
        a = (sign * moments.mean_ref).cpu().numpy()
        slopes = (sign * moments.cross / moments.var_y.sqrt()).cpu().numpy()
        best = a.max()
        kg = expected_max_of_lines_batch(a, slopes) - best
        return torch.as_tensor(np.maximum(kg, 0.0)).to(cost) / cost


def max_value_quantiles(mean: Tensor, std: Tensor, samples: int) -> Tensor:
    """Stratified quantiles ``(k + 1/2) / samples`` of ``max_i f_i`` for independent Gaussians.

    The CDF of the maximum is ``prod_i Phi((z - mean_i) / std_i)``; each quantile is found by
    bisection on its logarithm (80 halvings of a bracket that holds every quantile).

    Example:
        >>> q = max_value_quantiles(torch.zeros(1, dtype=torch.float64),
        ...                         torch.ones(1, dtype=torch.float64), 1)
        >>> abs(float(q)) < 1e-12  # the median of one standard normal
        True
    """
    std = std.clamp_min(1e-9)
    u = (torch.arange(samples, dtype=mean.dtype, device=mean.device) + 0.5) / samples
    target = u.log()
    top = int(torch.argmax(mean))
    lo = torch.full_like(u, float(mean[top] - 10 * std[top]))
    hi = torch.full_like(u, float((mean + 10 * std).max()))
    for _ in range(80):
        mid = (lo + hi) / 2
        logcdf = torch.special.log_ndtr((mid[:, None] - mean[None, :]) / std[None, :]).sum(-1)
        below = logcdf < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class MaxValueEntropy(Objective):
    """Cost-weighted max-value entropy search over the pool (see the module), nats per cost.

    Args:
        maximize: look for the highest target value (``False``: the lowest).
        samples: quantiles of the pool's maximum averaged over.
    """

    name: ClassVar[str] = "mes"
    information: ClassVar[bool] = True
    needs_model: ClassVar[bool] = True
    needs_gaussian: ClassVar[bool] = True
    units: ClassVar[str] = "nats of information about the best value, per unit cost"
    maximize: bool = True
    samples: int = 32

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise InputDataError(f"mes needs samples >= 1; got {self.samples}")

    def score(self, moments, *, cost, is_target, model=None, C=None, R=None,
              **kwargs) -> Tensor:  # fmt: skip
        """The information gain about ``f*`` of observing each candidate, per unit cost."""
        if model is None or C is None or R is None or R.shape[0] == 0:
            raise InputDataError("mes needs the model, the candidates and reference rows R")
        from mfgp.predict import predict_marginals

        sign = 1.0 if self.maximize else -1.0
        mean_g, var_g, cov = twin_moments(model, C, float(R[0, -1]))
        twins = C.to(R).clone()
        twins[:, -1] = R[0, -1]
        domain = torch.unique(torch.cat([R, twins]), dim=0)  # the pool's compositions, once
        m, v = predict_marginals(model, domain)
        f_star = max_value_quantiles(sign * m, v.clamp_min(1e-18).sqrt(), self.samples)
        gamma = (f_star[None, :] - sign * mean_g[:, None]) / var_g.sqrt()[:, None]
        r = torch.exp(-0.5 * gamma.square() - 0.5 * math.log(2 * math.pi)
                      - torch.special.log_ndtr(gamma))  # fmt: skip
        rho2 = (cov.square() / (var_g * moments.var_y)).clamp(0.0, 1.0)
        shrink = (1.0 - rho2[:, None] * r * (gamma + r)).clamp_min(1e-12)
        gain = (-0.5 * shrink.log().mean(-1)).clamp_min(0.0)
        return gain.to(cost) / cost


@dataclass(frozen=True)
class UpperConfidenceBound(Objective):
    """``mean + sqrt(beta) std`` of the target (``maximize=False``: ``-mean + ...``)."""

    name: ClassVar[str] = "ucb"
    from_predictive: ClassVar[bool] = True
    units: ClassVar[str] = "target units (mean + sqrt(beta) std of a new measurement)"
    beta: float = 4.0
    maximize: bool = True

    def score_predictive(self, predictive) -> np.ndarray:  # noqa: D102
        sign = 1.0 if self.maximize else -1.0
        return sign * predictive.mean() + math.sqrt(self.beta) * predictive.std()


@dataclass(frozen=True)
class WindowHits(Objective):
    """``P(lo <= y <= hi)`` of a new target measurement: the expected hits of a batch is the sum.

    Scored from the predictive of a new measurement on the user's scale, so a hurdle's
    point mass at zero counts (``P(gap = 0)`` is inside a window with ``lo <= 0``). Additive:
    the expected hits of a batch are the sum of its rows' probabilities, whatever the others
    turn out to be, so a batch is the ``q`` most probable rows (one per composition).
    """

    name: ClassVar[str] = "window"
    from_predictive: ClassVar[bool] = True
    additive: ClassVar[bool] = True
    units: ClassVar[str] = "probability that the measurement falls in [lo, hi]"
    lo: float = 1.1
    hi: float = 1.7

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise InputDataError(f"window needs lo < hi; got [{self.lo}, {self.hi}]")

    def probability(self, mean: Tensor, std: Tensor) -> Tensor:
        """``P(lo <= y <= hi)`` for Gaussian predictives."""
        normal = torch.distributions.Normal(mean, std.clamp_min(1e-12))
        return normal.cdf(torch.full_like(mean, self.hi)) - normal.cdf(torch.full_like(mean,
                                                                                        self.lo))

    def score_predictive(self, predictive) -> np.ndarray:  # noqa: D102
        return predictive.probability_between(self.lo, self.hi)


@dataclass(frozen=True)
class Uncertainty(Objective):
    """Uncertainty sampling: the predictive std of a new target measurement."""

    name: ClassVar[str] = "std"
    from_predictive: ClassVar[bool] = True
    variance_led: ClassVar[bool] = True
    units: ClassVar[str] = "target units (std of a new measurement)"

    def score_predictive(self, predictive) -> np.ndarray:  # noqa: D102
        return predictive.std()


@dataclass(frozen=True)
class GreedyMean(Objective):
    """Pure exploitation: the predicted target mean, or ``-|mean - value|`` with a ``value``.

    Args:
        maximize: the highest mean first (``False``: the lowest); ignored with ``value``.
        value: look for materials whose value is closest to this (e.g. a window's centre).
    """

    name: ClassVar[str] = "greedy"
    from_predictive: ClassVar[bool] = True
    additive: ClassVar[bool] = True
    units: ClassVar[str] = "target units (the predicted mean, or minus its distance to value)"
    maximize: bool = True
    value: float | None = None

    def score_predictive(self, predictive) -> np.ndarray:  # noqa: D102
        mean = predictive.mean()
        if self.value is not None:
            return -np.abs(mean - self.value)
        return mean if self.maximize else -mean


@dataclass(frozen=True)
class LogNoisyExpectedImprovement(Objective):
    """BoTorch's ``qLogNoisyExpectedImprovement`` at the target fidelity (q = 1 per row).

    Its quasi-Monte Carlo sampler is seeded (``seed``, the campaign's), so the same call gives
    the same scores: a resumed campaign makes the same suggestion.

    Args:
        maximize: look for the highest target value (``False``: the lowest).
        batch_size: candidates per acquisition call.
        samples: quasi-Monte Carlo samples of the joint posterior.
    """

    name: ClassVar[str] = "logei"
    needs_model: ClassVar[bool] = True
    needs_baseline: ClassVar[bool] = True
    needs_gaussian: ClassVar[bool] = True
    units: ClassVar[str] = "log expected improvement, in log target units"
    maximize: bool = True
    batch_size: int = 256
    samples: int = 256

    def score(self, moments, *, cost, is_target, model=None, C=None, baseline=None,
              seed: int = 0, **kwargs) -> Tensor:  # fmt: skip
        """``log EI`` of each target row given the noisy baseline (``-inf`` elsewhere)."""
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.sampling import SobolQMCNormalSampler

        if model is None or C is None or baseline is None:
            raise InputDataError("logei needs the model, the candidates and the baseline rows")
        sign = 1.0 if self.maximize else -1.0
        sampler = SobolQMCNormalSampler(torch.Size([self.samples]), seed=int(seed))
        acqf = qLogNoisyExpectedImprovement(
            model, baseline, objective=GenericMCObjective(lambda y, X=None: sign * y[..., 0]),
            prune_baseline=False, sampler=sampler,
        )  # fmt: skip
        out = torch.full_like(cost, -math.inf)
        rows = torch.nonzero(is_target).squeeze(-1)
        with torch.no_grad():
            for i in range(0, rows.numel(), self.batch_size):
                r = rows[i : i + self.batch_size]
                out[r] = acqf(C[r].unsqueeze(-2)).to(out)
        return out


#: objective name -> class (a campaign stores its objective as ``to_dict()``)
OBJECTIVES = {cls.name: cls for cls in (LearnMap, KnowledgeGradient, MaxValueEntropy,
                                        UpperConfidenceBound, WindowHits, Uncertainty,
                                        GreedyMean, LogNoisyExpectedImprovement)}  # fmt: skip


def make_objective(objective: str | dict | Objective, **options) -> Objective:
    """An objective by name, by ``to_dict()``'s form, or as given.

    Names: ``"learn"``, ``"kg"``, ``"mes"``, ``"ucb"``, ``"window"``, ``"std"``, ``"greedy"``,
    ``"logei"``. A dict is ``to_dict()``'s form; an :class:`Objective` is returned as it is.
    """
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, dict):
        options = {**{k: v for k, v in objective.items() if k != "name"}, **options}
        objective = objective.get("name")
    if objective not in OBJECTIVES:
        raise InputDataError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
    try:
        return OBJECTIVES[objective](**options)
    except TypeError as err:
        raise InputDataError(f"objective {objective!r}: {err}") from err
