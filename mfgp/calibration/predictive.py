"""The predictive distributions' former home: they are in :mod:`mfgp.distributions` now.

Kept so that ``from mfgp.calibration.predictive import PointMassMixture`` (and the other names)
still works: each name here is the object of :mod:`mfgp.distributions`, not a copy.
"""

from mfgp.distributions import (  # noqa: F401  (_arr: the private helper old code imported)
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    Predictive,
    SamplePredictive,
    SoftplusNormalPredictive,
    __all__,
    _arr,
    as_predictive,
    concatenate,
    softplus,
    softplus_inverse,
)
