"""Cross-validation of any predictor over a dataset's folds, with per-point predictions.

A predictor is anything with ``fit(dataset) -> self`` and ``predict(X) -> (mean, std)`` where
``X`` follows the tensor contract (the estimators of :mod:`mfgp.estimators` and the baselines
in ``benchmarks/`` do). A fresh deep copy is fitted in each fold.

Held-out values are measurements, so a predictor whose ``predict`` takes ``observation_noise``
is asked for the predictive of a new observation (``observation_noise=True``): that is what
NLPD and interval coverage of observed values must score.

A predictor with ``predictive(X) -> Predictive`` (the estimators of :mod:`mfgp.estimators`)
is asked for its whole predictive distribution, so that :meth:`CVResult.predictive` can hand
the out-of-fold distributions (e.g. the hurdle's point-mass mixtures) to a recalibration:

    >>> cv = cross_validate(HurdleRegressor(), ds, folds)  # doctest: +SKIP
    >>> y = cv.predictions["observed"]  # doctest: +SKIP
    >>> iso = IsotonicRecalibration().fit(y, cv.predictive())  # doctest: +SKIP

A predictor whose ``fit`` takes ``candidates`` is told the held-out compositions (not their
values): the transductive setting of a screening campaign, where the computed values of the
candidates are known and worth keeping in the training rows.
"""

from __future__ import annotations

import copy
import inspect
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.calibration.metrics import summary
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.data.splits import Folds
from mfgp.distributions import Predictive, concatenate
from mfgp.exceptions import InputDataError

__all__ = ["Predictor", "CVResult", "cross_validate"]


class Predictor(Protocol):
    """What :func:`cross_validate` needs of a model."""

    def fit(self, dataset: MultiFidelityDataset) -> Predictor: ...  # noqa: D102

    def predict(self, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``; a ``predict`` with a ``return_std`` flag gets ``return_std=True``."""


@dataclass
class CVResult:
    """Out-of-fold predictions and their metrics.

    Attributes:
        predictions: one row per held-out point: ``fold, composition, fidelity, observed, mean,
            std``.
        fit_seconds: wall time of each fold's fit.
        predictives: each fold's predictive distribution of its rows of ``predictions``, for a
            predictor with ``predictive(X)``; else ``None``.
    """

    predictions: pd.DataFrame
    fit_seconds: list[float]
    predictives: list[Predictive] | None = None

    def predictive(self) -> Predictive:
        """The out-of-fold predictive distribution of every row of ``predictions``, in order.

        Raises:
            InputDataError: the predictor had no ``predictive(X)`` (only mean and std are kept).
        """
        if self.predictives is None:
            raise InputDataError(
                "this cross-validation kept means and stds only (the predictor has no "
                "predictive(X)); use GaussianPredictive(cv.predictions['mean'], "
                "cv.predictions['std'])"
            )
        return concatenate(self.predictives)

    def summary(self, by: str | None = None) -> pd.DataFrame:
        """Metrics over all out-of-fold points (row ``"all"``), and per ``by`` column if given."""
        p = self.predictions
        return summary(p["observed"], p["mean"], p["std"], None if by is None else p[by])

    def per_fold(self) -> pd.DataFrame:
        """Metrics of each fold (rows) with fit time, for mean and std over folds."""
        rows = []
        for k, part in self.predictions.groupby("fold"):
            s = summary(part["observed"], part["mean"], part["std"]).loc["all"].to_dict()
            rows.append({"fold": k, **s, "fit_seconds": self.fit_seconds[int(k)]})
        return pd.DataFrame(rows).set_index("fold")


def cross_validate(
    model: Predictor,
    dataset: MultiFidelityDataset,
    folds: Folds,
    *,
    hold_out_lower: bool = False,
    progress: bool = True,
) -> CVResult:
    """Fit a copy of ``model`` in each fold and predict the held-out target values.

    Args:
        model: an unfitted predictor (copied per fold, never fitted in place).
        dataset: the full dataset.
        folds: from :func:`mfgp.data.kfold` or :func:`mfgp.data.grouped_kfold`.
        hold_out_lower: also hide the lower-fidelity rows of held-out compositions.
        progress: show a progress bar.
    """
    parts, seconds, predictives = [], [], []
    splits = list(folds.split(dataset, hold_out_lower=hold_out_lower))
    for k, (train, test) in enumerate(progress_bar(splits, progress=progress, desc="folds")):
        fold_model = copy.deepcopy(model)
        t0 = time.perf_counter()
        if "candidates" in inspect.signature(fold_model.fit).parameters:
            held = dataset.frame["composition"].iloc[test].tolist()
            fold_model.fit(dataset.subset(train), candidates=held)
        else:
            fold_model.fit(dataset.subset(train))
        seconds.append(time.perf_counter() - t0)
        logger.info("fold %d of %d: fitted on %d rows in %.1f s", k + 1, len(splits), len(train),
                    seconds[-1])  # fmt: skip
        X, Y, _ = dataset.tensors(test)
        if callable(getattr(fold_model, "predictive", None)):
            pred = fold_model.predictive(X)  # of a new measurement
            predictives.append(pred)
            mean, std = pred.mean(), pred.std()
        else:
            params = inspect.signature(fold_model.predict).parameters
            kwargs = {"return_std": True} if "return_std" in params else {}
            if "observation_noise" in params:
                kwargs["observation_noise"] = True  # a new measurement
            mean, std = fold_model.predict(X, **kwargs)
        f = dataset.frame.iloc[test]
        parts.append(
            pd.DataFrame(
                {
                    "fold": k,
                    "composition": f["composition"].to_numpy(),
                    "fidelity": f["fidelity"].to_numpy(),
                    "observed": Y[:, 0].cpu().numpy(),
                    "mean": np.asarray(mean, dtype=np.float64).reshape(-1),
                    "std": np.asarray(std, dtype=np.float64).reshape(-1),
                }
            )
        )
    kept = predictives if len(predictives) == len(parts) else None
    return CVResult(pd.concat(parts, ignore_index=True), seconds, kept)
