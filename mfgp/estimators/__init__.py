"""The notebook facade: scikit-learn-style estimators on DataFrames of formulas.

The facade holds no modelling logic: it builds a :class:`~mfgp.data.MultiFidelityDataset`,
optionally pretrains a frozen deep feature extractor (:mod:`mfgp.nn`), builds one of the models
of :mod:`mfgp.models` and fits it with :func:`mfgp.fit.fit_gp`.

One module per estimator: :mod:`.regressor` (:class:`MultiFidelityRegressor`),
:mod:`.classifier` (:class:`MetalClassifier`) and :mod:`.hurdle` (:class:`HurdleRegressor`);
what they share is in ``_base`` (the base class, the checks of options), ``_recalibration``
(``recalibrate``) and ``_serialization`` (``save`` / ``load``, :func:`load_estimator`, and an
estimator as bytes: :func:`estimator_to_bytes`, :func:`estimator_from_bytes`).

Example:
    >>> from mfgp.datasets import load_bandgap_ladder
    >>> df = load_bandgap_ladder(["pbe", "expt"])
    >>> reg = MultiFidelityRegressor("ar1").fit(df)  # doctest: +SKIP
    >>> mean, std = reg.predict(["Si", "GaAs"])  # doctest: +SKIP
"""

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
# every name of the former single-module mfgp.estimators stays importable from here, the
# private helpers too (the CLI and the screen import _interval_level)
from mfgp.estimators._base import (  # noqa: F401
    _check_positive_int,
    _dtype_name,
    _FormulaEstimator,
    _interval_level,
    _torch_dtype,
)
from mfgp.estimators._recalibration import _Recalibrated  # noqa: F401
from mfgp.estimators._serialization import (  # noqa: F401
    Parts,
    _load_device,
    _nest,
    _select_prefixed,
    _unnest,
    estimator_from_bytes,
    estimator_to_bytes,
    load_estimator,
)
from mfgp.estimators.classifier import (  # noqa: F401
    MetalClassifier,
    _metal_probability,
    zero_gap_labels,
)
from mfgp.estimators.hurdle import HurdleRegressor
from mfgp.estimators.regressor import ARCHITECTURES, MultiFidelityRegressor

__all__ = [
    "zero_gap_labels",
    "ARCHITECTURES",
    "HurdleRegressor",
    "MetalClassifier",
    "MultiFidelityRegressor",
    "estimator_from_bytes",
    "estimator_to_bytes",
    "load_estimator",
]
