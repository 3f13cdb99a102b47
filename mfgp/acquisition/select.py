"""Choosing a batch of observations from a pool: greedy, on fantasies, diverse by composition."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mfgp.acquisition.objectives import Objective
from mfgp.acquisition.pool import (
    GreedyUpdates,
    marginal_moments,
    observation_noise_variance,
    pool_moments,
    supports_updates,
)
from mfgp.exceptions import InputDataError
from mfgp.predict import model_device

__all__ = ["DEFAULT_POOL_RANK", "DEFAULT_POOL_REFINE", "Selection", "fantasize",
           "has_known_noise", "select_batch"]

#: with fast variances, :func:`select_batch` rescores the best ``DEFAULT_POOL_REFINE`` rows of
#: each fidelity exactly and chooses the batch among them. Chosen on a development pool
#: (``benchmarks/diag_pool_refine.py``), not on the pools ``bench_pool_scoring`` reports.
DEFAULT_POOL_REFINE = 256
#: the rank of the low-rank cache that ranks a refined selection's first round (the leading
#: columns of a larger cache the model holds: :func:`mfgp.fastvar.truncated`), unless a
#: :func:`mfgp.fastvar.fast_variances` block sets one. It only picks the rows that exact
#: variances decide among; chosen on the development pool (``diag_pool_refine.py``).
DEFAULT_POOL_RANK = 256


@dataclass
class Selection:
    """A chosen batch: row indices into the candidates, with their scores and predictions.

    Attributes:
        rows: indices of the chosen candidates, in the order chosen.
        scores: each one's objective value when it was chosen (after conditioning on the
            ones before it on their predicted means).
        mean, std: the predictive of a new observation of each (before any conditioning).
        first_scores: every candidate's score in the first round (``-inf``: not eligible).
        exact: which candidates' ``std`` and ``first_scores`` come from exact variances
            (``None``: all of them; all ``False`` when fast variances chose the batch). With
            ``refine``, rows outside the ones rescored exactly carry their fast values; the
            chosen rows, their scores and every mean are exact.
    """

    rows: list[int]
    scores: list[float]
    mean: np.ndarray
    std: np.ndarray
    first_scores: np.ndarray
    exact: np.ndarray | None = None


def has_known_noise(model) -> bool:
    """Whether ``model``'s likelihood has fixed (known, per-row) noise."""
    from gpytorch.likelihoods.noise_models import FixedGaussianNoise

    noise = getattr(getattr(model, "likelihood", None), "noise_covar", None)
    return isinstance(noise, FixedGaussianNoise)


def fantasize(model, X: Tensor, Y: Tensor, Yvar: Tensor | None = None):
    """The model conditioned on ``(X, Y)`` with its hyperparameters (a block update if it can).

    ``Yvar`` (``m x 1``, in the outcome's units squared) is each new row's known noise
    variance; it is used by a model with known noise. For such a model a row without it gets
    the mean known noise of its own fidelity in the training data (what a new measurement at
    that fidelity is predicted with); a model that learned its noise uses its own and ignores
    ``Yvar``.
    """
    update = getattr(model, "conditioned_on", None)
    if update is None:
        return model.condition_on_observations(X, Y)
    if not has_known_noise(model):
        return update(X, Y, None)
    if Yvar is None:
        Yvar = observation_noise_variance(model, X).reshape(-1, 1)
    else:
        Yvar = Yvar.reshape(-1, 1).to(Y)
        missing = torch.isnan(Yvar)
        if bool(missing.any()):
            Yvar = torch.where(missing, observation_noise_variance(model, X).reshape(-1, 1).to(Y),
                               Yvar)  # fmt: skip
    return update(X, Y, Yvar.to(Y))


