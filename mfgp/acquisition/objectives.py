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
* :class:`UpperConfidenceBound`, :class:`WindowHits` (the probability that the measured value
  lies in ``[lo, hi]``, e.g. band gaps for single-junction photovoltaics): target-fidelity
  rows only, from the predictive of a new measurement.
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
from scipy import stats
from torch import Tensor

from mfgp.acquisition.pool import PoolMoments
from mfgp.exceptions import InputDataError

__all__ = [
    "OBJECTIVES",
    "KnowledgeGradient",
    "LearnMap",
    "LogNoisyExpectedImprovement",
    "Objective",
    "UpperConfidenceBound",
    "WindowHits",
    "expected_max_of_lines",
    "make_objective",
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
    mass = stats.norm.cdf(edges) - stats.norm.cdf(starts)
    dens = stats.norm.pdf(starts) - stats.norm.pdf(edges)
    return float(np.sum(ai * mass + bi * dens))


@dataclass(frozen=True)
class Objective:
    """Base class. ``information`` objectives score every fidelity (value per unit cost)."""

    name: ClassVar[str] = ""
    information: ClassVar[bool] = False

    def score(self, moments: PoolMoments, *, cost: Tensor, is_target: Tensor,
              model=None, C: Tensor | None = None, baseline: Tensor | None = None
              ) -> Tensor:  # fmt: skip
        """One score per candidate (``-inf`` where the objective does not apply)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        """JSON: ``{"name": ..., **fields}``."""
        import dataclasses

        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class LearnMap(Objective):
    """Mean reduction of the target's posterior variance over the reference pool, per cost."""

    name: ClassVar[str] = "learn"
    information: ClassVar[bool] = True

    def score(self, moments, *, cost, is_target, **kwargs) -> Tensor:  # noqa: D102
        gain = moments.cross.square().sum(0) / moments.var_y / moments.cross.shape[0]
        return gain / cost


@dataclass(frozen=True)
class KnowledgeGradient(Objective):
    """Discrete-pool multi-fidelity knowledge gradient per unit cost (exact, see the module)."""

    name: ClassVar[str] = "kg"
    information: ClassVar[bool] = True
    maximize: bool = True

    def score(self, moments, *, cost, is_target, **kwargs) -> Tensor:  # noqa: D102
        sign = 1.0 if self.maximize else -1.0
        a = (sign * moments.mean_ref).cpu().numpy()
        slopes = (sign * moments.cross / moments.var_y.sqrt()).cpu().numpy()
        best = a.max()
        kg = np.array([expected_max_of_lines(a, slopes[:, c]) - best
                       for c in range(slopes.shape[1])])  # fmt: skip
        return torch.as_tensor(np.maximum(kg, 0.0)).to(cost) / cost


@dataclass(frozen=True)
class UpperConfidenceBound(Objective):
    """``mean + sqrt(beta) std`` of the target (``maximize=False``: ``-mean + ...``)."""

    name: ClassVar[str] = "ucb"
    beta: float = 4.0
    maximize: bool = True

    def score(self, moments, *, cost, is_target, **kwargs) -> Tensor:  # noqa: D102
        sign = 1.0 if self.maximize else -1.0
        s = sign * moments.mean + math.sqrt(self.beta) * moments.var_y.sqrt()
        return torch.where(is_target, s, torch.full_like(s, -math.inf))


@dataclass(frozen=True)
class WindowHits(Objective):
    """``P(lo <= y <= hi)`` of a new target measurement: the expected hits of a batch is the sum.

    With a hurdle model pass its predictive's probabilities instead (a campaign does): the
    point mass at zero is then accounted for.
    """

    name: ClassVar[str] = "window"
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

    def score(self, moments, *, cost, is_target, **kwargs) -> Tensor:  # noqa: D102
        p = self.probability(moments.mean, moments.var_y.sqrt())
        return torch.where(is_target, p, torch.full_like(p, -math.inf))


@dataclass(frozen=True)
class LogNoisyExpectedImprovement(Objective):
    """BoTorch's ``qLogNoisyExpectedImprovement`` at the target fidelity (q = 1 per row)."""

    name: ClassVar[str] = "logei"
    maximize: bool = True
    batch_size: int = 256

    def score(self, moments, *, cost, is_target, model=None, C=None, baseline=None,
              **kwargs) -> Tensor:  # fmt: skip
        """``log EI`` of each target row given the noisy baseline (``-inf`` elsewhere)."""
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective

        if model is None or C is None or baseline is None:
            raise InputDataError("logei needs the model, the candidates and the baseline rows")
        sign = 1.0 if self.maximize else -1.0
        acqf = qLogNoisyExpectedImprovement(
            model, baseline, objective=GenericMCObjective(lambda y, X=None: sign * y[..., 0]),
            prune_baseline=False,
        )  # fmt: skip
        out = torch.full_like(cost, -math.inf)
        rows = torch.nonzero(is_target).squeeze(-1)
        with torch.no_grad():
            for i in range(0, rows.numel(), self.batch_size):
                r = rows[i : i + self.batch_size]
                out[r] = acqf(C[r].unsqueeze(-2)).to(out)
        return out


#: objective name -> class (a campaign stores its objective as ``to_dict()``)
OBJECTIVES = {cls.name: cls for cls in (LearnMap, KnowledgeGradient, UpperConfidenceBound,
                                        WindowHits, LogNoisyExpectedImprovement)}  # fmt: skip


def make_objective(objective: str | dict | Objective, **options) -> Objective:
    """An objective from its name (``"learn"``, ``"kg"``, ``"ucb"``, ``"window"``, ``"logei"``)."""
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
