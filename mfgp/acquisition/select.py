"""Choosing a batch of observations from a pool: greedy, on fantasies, diverse by composition."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mfgp.acquisition.objectives import Objective
from mfgp.acquisition.pool import (
    GreedyUpdates,
    marginal_moments,
    pool_moments,
    supports_updates,
)
from mfgp.exceptions import InputDataError, ShapeError
from mfgp.predict import model_device

__all__ = ["Selection", "fantasize", "select_batch"]


@dataclass
class Selection:
    """A chosen batch: row indices into the candidates, with their scores and predictions.

    Attributes:
        rows: indices of the chosen candidates, in the order chosen.
        scores: each one's objective value when it was chosen (after conditioning on the
            ones before it on their predicted means).
        mean, std: the predictive of a new observation of each (before any conditioning).
        first_scores: every candidate's score in the first round (``-inf``: not eligible).
    """

    rows: list[int]
    scores: list[float]
    mean: np.ndarray
    std: np.ndarray
    first_scores: np.ndarray


def fantasize(model, X: Tensor, Y: Tensor, Yvar: Tensor | None = None):
    """The model conditioned on ``(X, Y)`` with its hyperparameters (a block update if it can)."""
    update = getattr(model, "conditioned_on", None)
    if update is None:
        return model.condition_on_observations(X, Y)
    try:
        return update(X, Y, Yvar)
    except ShapeError:
        if Yvar is not None:
            raise
    # a model with known noise: a fantasy at the mean known noise of the training rows
    noise = model.likelihood.noise_covar.noise.mean().reshape(1, 1).expand_as(Y)
    return update(X, Y, noise.to(Y))


def select_batch(model, C: Tensor, objective: Objective, *, q: int = 1,
                 R: Tensor | None = None, cost: Tensor | None = None,
                 is_target: Tensor | None = None, groups: np.ndarray | None = None,
                 baseline: Tensor | None = None, batch_size: int = 512,
                 probability=None, updates: bool | None = None) -> Selection:  # fmt: skip
    """Choose ``q`` candidate rows greedily: score, take the best, condition on its fantasy, repeat.

    The fantasy of a chosen row is its predicted mean (the variance-based objectives do not
    depend on it; for the others it is the kriging believer), so the next choice sees the
    information the first brings and a batch is spread out. Once a composition is chosen, its
    other rows are no longer eligible (``groups``: one id per candidate; ``None``: every row
    its own group).

    Args:
        model: a BoTorch model on contract inputs.
        C: ``n x (d + 1)`` candidate rows, each at the fidelity it would be observed at.
        objective: an :class:`~mfgp.acquisition.objectives.Objective`.
        q: batch size.
        R: reference rows at the target fidelity (information objectives).
        cost: ``n`` costs (default 1).
        is_target: ``n`` booleans: rows at the target fidelity (default: all).
        groups: ``n`` composition ids (no two rows of one id in a batch).
        baseline: observed target rows (``logei``).
        batch_size: candidates per joint posterior call.
        probability: optional ``callable(rows) -> P`` replacing a window objective's Gaussian
            probabilities (e.g. a hurdle model's point-mass mixture); it is used for the first
            choice and, the expected hits of a batch being additive, for all of them.
        updates: condition on each choice by rank-1 updates of the pool's moments
            (:class:`~mfgp.acquisition.pool.GreedyUpdates`: one posterior pass for the whole
            batch) instead of a fantasy model and a new pass per choice. Default: when the
            model supports it and the objective needs only the moments. Both give the same
            batch.
    """
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
    if updates is None:
        updates = supports_updates(model) and not objective.needs_model
    eligible = torch.ones(n, dtype=torch.bool, device=device)
    rows: list[int] = []
    scores: list[float] = []
    current = model
    first = None
    mean = std = None
    tracker = None
    for k in range(min(q, n)):
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
        if probability is not None and objective.name == "window":
            s = torch.as_tensor(probability(), dtype=dtype, device=device)
            s = torch.where(is_target, s, torch.full_like(s, -math.inf))
        else:
            s = objective.score(moments, cost=cost, is_target=is_target, model=current, C=C,
                                R=R, baseline=baseline)  # fmt: skip
        if k == 0:
            first = s.cpu().numpy().copy()
        s = torch.where(eligible, s, torch.full_like(s, -math.inf))
        best = int(torch.argmax(s))
        if not math.isfinite(float(s[best])):
            break
        rows.append(best)
        scores.append(float(s[best]))
        eligible &= torch.as_tensor(groups != groups[best], device=device)
        if k + 1 < min(q, n):
            if tracker is not None:
                tracker.condition(best)
            else:
                y = moments.mean[best].reshape(1, 1)
                current = fantasize(current, C[best : best + 1], y)
    return Selection(rows, scores, mean, std, first)
