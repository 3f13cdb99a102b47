"""When a campaign stops: conditions that compose with ``&`` and ``|``.

Example:
    >>> stop = Budget(5000) | (Experiments(40) & HitsFound(3, lo=1.1, hi=1.7))
    >>> print(stop)
    (Budget(5000) | (Experiments(40) & HitsFound(3, 1.1, 1.7)))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Budget", "Cap", "Experiments", "HitsFound", "PredictiveChange", "StoppingCondition"]


@dataclass(frozen=True)
class Cap:
    """What a campaign may still acquire before a stopping condition holds.

    Attributes:
        cost: the cost still allowed (``inf``: no budget).
        counts: fidelity -> how many more observations of it are allowed (a fidelity not
            listed is not limited).
    """

    cost: float = math.inf
    counts: dict[str, float] = field(default_factory=dict)

    def allows(self, costs: list[float], fidelities: list[str]) -> int:
        """How many of these rows, taken in order, fit under the cap (a prefix length)."""
        spent, used = 0.0, dict.fromkeys(self.counts, 0)
        for k, (cost, fid) in enumerate(zip(costs, fidelities)):
            if spent + cost > self.cost + 1e-9 * max(1.0, abs(self.cost)):
                return k
            if fid in used:
                if used[fid] + 1 > self.counts[fid]:
                    return k
                used[fid] += 1
            spent += cost
        return len(costs)

    @property
    def unlimited(self) -> bool:
        """Whether nothing is limited."""
        return math.isinf(self.cost) and not self.counts


@dataclass(frozen=True)
class _CapPair:
    """Two caps combined.

    ``either=True`` (``a | b``: either condition stops the campaign): a row fits while it fits
    both caps. ``either=False`` (``a & b``: the campaign goes on until both hold): while it
    fits either one.
    """

    a: Cap
    b: Cap
    either: bool

    def _pick(self, x, y):
        return min(x, y) if self.either else max(x, y)

    def allows(self, costs: list[float], fidelities: list[str]) -> int:  # noqa: D102
        return self._pick(self.a.allows(costs, fidelities), self.b.allows(costs, fidelities))

    @property
    def cost(self) -> float:  # noqa: D102
        return self._pick(self.a.cost, self.b.cost)

    @property
    def unlimited(self) -> bool:  # noqa: D102
        if self.either:
            return self.a.unlimited and self.b.unlimited
        return self.a.unlimited or self.b.unlimited


class StoppingCondition:
    """Base class: ``condition(campaign) -> bool``; ``a & b``, ``a | b``.

    :meth:`cap` says what may still be acquired before the condition holds (its ``allows``:
    how many of a sequence of rows fit), so that :meth:`Campaign.run <mfgp.loop.Campaign.run>`
    never acquires past a budget or a count: a batch is chosen within the cap (an affordable
    cheaper row is taken when an expensive one no longer fits), pending suggestions are
    answered only as far as the cap allows and those that no longer fit are cancelled. With
    ``a | b`` a row must fit both caps; with ``a & b`` either (the campaign goes on until both
    hold), and once one of them holds, the other's cap alone.
    """

    def __call__(self, campaign) -> bool:  # noqa: D102
        raise NotImplementedError

    def cap(self, campaign) -> Cap:
        """What may still be acquired before this condition holds (default: no limit)."""
        return Cap()

    def remaining(self, campaign) -> float:
        """The cost still allowed before this condition holds (``inf``: no budget in it)."""
        return self.cap(campaign).cost

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

    def cap(self, campaign) -> Cap:  # noqa: D102
        if self.a(campaign):  # only b is left to hold
            return self.b.cap(campaign)
        if self.b(campaign):
            return self.a.cap(campaign)
        return _CapPair(self.a.cap(campaign), self.b.cap(campaign), either=False)

    def __repr__(self) -> str:
        return f"({self.a!r} & {self.b!r})"


@dataclass(frozen=True, repr=False)
class _Either(StoppingCondition):
    a: StoppingCondition
    b: StoppingCondition

    def __call__(self, campaign) -> bool:  # noqa: D102
        return self.a(campaign) or self.b(campaign)

    def cap(self, campaign) -> Cap:  # noqa: D102
        return _CapPair(self.a.cap(campaign), self.b.cap(campaign), either=True)

    def __repr__(self) -> str:
        return f"({self.a!r} | {self.b!r})"


@dataclass(frozen=True, repr=False)
class Budget(StoppingCondition):
    """The cost spent on acquired observations has reached ``total``.

    :meth:`Campaign.run` never overspends it: a batch is chosen among the rows the budget
    still allows, and the campaign goes on while any row is affordable.
    """

    total: float

    def __call__(self, campaign) -> bool:  # noqa: D102
        return campaign.spent() >= self.total

    def cap(self, campaign) -> Cap:  # noqa: D102
        return Cap(cost=self.total - campaign.spent())

    def __repr__(self) -> str:
        return f"Budget({self.total:g})"


@dataclass(frozen=True, repr=False)
class Experiments(StoppingCondition):
    """``n`` observations acquired (at ``fidelity``; default the target)."""

    n: int
    fidelity: str | None = None

    def _done(self, campaign) -> int:
        fid = campaign.target if self.fidelity is None else self.fidelity
        obs = campaign.observations()
        return int(((obs.source == "observed") & (obs.fidelity == fid)).sum())

    def __call__(self, campaign) -> bool:  # noqa: D102
        return self._done(campaign) >= self.n

    def cap(self, campaign) -> Cap:  # noqa: D102
        fid = campaign.target if self.fidelity is None else self.fidelity
        return Cap(counts={fid: self.n - self._done(campaign)})

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
    """The target's predicted mean over the reference set moved less than ``tol``.

    The mean absolute change (in the target's units) between the predictions of the last two
    suggestions made with different observations: a suggestion records the predicted means
    of the campaign's fixed reference set (chosen once, at creation) together with the
    number of observations they rest on, in the suggestion's own transaction; a second
    suggestion with no new observation records nothing.
    """

    tol: float

    def __call__(self, campaign) -> bool:  # noqa: D102
        history = campaign.store.get("reference_means", [])
        if len(history) < 2:
            return False
        last, before = history[-1], history[-2]
        if not isinstance(last, dict):  # a store written before the counts were recorded
            return False
        a, b = np.asarray(last["means"]), np.asarray(before["means"])
        if a.shape != b.shape:
            return False
        return float(np.mean(np.abs(a - b))) < self.tol

    def __repr__(self) -> str:
        return f"PredictiveChange({self.tol:g})"
