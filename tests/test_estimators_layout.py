"""The layout of issue #34: one file per estimator, the distributions in their own module.

``mfgp.estimators`` is a package whose public modules each define one estimator, and which still
exports every name the single module did; the predictive distributions live in
``mfgp.distributions`` (``mfgp.calibration.predictive`` re-exports the same objects); one
helper turns an estimator into bytes and back, for the campaign's checkpoints and the screen's
Dask workers alike.
"""

import ast
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import mfgp
from mfgp.exceptions import SerializationError
from tests.ladders import small_ladder
from tests.test_architecture import import_graph

ROOT = Path(mfgp.__file__).parent
#: the estimator module -> the one estimator it defines
ESTIMATOR_MODULES = {"regressor": "MultiFidelityRegressor", "classifier": "MetalClassifier",
                     "hurdle": "HurdleRegressor"}  # fmt: skip
#: every name the single-module mfgp.estimators defined at its top level
FORMER_NAMES = ["ARCHITECTURES", "HurdleRegressor", "MetalClassifier", "MultiFidelityRegressor",
                "load_estimator", "zero_gap_labels", "Parts", "_FormulaEstimator",
                "_Recalibrated", "_check_positive_int", "_dtype_name", "_interval_level",
                "_load_device", "_metal_probability", "_nest", "_torch_dtype",
                "_unnest"]  # fmt: skip


def test_estimators_is_a_package_with_one_estimator_per_module():
    import mfgp.estimators as est
    from mfgp.estimators._base import _FormulaEstimator

    assert hasattr(est, "__path__"), "mfgp.estimators is still a single module"
    for name, estimator in ESTIMATOR_MODULES.items():
        module = importlib.import_module(f"mfgp.estimators.{name}")
        defined = [c for _, c in inspect.getmembers(module, inspect.isclass)
                   if issubclass(c, _FormulaEstimator) and c.__module__ == module.__name__]  # fmt: skip
        assert [c.__name__ for c in defined] == [estimator], (name, defined)
        assert getattr(est, estimator) is defined[0]


def test_every_former_name_still_imports_from_mfgp_estimators():
    import mfgp.estimators as est

    missing = [name for name in FORMER_NAMES if not hasattr(est, name)]
    assert not missing, missing
    assert set(est.__all__) >= {"ARCHITECTURES", "HurdleRegressor", "MetalClassifier",
                                "MultiFidelityRegressor", "load_estimator", "zero_gap_labels"}
    for name in ("MultiFidelityRegressor", "HurdleRegressor", "MetalClassifier",
                 "load_estimator"):  # the user layer, from the top level too
        assert getattr(mfgp, name) is getattr(est, name)


def test_saved_kinds_name_the_same_classes():
    """A file names its estimator by class name: every name an old file can hold still loads."""
    from mfgp.estimators._serialization import _KINDS, _estimator_class

    assert set(_KINDS) == set(ESTIMATOR_MODULES.values())
    for kind in _KINDS:
        assert _estimator_class(kind, "f").__name__ == kind
    with pytest.raises(SerializationError, match="f holds 'Nope', not one of"):
        _estimator_class("Nope", "f")


def test_the_distributions_have_their_own_module():
    import mfgp.calibration as calibration
    import mfgp.calibration.predictive as former
    import mfgp.distributions as distributions

    assert former.PointMassMixture is distributions.PointMassMixture
    assert former.__all__ == distributions.__all__
    for name in distributions.__all__:
        assert getattr(former, name) is getattr(distributions, name), name
        assert getattr(calibration, name) is getattr(distributions, name), name
    # a layer everything hands on: it imports nothing of mfgp but the exceptions
    assert import_graph()["mfgp.distributions"] <= {"mfgp.exceptions"}
    assert "mfgp.calibration" not in import_graph()["mfgp.hurdle"]


def test_the_two_prefix_helpers_say_what_they_do():
    from mfgp.estimators._serialization import _select_prefixed
    from mfgp.io import _strip_prefix

    entries = {"state.a": 1, "fmap.b": 2, "train.X": 3}
    assert _select_prefixed(entries, ("state.", "fmap.")) == {"state.a": 1, "fmap.b": 2}
    assert _strip_prefix(entries, "state.") == {"a": 1}


def test_campaign_and_screen_share_the_bytes_helper():
    """Neither writes its own temporary file: both call the one round trip."""
    for path in (ROOT / "loop" / "campaign.py", ROOT / "screen.py"):
        tree = ast.parse(path.read_text())
        called = {n.func.id for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}  # fmt: skip
        assert {"estimator_to_bytes", "estimator_from_bytes"} <= called, path.name
        assert "tempfile" not in path.read_text(), path.name


@pytest.fixture(scope="module")
def regressor():
    from mfgp.estimators import MultiFidelityRegressor

    ladder = small_ladder(30, seed=1, also=["Si", "GaAs"])
    return MultiFidelityRegressor("ar1", max_rows_per_fidelity=40, max_fit_points=60,
                                  max_iter=3, progress=False).fit(ladder)  # fmt: skip


def test_an_estimator_round_trips_through_bytes(regressor):
    from mfgp.estimators import (
        HurdleRegressor,
        MultiFidelityRegressor,
        estimator_from_bytes,
        estimator_to_bytes,
    )

    blob = estimator_to_bytes(regressor)
    assert isinstance(blob, bytes) and blob[:2] == b"PK"  # the saved file: a zip
    probes = ["Si", "GaAs", "NaCl"]
    mean, std = regressor.predict(probes, True)
    for back in (estimator_from_bytes(blob), estimator_from_bytes(blob, MultiFidelityRegressor)):
        assert type(back) is MultiFidelityRegressor
        assert back.get_params() == regressor.get_params()
        again = back.predict(probes, True)
        assert np.array_equal(again[0], mean) and np.array_equal(again[1], std)
    with pytest.raises(SerializationError, match="holds a 'MultiFidelityRegressor', not a Hurdle"):
        estimator_from_bytes(blob, HurdleRegressor)
    with pytest.raises(SerializationError):
        estimator_from_bytes(blob[: len(blob) // 2])


def test_the_top_level_is_the_user_layer():
    """``import mfgp`` lists the user layer; a core piece is imported from its module, and its
    old top-level name still works with a FutureWarning that names that module."""
    import warnings

    user = {"MultiFidelityRegressor", "HurdleRegressor", "Campaign", "screen",
            "load_bandgap_ladder", "cross_validate", "pretrained"}  # fmt: skip
    core = {"AR1GP": "mfgp.models", "AR1Spec": "mfgp.models.specs", "fit_gp": "mfgp.fit",
            "save_model": "mfgp.io", "predict_marginals": "mfgp.predict",
            "select_batch": "mfgp.acquisition"}  # fmt: skip
    assert user <= set(mfgp.__all__) and user <= set(dir(mfgp))
    assert not set(core) & set(mfgp.__all__) and not set(core) & set(dir(mfgp))
    for name, module in core.items():
        with pytest.warns(FutureWarning, match=f"from {module} import {name}"):
            value = getattr(mfgp, name)
        assert value is getattr(importlib.import_module(module), name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mfgp.MultiFidelityRegressor is mfgp.estimators.MultiFidelityRegressor
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        mfgp.nothing_here  # noqa: B018
