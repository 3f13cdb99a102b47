"""The notebook facade follows scikit-learn's estimator contract."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline

import mfgp
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor
from tests.ladders import small_ladder

FAST = dict(max_rows_per_fidelity=60, max_fit_points=150, max_iter=8, progress=False)


@pytest.fixture(scope="module")
def ladder():
    return small_ladder(90, seed=6)


@pytest.mark.parametrize("cls", [MultiFidelityRegressor, HurdleRegressor, MetalClassifier])
def test_params_clone_and_repr(cls):
    est = cls(seed=3)
    params = est.get_params()
    assert params["seed"] == 3
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    est.set_params(seed=4)
    assert est.seed == 4
    assert repr(est).startswith(cls.__name__) and "seed=4" in repr(est)


def test_predict_returns_the_mean_unless_asked(ladder):
    reg = MultiFidelityRegressor("ar1", **FAST).fit(ladder)
    mean = reg.predict(["NaCl", "Si"])
    assert isinstance(mean, np.ndarray) and mean.shape == (2,)
    m, s = reg.predict(["NaCl", "Si"], return_std=True)
    assert np.array_equal(m, mean) and (s > 0).all()
    assert -1.0 < reg.score(ladder) <= 1.0


def test_pipeline_cross_val_score_and_grid_search(ladder):
    pipe = Pipeline([("gp", MultiFidelityRegressor("ar1", **FAST))])
    pipe.fit(ladder)
    assert pipe.predict(["NaCl"]).shape == (1,)
    scores = cross_val_score(MultiFidelityRegressor("single", **FAST), ladder,
                             cv=KFold(3, shuffle=True, random_state=0))  # fmt: skip
    assert scores.shape == (3,) and np.isfinite(scores).all()
    search = GridSearchCV(MultiFidelityRegressor("single", **FAST),
                          {"max_iter": [3, 8]}, cv=KFold(2, shuffle=True, random_state=0))
    search.fit(ladder)
    assert search.best_params_["max_iter"] in (3, 8)


def test_import_mfgp_is_lazy_and_curated():
    code = ("import sys, mfgp; assert 'torch' not in sys.modules, 'torch imported';"
            "assert 'pandas' not in sys.modules; print(len(mfgp.__all__))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    assert int(out.stdout) > 20
    assert mfgp.MultiFidelityRegressor is MultiFidelityRegressor
    assert mfgp.load_bandgap_ladder is load_bandgap_ladder
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mfgp.nope  # noqa: B018