def select_batch(model, C: Tensor, objective: Objective, *, q: int = 1,
                 R: Tensor | None = None, cost: Tensor | None = None,
                 is_target: Tensor | None = None, groups: np.ndarray | None = None,
                 baseline: Tensor | None = None, batch_size: int = 512,
                 predictive=None, updates: bool | None = None,
                 max_cost: float | None = None, kinds: np.ndarray | None = None,
                 fits=None, ref_weight: Tensor | None = None,
                 obs_weight: Tensor | None = None, seed: int = 0,
                 variances: str = "auto",
                 refine: int | None = DEFAULT_POOL_REFINE) -> Selection:  # fmt: skip
    """Choose ``q`` candidate rows greedily: score, take the best, condition on its fantasy, repeat.

    The fantasy of a chosen row is its predicted mean (the variance-based objectives do not
    depend on it; for the others it is the kriging believer), so the next choice sees the
    information the first brings and a batch is spread out. An ``additive`` objective
    (expected window hits, the sum of means) is not conditioned: its batch is the best ``q``
    rows. Once a composition is chosen, its other rows are no longer eligible (``groups``:
    one id per candidate; ``None``: every row its own group). With ``max_cost`` or
    ``fits``, a row is eligible only while the batch with it stays within them, so a
    cheaper row is taken when an expensive one no longer fits.

    Args:
        model: a BoTorch model on contract inputs.
        C: ``n x (d + 1)`` candidate rows, each at the fidelity it would be observed at.
        objective: an :class:`~mfgp.acquisition.objectives.Objective`.
        q: batch size.
        R: reference rows at the target fidelity (information objectives).
        cost: ``n`` costs (default 1).
        is_target: ``n`` booleans: rows at the target fidelity (default: all).
        groups: ``n`` composition ids (no two rows of one id in a batch).
        baseline: observed target rows (objectives with ``needs_baseline``).
        batch_size: candidates per joint posterior call.
        predictive: ``callable(mean, var_y, rows) -> Predictive``: the predictive of a new
            measurement on the user's scale of the target rows ``rows`` (indices into ``C``)
            from the model's Gaussian moments there; ``from_predictive`` objectives score it.
            Default: the Gaussian itself. A surrogate supplies it (a hurdle's point-mass
            mixture).
        updates: condition on each choice by rank-1 updates of the pool's moments
            (:class:`~mfgp.acquisition.pool.GreedyUpdates`: one posterior pass for the whole
            batch) instead of a fantasy model and a new pass per choice. Default: when the
            model supports it and the objective needs only the moments. Both give the same
            batch.
        max_cost: the most the batch may cost in all.
        kinds: ``n`` labels (fidelity names) that ``fits`` reads; rows of one label must
            have one cost.
        fits: ``callable(costs, labels) -> k``: how many of a sequence of rows (their costs
            and labels, in the order chosen) fit what may still be acquired (a stopping
            condition's cap, :class:`~mfgp.loop.stopping.Cap`).
        ref_weight: ``m`` weights of the reference rows, for objectives that use them
            (``learn`` with a hurdle: the chance that a reference row is not a metal).
        obs_weight: ``n`` chances that each candidate's value enters the model (same).
        seed: seeds objectives that sample (``logei``).
        variances: ``"exact"``, ``"fast"`` or ``"auto"`` (:mod:`mfgp.fastvar`): the posterior
            variances and covariances of the pass over the whole pool; ``"auto"`` is fast for
            a model of at least 2,048 training rows and a pool of at least 2,048 candidates,
            decided once for the whole pool (without ``refine``, or for an objective whose
            ranking is led by the variance alone (``std``), also only where the model's
            low-rank cache is estimated accurate: :func:`mfgp.fastvar.resolve_variances`).
            Means are exact either way.
        refine: with fast variances, the first round is scored over the whole pool with
            them (at rank :data:`DEFAULT_POOL_RANK` unless a ``fast_variances`` block sets
            one), the best ``max(refine, q)`` rows of each fidelity (and of each cost within
            it) are kept, and the batch is chosen among them with exact variances: the chosen
            rows, their scores and their predictions are exact (``None``: the fast variances
            choose the batch too). The batch is the exact selection's when its choices come
            from the kept rows, which the development pool always gave but nothing
            guarantees (a later choice of a greedy batch, after conditioning, may rank lower
            in the first round). A pool with at most that many rows of each group is scored
            exactly at once. Objectives that read the model or the whole pool
            (``needs_model``: ``mes``, ``logei``) are not refined: their scores on a subset
            are not their scores on the pool. The default (:data:`DEFAULT_POOL_REFINE`) was
            chosen on a development pool (``benchmarks/diag_pool_refine.py``).
    """
    from mfgp.fastvar import fast_rank, resolve_variances, variances_mode
    from mfgp.predict import training_rows

    if refine is not None and (isinstance(refine, bool) or not isinstance(refine, numbers.Integral)
                               or refine < 1):  # fmt: skip
        raise InputDataError(f"refine must be None (the fast variances choose the batch) or an "
                             f"integer >= 1 (rows of each fidelity rescored exactly); got "
                             f"{refine!r}")  # fmt: skip
    if q < 1:
        raise InputDataError(f"q must be >= 1; got {q}")
    # an objective that reads the model or the whole pool (mes: the best value over the pool;
    # logei) is not refined: its scores on a subset are not its scores on the pool
    refining = refine is not None and not objective.needs_model
    # with refine, the cache only picks the rows that exact variances then decide among, so
    # "auto" needs the size rule only, unless the ranking is led by the variance alone (it
    # would be led by the rows where the cache is worst)
    checked = not refining or objective.variance_led
    # the check reads the cache that will rank: the refined first round's rank when refining
    rank = (fast_rank() or DEFAULT_POOL_RANK) if refining else None
    # a campaign that suggests again before it refits reuses the cache (conditioning extends it)
    mode = resolve_variances(variances, training_rows(model), C.shape[0],
                             model if checked else None, rank=rank, reused=True)  # fmt: skip
    args = dict(q=q, R=R, baseline=baseline, batch_size=batch_size, updates=updates,
                max_cost=max_cost, fits=fits, ref_weight=ref_weight, seed=seed)  # fmt: skip
    per_row = dict(cost=cost, is_target=is_target, groups=groups, kinds=kinds,
                   obs_weight=obs_weight)  # fmt: skip
    n = C.shape[0]
    labels = _labels(C, cost, kinds)
    keep = max(int(refine), q) if refining else 0
    if mode == "fast" and refining and (n == 0 or np.bincount(labels).max() <= keep):
        mode = "exact"  # every row would be rescored exactly: no fast pass
    if mode != "fast" or not refining:
        with variances_mode(mode):
            sel = _select_batch(model, C, objective, predictive=predictive, **args,
                                **per_row)  # fmt: skip
        if mode == "fast":
            sel.exact = np.zeros(n, dtype=bool)
        return sel
    # the fast pass: every row's first-round score (one pass, no conditioning)
    with variances_mode("fast", rank=rank):
        rough = _select_batch(model, C, objective, predictive=predictive,
                              **{**args, "q": 1, "updates": False, "max_cost": None,
                                 "fits": None}, **per_row)  # fmt: skip
    kept = _best_per_level(rough.first_scores, labels, keep)
    if kept.size == 0:  # no row is eligible
        return Selection(
            [], [], rough.mean, rough.std, rough.first_scores, np.zeros(n, dtype=bool))
    sub = {k: (None if v is None else v[torch.as_tensor(kept)] if isinstance(v, Tensor)
               else np.asarray(v)[kept]) for k, v in per_row.items()}  # fmt: skip
    sub_predictive = None if predictive is None else (
        lambda mean, var_y, rows: predictive(mean, var_y, kept[np.asarray(rows)]))
    with variances_mode("exact"):
        sel = _select_batch(model, C[torch.as_tensor(kept, device=C.device)], objective,
                            predictive=sub_predictive, **args, **sub)  # fmt: skip
    mean, std, first = rough.mean.copy(), rough.std.copy(), rough.first_scores.copy()
    mean[kept], std[kept], first[kept] = sel.mean, sel.std, sel.first_scores
    exact = np.zeros(n, dtype=bool)
    exact[kept] = True
    return Selection([int(kept[r]) for r in sel.rows], sel.scores, mean, std, first, exact)


