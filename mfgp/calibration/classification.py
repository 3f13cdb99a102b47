"""Scores and calibration of predicted probabilities (metal vs non-metal).

All take labels in {0, 1} and predicted probabilities of the label 1; ROC-AUC and log loss come
from scikit-learn, the Brier score and the reliability curve are computed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mfgp.exceptions import InputDataError, ShapeError

__all__ = ["brier_score", "classification_scores", "reliability_curve"]


def _check(y: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ShapeError(f"{y.size} labels but {p.size} probabilities")
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise InputDataError(f"labels must be 0 or 1; row {bad[0]} is {float(y[bad[0]])!r}")
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        raise InputDataError(
            f"probabilities must lie in [0, 1]; row {bad[0]} is {float(p[bad[0]])!r}"
        )
    return y, p


def brier_score(y: object, p: object) -> float:
    """Mean squared difference between the label and its predicted probability (lower is better)."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2))


def classification_scores(y: object, p: object, threshold: float = 0.5) -> dict[str, float]:
    """ROC-AUC, accuracy (at ``threshold``), Brier score, log loss and the base rate."""
    from sklearn.metrics import log_loss, roc_auc_score

    y, p = _check(y, p)
    both = 0 < y.sum() < y.size
    return {
        "n": float(y.size),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "accuracy": float(np.mean((p >= threshold) == (y == 1))),
        "brier": brier_score(y, p),
        "log_loss": float(log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])),
        "base_rate": float(y.mean()),
    }


def reliability_curve(y: object, p: object, n_bins: int = 10) -> pd.DataFrame:
    """Observed frequency of label 1 per bin of predicted probability (equal-width bins).

    Returns:
        One row per non-empty bin: ``bin_lo``, ``bin_hi``, ``mean_predicted``,
        ``observed_frequency``, ``count``. A calibrated classifier has the two means equal.
    """
    y, p = _check(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = which == b
        if m.any():
            rows.append(
                {
                    "bin_lo": edges[b],
                    "bin_hi": edges[b + 1],
                    "mean_predicted": float(p[m].mean()),
                    "observed_frequency": float(y[m].mean()),
                    "count": int(m.sum()),
                }
            )
    return pd.DataFrame(rows)
