"""Calibrated uncertainty: predictive distributions, proper scores, recalibration, CV, plots.

``mfgp.calibration.arviz`` and ``mfgp.calibration.plots`` import ArviZ and matplotlib lazily.
"""

from mfgp.calibration.classification import (
    brier_score,
    classification_scores,
    reliability_curve,
)
from mfgp.calibration.cv import CVResult, cross_validate
from mfgp.calibration.metrics import evaluate, summary, summary_mixture, summary_samples
from mfgp.calibration.recalibrate import (
    IsotonicRecalibration,
    RecalibratedPredictive,
    VarianceScaling,
)
from mfgp.distributions import (
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    Predictive,
    SamplePredictive,
    SoftplusNormalPredictive,
    as_predictive,
    concatenate,
    softplus,
    softplus_inverse,
)

__all__ = [
    "CVResult",
    "GaussianPredictive",
    "IsotonicRecalibration",
    "RecalibratedPredictive",
    "LogNormalPredictive",
    "PointMassMixture",
    "Predictive",
    "SamplePredictive",
    "SoftplusNormalPredictive",
    "VarianceScaling",
    "as_predictive",
    "brier_score",
    "classification_scores",
    "concatenate",
    "cross_validate",
    "evaluate",
    "reliability_curve",
    "softplus",
    "softplus_inverse",
    "summary",
    "summary_mixture",
    "summary_samples",
]