def _labels(C: Tensor, cost, kinds) -> np.ndarray:
    """One integer per row: its (fidelity, cost, kind), the groups ``refine`` keeps rows of.

    Rows are kept per cost too, so that a cheaper row is among the kept ones when a cap
    leaves room only for it (a campaign's costs are per fidelity: the same groups).
    """
    parts = [C[:, -1].round().long().cpu().numpy()]
    if cost is not None:
        c = cost.cpu().numpy() if isinstance(cost, Tensor) else np.asarray(cost)
        parts.append(np.unique(c.astype(np.float64), return_inverse=True)[1])
    if kinds is not None:
        parts.append(np.unique(np.asarray(kinds).astype(str), return_inverse=True)[1])
    return np.unique(np.stack([p.reshape(-1) for p in parts], 1), axis=0,
                     return_inverse=True)[1].reshape(-1)


def _best_per_level(scores: np.ndarray, levels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best finite scores of each label (all of one with fewer), sorted."""
    out = []
    for v in np.unique(levels):
        at = np.flatnonzero((levels == v) & np.isfinite(scores))
        if at.size > k:
            at = at[np.argpartition(-scores[at], k - 1)[:k]]
        out.append(at)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _select_batch(model, C: Tensor, objective: Objective, *, q: int, R: Tensor | None,
                  cost: Tensor | None, is_target: Tensor | None, groups: np.ndarray | None,
                  baseline: Tensor | None, batch_size: int, predictive, updates: bool | None,
                  max_cost: float | None, kinds: np.ndarray | None, fits,
                  ref_weight: Tensor | None, obs_weight: Tensor | None,
                  seed: int) -> Selection:  # fmt: skip
    """:func:`select_batch` under the variances already chosen."""
    if q < 1:
        raise InputDataError(f"q must be >= 1; got {q}")
    device, dtype = model_device(model)
    n = C.shape[0]
    C = C.to(device=device, dtype=dtype)
    cost = torch.ones(n, dtype=dtype, device=device) if cost is None else cost.to(C)
    if bool((cost <= 0).any()):
        raise InputDataError("every cost must be > 0")
    is_target = (torch.ones(n, dtype=torch.bool, device=device) if is_target is None
                 else is_target.to(device))  # fmt: skip
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if objective.information and R is None:
        raise InputDataError(f"objective {objective.name!r} needs reference rows R")
    if objective.needs_baseline and baseline is None:
        raise InputDataError(f"objective {objective.name!r} needs the observed target rows")
    if fits is not None and kinds is None:
        raise InputDataError("fits needs kinds: one label (fidelity) per candidate")
    kinds = None if kinds is None else np.asarray(kinds)
    label_rows = ({k: torch.as_tensor(kinds == k, device=device) for k in np.unique(kinds)}
                  if fits is not None else {})  # fmt: skip
    label_cost = {k: float(cost[int(np.flatnonzero(kinds == k)[0])]) for k in label_rows}
    if updates is None:  # an additive objective is never conditioned: no factor to keep
        updates = (supports_updates(model) and not objective.needs_model
                   and not objective.additive)  # fmt: skip
    at = torch.nonzero(is_target).squeeze(-1)
    extra = {"ref_weight": ref_weight, "obs_weight": obs_weight, "seed": seed}
    eligible = torch.ones(n, dtype=torch.bool, device=device)
    rows: list[int] = []
    scores: list[float] = []
    current = model
    first = None
    mean = std = None
    tracker = None
    spent = 0.0
    for k in range(min(q, n)):
        if k == 0 or not objective.additive:  # an additive objective keeps its first scores
            if k == 0 and updates:
                tracker = GreedyUpdates(model, C, R if objective.information else None)
                moments = tracker.moments
            elif tracker is None:
                if objective.information:
                    moments = pool_moments(current, C, R, batch_size=batch_size)
                else:
                    moments = marginal_moments(current, C)
            if k == 0:
                mean, std = moments.mean.cpu().numpy(), moments.var_y.sqrt().cpu().numpy()
            if objective.from_predictive and predictive is not None:
                pred = predictive(moments.mean[at].cpu().numpy(),
                                  moments.var_y[at].cpu().numpy(), at.cpu().numpy())  # fmt: skip
                s = objective.scores_at(pred, at, cost)
            else:
                s = objective.score(moments, cost=cost, is_target=is_target, model=current, C=C,
                                    R=R, baseline=baseline, **extra)  # fmt: skip
            if k == 0:
                first = s.cpu().numpy().copy()
        allowed = eligible.clone()
        if max_cost is not None:
            allowed &= cost <= (max_cost - spent) + 1e-9 * max(1.0, abs(max_cost))
        if fits is not None:
            chosen_costs = [float(cost[r]) for r in rows]
            chosen_kinds = [str(kinds[r]) for r in rows]
            for label, of_label in label_rows.items():
                if fits(chosen_costs + [label_cost[label]], chosen_kinds + [str(label)]) \
                        <= len(rows):  # fmt: skip
                    allowed &= ~of_label
        t = torch.where(allowed, s, torch.full_like(s, -math.inf))
        best = int(torch.argmax(t))
        if not math.isfinite(float(t[best])):
            break
        rows.append(best)
        scores.append(float(t[best]))
        spent += float(cost[best])
        eligible &= torch.as_tensor(groups != groups[best], device=device)
        if k + 1 < min(q, n) and not objective.additive:
            if tracker is not None:
                tracker.condition(best)
            else:
                y = moments.mean[best].reshape(1, 1)
                current = fantasize(current, C[best : best + 1], y)
    return Selection(rows, scores, mean, std, first)
