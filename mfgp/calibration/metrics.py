"""Proper scores and calibration metrics for predictive distributions.

Every metric takes the observations ``y`` and a :class:`~mfgp.distributions.Predictive`
(Gaussian, samples, or a mixture with a point mass). :func:`summary` (Gaussian ``mean``/``std``),
:func:`summary_samples` and :func:`summary_mixture` return one tidy DataFrame, overall and per
group (e.g. per fidelity).

Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=2000)
    >>> df = summary(y, np.zeros(2000), np.ones(2000))
    >>> bool(abs(df.loc["all", "coverage_90"] - 0.9) < 0.03)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mfgp.distributions import (
    GaussianPredictive,
    PointMassMixture,
    Predictive,
    SamplePredictive,
    _arr,
)
from mfgp.exceptions import ShapeError

__all__ = [
    "COVERAGE_LEVELS",
    "mae",
    "rmse",
    "r2",
    "nlpd",
    "crps",
    "coverage",
    "miscalibration_area",
    "sharpness",
    "ence",
    "evaluate",
    "summary",
    "summary_samples",
    "summary_mixture",
]

COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.68, 0.9, 0.95)


def _check(y: np.ndarray, pred: Predictive) -> np.ndarray:
    y = _arr(y)
    if y.size != pred.n:
        raise ShapeError(f"y has {y.size} points but the prediction has {pred.n}")
    return y


def mae(y: object, pred: Predictive) -> float:
    """Mean absolute error of the predictive mean."""
    y = _check(y, pred)
    return float(np.mean(np.abs(y - pred.mean())))


def rmse(y: object, pred: Predictive) -> float:
    """Root mean squared error of the predictive mean."""
    y = _check(y, pred)
    return float(np.sqrt(np.mean((y - pred.mean()) ** 2)))


def r2(y: object, pred: Predictive) -> float:
    """Coefficient of determination of the predictive mean."""
    y = _check(y, pred)
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred.mean()) ** 2) / ss) if ss > 0 else float("nan")


def nlpd(y: object, pred: Predictive) -> float:
    """Mean negative log predictive density (log probability on atoms); lower is better."""
    y = _check(y, pred)
    return float(-np.mean(pred.log_score(y)))


def crps(y: object, pred: Predictive) -> float:
    """Mean continuous ranked probability score, in the units of ``y``; lower is better."""
    y = _check(y, pred)
    return float(np.mean(pred.crps(y)))


def coverage(y: object, pred: Predictive, level: float) -> float:
    """Fraction of observations inside the central ``level`` interval.

    On an atom (e.g. a zero gap) an observation counts by the share of the atom's mass inside
    the interval (:meth:`~mfgp.distributions.Predictive.covered`).
    """
    y = _check(y, pred)
    return float(pred.covered(y, np.array([level]))[0].mean())


def miscalibration_area(y: object, pred: Predictive, n_levels: int = 99) -> float:
    """Mean |observed - nominal| coverage of central intervals over levels 0.01..0.99.

    0 is perfect calibration; 0.5 is the worst possible.
    """
    y = _check(y, pred)
    levels = np.linspace(0.01, 0.99, n_levels)
    observed = pred.covered(y, levels).mean(1)
    return float(np.mean(np.abs(observed - levels)))


def sharpness(pred: Predictive) -> float:
    """Root mean predictive variance (smaller is sharper; only meaningful when calibrated)."""
    return float(np.sqrt(np.mean(pred.std() ** 2)))


def ence(y: object, pred: Predictive, n_bins: int = 10) -> float:
    """Expected normalised calibration error (Levi et al. 2022).

    Points are binned by predicted std (equal counts); in each bin the root mean variance is
    compared with the RMSE: ``mean_b |RMV_b - RMSE_b| / RMV_b``.
    """
    y = _check(y, pred)
    std = pred.std()
    order = np.argsort(std, kind="stable")
    vals = []
    for b in np.array_split(order, min(n_bins, max(1, y.size))):
        if b.size == 0:
            continue
        rmv = np.sqrt(np.mean(std[b] ** 2))
        err = np.sqrt(np.mean((y[b] - pred.mean()[b]) ** 2))
        if rmv > 0:
            vals.append(abs(rmv - err) / rmv)
    return float(np.mean(vals)) if vals else float("nan")


def evaluate(y: object, pred: Predictive) -> dict[str, float]:
    """All metrics for one set of predictions, as a flat dict."""
    y = _check(y, pred)
    out = {
        "n": float(y.size),
        "mae": mae(y, pred),
        "rmse": rmse(y, pred),
        "r2": r2(y, pred),
        "nlpd": nlpd(y, pred),
        "crps": crps(y, pred),
    }
    for level in COVERAGE_LEVELS:
        out[f"coverage_{round(level * 100)}"] = coverage(y, pred, level)
    out["miscalibration_area"] = miscalibration_area(y, pred)
    out["sharpness"] = sharpness(pred)
    out["ence"] = ence(y, pred)
    return out


def _subset(pred: Predictive, idx: np.ndarray) -> Predictive:
    try:
        return pred.subset(idx)
    except NotImplementedError:
        raise TypeError(
            f"cannot take a subset of a {type(pred).__name__}; give it a subset(idx) method"
        ) from None


def _summary(y: object, pred: Predictive, groups: Sequence[object] | None) -> pd.DataFrame:
    y = _check(y, pred)
    rows = {"all": evaluate(y, pred)}
    if groups is not None:
        g = np.asarray(list(groups), dtype=object)
        if g.size != y.size:
            raise ShapeError(f"groups has {g.size} entries but y has {y.size}")
        for name in dict.fromkeys(g.tolist()):
            idx = np.flatnonzero(g == name)
            rows[str(name)] = evaluate(y[idx], _subset(pred, idx))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df["n"] = df["n"].astype(int)
    df.index.name = "group"
    return df


def summary(
    y: object, mean: object, std: object, groups: Sequence[object] | None = None
) -> pd.DataFrame:
    """Metrics of Gaussian predictions, overall (row ``"all"``) and per group.

    Args:
        y: observations, shape ``n``.
        mean: predictive means, shape ``n``.
        std: predictive standard deviations, shape ``n`` (> 0).
        groups: optional label per point (e.g. the fidelity); adds one row per label.

    Returns:
        A DataFrame indexed by group with columns ``n, mae, rmse, r2, nlpd, crps,
        coverage_50, coverage_68, coverage_90, coverage_95, miscalibration_area, sharpness,
        ence``.
    """
    return _summary(y, GaussianPredictive(mean, std), groups)


def summary_samples(
    y: object, samples: object, groups: Sequence[object] | None = None
) -> pd.DataFrame:
    """:func:`summary` for predictive draws, ``n_samples x n``."""
    return _summary(y, SamplePredictive(samples), groups)


def summary_mixture(
    y: object,
    weight: object,
    continuous: Predictive,
    atom: float = 0.0,
    groups: Sequence[object] | None = None,
) -> pd.DataFrame:
    """:func:`summary` for a mixture ``weight * delta(atom) + (1 - weight) * continuous``."""
    return _summary(y, PointMassMixture(weight, continuous, atom), groups)
