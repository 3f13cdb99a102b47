"""Recalibration of a regressor's predictive on its own cross-validation, and its JSON.

:class:`_Recalibrated` is the mixin that gives :class:`~mfgp.estimators.MultiFidelityRegressor`
and :class:`~mfgp.estimators.HurdleRegressor` their ``recalibrate``; the functions beside it
store the map's cross-validation (its out-of-fold predictive distributions) in a saved file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import Tensor

from mfgp._progress import logger
from mfgp.distributions import (
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    SoftplusNormalPredictive,
)
from mfgp.estimators._base import _check_positive_int
from mfgp.estimators._serialization import Parts


class _Recalibrated:
    """Recalibration of a regressor's predictive on its own cross-validation (a mixin).

    :meth:`recalibrate` fits an :class:`~mfgp.calibration.IsotonicRecalibration` on the
    out-of-fold predictive distributions of the target values and keeps it as
    ``recalibration_``; the estimator's predictive distribution of a new target measurement is
    mapped through it from then on, ``save`` stores it and a new ``fit`` drops it.
    """

    recalibration_ = None

    def recalibrate(self, folds=5, *, seed: int = 0, grouped: bool = False,
                    progress: bool | None = None):  # fmt: skip
        """Recalibrate the predictive distribution on this estimator's own cross-validation.

        Each fold refits an unfitted copy of the estimator (the same parameters) on the data
        it was fitted on less the fold's target compositions (their lower-fidelity rows stay:
        a new composition usually has its DFT value) and predicts the held-out target values;
        the isotonic map of those out-of-fold predictives (:class:`~mfgp.calibration.
        IsotonicRecalibration`, for a hurdle both the gap's distribution and ``P(metal)``)
        then repairs the shape of every later predictive distribution: intervals, quantiles,
        the log score. This estimator's own fit is left as it is. It costs one fit of the
        estimator per fold.

        Args:
            folds: the number of folds (seeded K-fold over the target compositions) or the
                folds themselves (:func:`mfgp.data.kfold`, :func:`mfgp.data.grouped_kfold`).
            seed: the folds' seed (when ``folds`` is a number).
            grouped: fold by chemical system (:func:`mfgp.data.grouped_kfold`) when ``folds``
                is a number: intervals for compositions in unseen chemical systems.
            progress: a bar over the folds (default: the estimator's ``progress``).

        Returns:
            ``self``, with ``recalibration_`` (the map) and ``recalibration_cv_`` (the
            :class:`~mfgp.calibration.CVResult` it was fitted on).

        Raises:
            InputDataError: too few target compositions for ``folds``.

        Example:
            >>> gaps = HurdleRegressor().fit(df).recalibrate(5)  # doctest: +SKIP
            >>> gaps.predictive(["GaAs"]).interval(0.9)  # recalibrated  # doctest: +SKIP
        """
        self._check_fitted()
        from sklearn.base import clone

        from mfgp.calibration import IsotonicRecalibration, cross_validate
        from mfgp.data.splits import Folds, grouped_kfold, kfold

        ds = self.dataset_
        if not isinstance(folds, Folds):
            _check_positive_int("folds", folds)
            folds = (grouped_kfold if grouped else kfold)(ds, folds, seed=seed)
        show = self.progress if progress is None else progress
        template = clone(self)
        if not show:
            template.set_params(progress=False)
        cv = cross_validate(template, ds, folds, progress=show)
        iso = IsotonicRecalibration().fit(cv.predictions["observed"].to_numpy(), cv.predictive())
        self.recalibration_, self.recalibration_cv_ = iso, cv
        logger.info("recalibrated on %d out-of-fold target values (%d folds)",
                    len(cv.predictions), len(cv.fit_seconds))  # fmt: skip
        return self

    def _recalibrated(self, pred, where: np.ndarray | None = None):
        """``pred`` mapped by ``recalibration_``, at the rows ``where`` is true (default: all)."""
        if self.recalibration_ is None or (where is not None and not np.any(where)):
            return pred
        if where is not None and np.all(where):
            where = None
        return self.recalibration_.transform(pred, where=where)

    def _at_target(self, X, fidelity: str | None) -> np.ndarray | None:
        """Which asked rows are of the target fidelity (``None``: all of them).

        Formulas are asked at one fidelity; raw tensors say theirs in the last column (a row
        of a lower fidelity there is not a target measurement, whatever ``fidelity`` says).
        """
        fids = self.dataset_.fidelities
        if isinstance(X, Tensor):
            return (X[..., -1].round().long() == len(fids) - 1).reshape(-1).cpu().numpy()
        return None if fidelity is None or fidelity == fids[-1] else np.zeros(0, dtype=bool)

    def _recalibration_parts(self, into: Parts) -> None:
        if self.recalibration_ is not None:
            into[2]["recalibration"] = self.recalibration_.to_dict()
            cv = getattr(self, "recalibration_cv_", None)
            if cv is not None:
                into[2]["recalibration_cv"] = _cv_to_json(cv)

    def _recalibration_from_parts(self, parts: Parts) -> None:
        from mfgp.calibration import IsotonicRecalibration

        saved = parts[2].get("recalibration")
        self.recalibration_ = None if saved is None else IsotonicRecalibration.from_dict(saved)
        cv = parts[2].get("recalibration_cv")
        if cv is not None:
            self.recalibration_cv_ = _cv_from_json(cv)


def _predictive_to_json(pred) -> dict | None:
    """A predictive of the out-of-fold rows as JSON (``None``: a kind not stored)."""
    kinds = {GaussianPredictive: ("gaussian", "_mean", "_std"),
             LogNormalPredictive: ("lognormal", "mu", "sigma"),
             SoftplusNormalPredictive: ("softplus", "mu", "sigma")}  # fmt: skip
    if isinstance(pred, PointMassMixture):
        inner = _predictive_to_json(pred.continuous)
        return None if inner is None else {"kind": "mixture", "weight": pred.weight.tolist(),
                                           "atom": pred.atom, "continuous": inner}  # fmt: skip
    if type(pred) not in kinds:
        return None
    kind, a, b = kinds[type(pred)]
    return {"kind": kind, "a": getattr(pred, a).tolist(), "b": getattr(pred, b).tolist()}


def _predictive_from_json(d: dict):
    if d["kind"] == "mixture":
        return PointMassMixture(np.asarray(d["weight"]), _predictive_from_json(d["continuous"]),
                                d["atom"])  # fmt: skip
    cls = {"gaussian": GaussianPredictive, "lognormal": LogNormalPredictive,
           "softplus": SoftplusNormalPredictive}[d["kind"]]  # fmt: skip
    return cls(np.asarray(d["a"]), np.asarray(d["b"]))


def _cv_to_json(cv) -> dict:
    """``recalibration_cv_`` (a :class:`~mfgp.calibration.CVResult`) as JSON, for ``save``."""
    p = cv.predictions
    preds = None
    if cv.predictives is not None:
        preds = [_predictive_to_json(q) for q in cv.predictives]
        preds = None if any(q is None for q in preds) else preds
    return {"columns": list(p.columns),
            "data": {c: p[c].tolist() for c in p.columns},
            "fit_seconds": [float(t) for t in cv.fit_seconds], "predictives": preds}  # fmt: skip


def _cv_from_json(d: dict):
    from mfgp.calibration.cv import CVResult

    frame = pd.DataFrame({c: d["data"][c] for c in d["columns"]}, columns=d["columns"])
    preds = d.get("predictives")
    return CVResult(frame, list(d["fit_seconds"]),
                    None if preds is None else [_predictive_from_json(q) for q in preds])
