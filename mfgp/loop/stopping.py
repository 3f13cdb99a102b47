"""When a campaign stops: conditions that compose with ``&`` and ``|``.

Example:
    >>> stop = Budget(5000) | (Experiments(40) & HitsFound(3, lo=1.1, hi=1.7))
    >>> print(stop)
    (Budget(5000) | (Experiments(40) & HitsFound(3, 1.1, 1.7)))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Budget", "Experiments", "HitsFound", "PredictiveChange", "StoppingCondition"]


class StoppingCondition:
    """Base class: ``condition(campaign) -> bool``; ``a & b``, ``a | b``."""

    def __call__(self, campaign) -> bool:  # noqa: D102
        raise NotImplementedError

    def remaining(self, campaign) -> float:
        """The cost still allowed before this condition holds (``inf``: no budget in it)."""
        return float("inf")

    def __and__(self, other: StoppingCondition) -> StoppingCondition:
        return _Both(self, other)

    def __or__(self, other: StoppingCondition) -> StoppingCondition:
        return _Either(self, other)


@dataclass(frozen=True, repr=False)
class _Both(StoppingCondition):
    a: StoppingCondition
    b: StoppingCondition

    def __call__(self, campaign) -> bool:  # noqa: D102
        return self.a(campaign) and self.b(campaign)

    def remaining(self, campaign) -> float:  # noqa: D102
        return max(self.a.remaining(campaign), self.b.remaining(campaign))

    def __repr__(self) -> str:
        return f"({self.a!r} & {self.b!r})"


@dataclass(frozen=True, repr=False)
class _Either(StoppingCondition):
    a: StoppingCondition
    b: StoppingCondition

    def __call__(self, campaign) -> bool:  # noqa: D102
        return self.a(campaign) or self.b(campaign)

    def remaining(self, campaign) -> float:  # noqa: D102
        return min(self.a.remaining(campaign), self.b.remaining(campaign))

    def __repr__(self) -> str:
        return f"({self.a!r} | {self.b!r})"


@dataclass(frozen=True, repr=False)
class Budget(StoppingCondition):
    """The cost spent on acquired observations has reached ``total``.

    :meth:`Campaign.run` never overspends it: a batch is cut to what the budget still allows.
    """

    total: float

    def __call__(self, campaign) -> bool:  # noqa: D102
        return campaign.spent() >= self.total

    def remaining(self, campaign) -> float:  # noqa: D102
        return self.total - campaign.spent()

    def __repr__(self) -> str:
        return f"Budget({self.total:g})"


@dataclass(frozen=True, repr=False)
class Experiments(StoppingCondition):
    """``n`` observations acquired (at ``fidelity``; default the target)."""

    n: int
    fidelity: str | None = None

    def __call__(self, campaign) -> bool:  # noqa: D102
        fid = campaign.target if self.fidelity is None else self.fidelity
        obs = campaign.observations()
        return int(((obs.source == "observed") & (obs.fidelity == fid)).sum()) >= self.n

    def __repr__(self) -> str:
        return f"Experiments({self.n})" if self.fidelity is None else \
            f"Experiments({self.n}, {self.fidelity!r})"


@dataclass(frozen=True, repr=False)
class HitsFound(StoppingCondition):
    """``k`` acquired target values lie in ``[lo, hi]``."""

    k: int
    lo: float
    hi: float

    def __call__(self, campaign) -> bool:  # noqa: D102
        obs = campaign.observations()
        top = obs[(obs.source == "observed") & (obs.fidelity == campaign.target)]
        return int(((top.value >= self.lo) & (top.value <= self.hi)).sum()) >= self.k

    def __repr__(self) -> str:
        return f"HitsFound({self.k}, {self.lo:g}, {self.hi:g})"


@dataclass(frozen=True, repr=False)
class PredictiveChange(StoppingCondition):
    """The target's predicted mean over the reference pool moved less than ``tol``.

    The mean absolute change between the last two suggestions.
    """

    tol: float

    def __call__(self, campaign) -> bool:  # noqa: D102
        history = campaign.store.get("reference_means", [])
        if len(history) < 2:
            return False
        return float(np.mean(np.abs(np.subtract(history[-1], history[-2])))) < self.tol

    def __repr__(self) -> str:
        return f"PredictiveChange({self.tol:g})"
