"""Defects of issue 34 beyond batch invariance (tests/test_predict_invariance.py): each failed
before its fix."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mfgp.calibration.predictive import softplus_inverse
from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor
from mfgp.exceptions import InputDataError
from mfgp.hurdle import HurdleSpec
from tests.ladders import small_ladder

FAST = dict(max_rows_per_fidelity=50, max_fit_points=200, max_iter=10, progress=False)


@pytest.fixture(scope="module")
def ladder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return small_ladder(40, 100, seed=2)


class BaseRate:
    """P(metal) = the share of metals among the target rows: a fast stand-in classifier."""

    def fit(self, labels, candidates=None):
        X, Y, _ = labels.tensors()
        self.p_ = float(Y[X[:, -1] == X[:, -1].max(), 0].mean())
        return self

    def predict_proba(self, X):
        return np.full(len(X), self.p_)


# -- defect 3: a column called noise is used, never silently dropped ---------------------------
def test_a_noise_column_is_used_without_naming_it(ladder):
    df = ladder.assign(noise=0.25)
    reg = MultiFidelityRegressor("ar1", **FAST).fit(df)  # no noise_col=
    assert np.allclose(reg.dataset_.frame["noise"], 0.25)
    f = reg.predict(["NaCl", "Si"], True)[1]
    y = reg.predict(["NaCl", "Si"], True, observation_noise=True)[1]
    np.testing.assert_allclose(y**2 - f**2, 0.25, rtol=1e-6)  # the known variance, in eV^2
    ignored = MultiFidelityRegressor("ar1", **FAST).fit(df, noise_col=None)  # opting out
    assert ignored.dataset_.frame["noise"].isna().all()


def test_the_hurdle_carries_known_noise_to_g_space_and_the_classifier_refuses_it(ladder):
    df = ladder.assign(noise=0.04)
    hurdle = HurdleRegressor(classifier=BaseRate(), regressor_options=FAST,
                             progress=False).fit(df)  # fmt: skip
    f = hurdle.regressor_.dataset_.frame
    spec = HurdleSpec()
    target = (f.fidelity == "expt").to_numpy()
    # back on the gap scale: g^-1 of the training values, and the delta method's variance
    gap = np.log1p(np.exp(f.value.to_numpy())) - np.where(target, 0.0, spec.offset)
    expected = spec.noise(gap, target, np.full(len(f), 0.04))
    np.testing.assert_allclose(f["noise"], expected, rtol=1e-6)
    shifted = (gap + np.where(target, 0.0, spec.offset))[:3]  # what g was applied to
    h = 1e-6
    slope = (softplus_inverse(shifted + h) - softplus_inverse(shifted - h)) / (2 * h)
    np.testing.assert_allclose(expected[:3], 0.04 * slope**2, rtol=1e-5)
    with pytest.raises(InputDataError, match="noise_col=None"):
        MetalClassifier(False, progress=False).fit(df.assign(value=(df.value == 0) * 1.0))


# -- defect 5: the recalibration map is for target rows only ----------------------------------
def test_recalibration_leaves_lower_fidelity_tensor_rows_gaussian(ladder):
    from mfgp.calibration import GaussianPredictive

    reg = MultiFidelityRegressor("ar1", **FAST).fit(ladder).recalibrate(2)
    formulas = ["NaCl", "Si", "GaAs", "ZnO"]
    ds = reg.dataset_
    X = torch.cat([ds.inputs_for(formulas, "pbe"), ds.inputs_for(formulas)])  # pbe, then expt
    pred = reg.predictive(X)
    mean, std = reg.predict(X, True, observation_noise=True)
    gauss = GaussianPredictive(mean[:4], std[:4])
    lo, hi = pred.interval(0.9)
    np.testing.assert_allclose(lo[:4], gauss.interval(0.9)[0], rtol=1e-12)
    np.testing.assert_allclose(hi[:4], gauss.interval(0.9)[1], rtol=1e-12)
    np.testing.assert_allclose(pred.mean()[:4], mean[:4], rtol=1e-12)
    np.testing.assert_allclose(pred.std()[:4], std[:4], rtol=1e-12)
    y = np.array([0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(pred.log_score(np.r_[y, y])[:4], gauss.log_score(y), rtol=1e-12)
    # the target rows are the recalibrated ones, as asked by formula
    target = reg.predictive(formulas)
    np.testing.assert_allclose(lo[4:], target.interval(0.9)[0], rtol=1e-9)
    assert not np.allclose(lo[4:], GaussianPredictive(mean[4:], std[4:]).interval(0.9)[0])
    # a lower fidelity asked by name was already left as it is
    np.testing.assert_allclose(reg.predictive(formulas, "pbe").interval(0.9)[0], lo[:4],
                               rtol=1e-9)  # fmt: skip


# -- defect 6: the saving contract -------------------------------------------------------------
def test_load_model_on_an_estimator_file_names_load_estimator(ladder, tmp_path):
    import mfgp
    from mfgp.exceptions import SerializationError
    from mfgp.io import load_model

    assert "load_estimator" in mfgp.__all__ and mfgp.load_estimator is not None
    reg = MultiFidelityRegressor("single", **FAST).fit(ladder)
    path = reg.save(tmp_path / "reg.mfgp")
    with pytest.raises(SerializationError, match=r"load_estimator\("):
        load_model(path)
    back = mfgp.load_estimator(path)
    np.testing.assert_array_equal(back.predict(["NaCl"]), reg.predict(["NaCl"]))


def test_reports_and_the_recalibration_cv_survive_save_and_load(ladder, tmp_path):
    reg = MultiFidelityRegressor(
        "ar1", deep_features=True, pretrain_options={"epochs": 2, "hidden": (16,), "out_dim": 4},
        finetune={"steps": 10, "eval_every": 5}, **FAST,
    ).fit(ladder).recalibrate(2)  # fmt: skip
    back = MultiFidelityRegressor.load(reg.save(tmp_path / "reg.mfgp"))
    assert back.pretrain_report_ == reg.pretrain_report_
    assert back.finetune_report_ == reg.finetune_report_
    cv, again = reg.recalibration_cv_, back.recalibration_cv_
    pd.testing.assert_frame_equal(again.predictions, cv.predictions)
    assert again.fit_seconds == cv.fit_seconds
    np.testing.assert_array_equal(again.predictive().interval(0.9), cv.predictive().interval(0.9))


# -- defect 4: "latent" does not answer a lower fidelity with the target's prediction --------
def test_the_latent_chain_refuses_a_lower_fidelity(ladder):
    from mfgp.models import ExplicitLatentGP

    reg = MultiFidelityRegressor("latent", **FAST).fit(ladder)
    with pytest.raises(InputDataError, match="predicts the target fidelity 'expt' only"):
        reg.predict(["NaCl"], fidelity="pbe")
    X = reg.dataset_.inputs_for(["NaCl", "Si"], "pbe")
    with pytest.raises(InputDataError, match="asked for 'pbe'"):
        reg.predictive(X)
    with pytest.raises(InputDataError, match="one string for all|only"):
        reg.predict_combination(["NaCl", "Si"], [1.0, -1.0], fidelity=["pbe", "expt"])
    # the core model refuses too, and its latent model answers the level below
    chain = reg.model_
    assert isinstance(chain, ExplicitLatentGP)
    with pytest.raises(InputDataError, match="answers at fidelity 1"):
        chain.posterior(X)
    assert chain.latent_model.posterior(X).mean.shape == (2, 1)
    assert np.isfinite(reg.predict(["NaCl", "Si"])).all()  # the target as before
