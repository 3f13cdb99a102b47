"""mfgp: Bayesian multi-fidelity Gaussian processes for materials properties.

The user layer, loaded lazily (PEP 562): ``import mfgp`` imports neither torch nor pandas, and
changes no global setting; each name loads its module on first use. The top level holds what a
user of formulas and DataFrames calls (estimators, data, campaigns, screening, calibration,
the ready-made models); the core pieces (GP models, specs, fitting, saving a bare model,
``predict_marginals``, ``select_batch``) are imported from their modules (``mfgp.models``,
``mfgp.models.specs``, ``mfgp.fit``, ``mfgp.io``, ``mfgp.predict``, ``mfgp.acquisition``,
``mfgp.hurdle``). Their old top-level names still work and warn (``FutureWarning``) with the
module to import them from.

Example:
    >>> import mfgp
    >>> mfgp.MultiFidelityRegressor("ar1")
    MultiFidelityRegressor()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it (the user layer)
_API: dict[str, str] = {
    # estimators (DataFrames of formulas)
    "MultiFidelityRegressor": "mfgp.estimators",
    "HurdleRegressor": "mfgp.estimators",
    "MetalClassifier": "mfgp.estimators",
    "load_estimator": "mfgp.estimators",
    # data
    "MultiFidelityDataset": "mfgp.data",
    "kfold": "mfgp.data",
    "grouped_kfold": "mfgp.data",
    "element_family_folds": "mfgp.data",
    "load_bandgap_ladder": "mfgp.datasets",
    "load_formation_enthalpy": "mfgp.datasets",
    "load_metallicity": "mfgp.datasets",
    "load_expt_is_metal": "mfgp.datasets",
    "load_steels_yield": "mfgp.datasets",
    "CompositionFeaturizer": "mfgp.featurize",
    # campaigns
    "Campaign": "mfgp.loop",
    "TableOracle": "mfgp.loop",
    "Budget": "mfgp.loop",
    "Experiments": "mfgp.loop",
    "HitsFound": "mfgp.loop",
    "PredictiveChange": "mfgp.loop",
    # screening
    "screen": "mfgp.screen",
    "enumerate_compositions": "mfgp.candidates",
    "count_compositions": "mfgp.candidates",
    # calibration
    "cross_validate": "mfgp.calibration",
    "evaluate": "mfgp.calibration",
    "IsotonicRecalibration": "mfgp.calibration",
}

#: core pieces once exported at the top level: name -> the module to import them from (still
#: reachable as ``mfgp.NAME``, with a FutureWarning; not in ``__all__`` or ``dir(mfgp)``)
_CORE: dict[str, str] = {
    "AR1GP": "mfgp.models",
    "MultiTaskGP": "mfgp.models",
    "SingleFidelityGP": "mfgp.models",
    "ExplicitLatentGP": "mfgp.models",
    "FeatureMap": "mfgp.models",
    "FeatureMapModel": "mfgp.models",
    "AR1Spec": "mfgp.models.specs",
    "MultiTaskSpec": "mfgp.models.specs",
    "SingleSpec": "mfgp.models.specs",
    "LatentChainSpec": "mfgp.models.specs",
    "FitOptions": "mfgp.models.specs",
    "ClassifierSpec": "mfgp.models.specs",
    "HurdleSpec": "mfgp.hurdle",
    "predict_marginals": "mfgp.predict",
    "save_model": "mfgp.io",
    "load_model": "mfgp.io",
    "fit_gp": "mfgp.fit",
    "fit_ar1_recursive": "mfgp.fit",
    "select_batch": "mfgp.acquisition",
}

#: subpackages reachable as attributes (``mfgp.experts.load(...)``), imported on first use;
#: ``mfgp.pretrained`` is also callable: ``mfgp.pretrained("expt_gap")`` loads a fitted model
_SUBPACKAGES: tuple[str, ...] = ("experts", "pretrained")

__all__ = sorted(_API) + list(_SUBPACKAGES) + ["__version__"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"mfgp.{name}")
        globals()[name] = value
        return value
    module = _API.get(name)
    if module is None and name in _CORE:
        import warnings

        warnings.warn(
            f"mfgp.{name} is a core piece, no longer exported by mfgp's top level (the user "
            f"layer); import it from its module: from {_CORE[name]} import {name}",
            FutureWarning, stacklevel=2,
        )  # fmt: skip
        return getattr(importlib.import_module(_CORE[name]), name)
    if module is None:
        raise AttributeError(f"module 'mfgp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from mfgp.calibration import IsotonicRecalibration, cross_validate, evaluate  # noqa: F401
    from mfgp.candidates import count_compositions, enumerate_compositions  # noqa: F401
    from mfgp.data import (  # noqa: F401
        MultiFidelityDataset,
        element_family_folds,
        grouped_kfold,
        kfold,
    )
    from mfgp.datasets import (  # noqa: F401
        load_bandgap_ladder,
        load_expt_is_metal,
        load_formation_enthalpy,
        load_metallicity,
        load_steels_yield,
    )
    from mfgp.estimators import (  # noqa: F401
        HurdleRegressor,
        MetalClassifier,
        MultiFidelityRegressor,
        load_estimator,
    )
    from mfgp.featurize import CompositionFeaturizer  # noqa: F401
    from mfgp.loop import (  # noqa: F401
        Budget,
        Campaign,
        Experiments,
        HitsFound,
        PredictiveChange,
        TableOracle,
    )
    from mfgp.screen import screen  # noqa: F401
