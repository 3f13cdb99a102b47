"""Silent wrong answers found as a new user would (issue 13): each failed before its fix."""

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mfgp._io import atomic_write
from mfgp.data import MultiFidelityDataset
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor
from mfgp.exceptions import ConflictingDuplicatesWarning, InputDataError
from tests.ladders import small_ladder

FAST = dict(max_rows_per_fidelity=100, max_fit_points=200, max_iter=15, progress=False)


@pytest.fixture(scope="module")
def ladder():
    return small_ladder(120, 400, seed=4)


@pytest.fixture(scope="module")
def ar1(ladder):
    return MultiFidelityRegressor("ar1", **FAST).fit(ladder)


def test_predictions_use_the_known_lower_fidelity_rows_of_the_asked_compositions(ladder, ar1):
    ds = ar1.dataset_
    kept = set(ar1.train_rows_)
    f = ds.frame
    left_out = f[(f.fidelity == "pbe") & ~f.index.isin(kept)]
    left_out = left_out[~left_out.composition.isin(f[f.fidelity == "expt"].composition)][:25]
    assert len(left_out) == 25  # the cap (100 of 400) left these PBE rows out of the fit
    mean, std = ar1.predict(left_out.formula.tolist(), True, fidelity="pbe")
    err = np.abs(mean - left_out.value.to_numpy())
    # conditioned on its own PBE value, each PBE prediction sits at it (within the noise)
    assert np.median(err) < 0.1 and (std < 0.5).all(), (np.median(err), std.max())
    # without its own row the GP can only interpolate: much further off
    X, Y, _ = ds.tensors(left_out.index.to_numpy())
    alone = ar1.model_.posterior(X).mean.squeeze(-1).detach().numpy()
    assert np.median(np.abs(alone - Y[:, 0].numpy())) > 3 * np.median(err)
    # the fitted model itself is untouched
    again = ar1.model_.posterior(X).mean.squeeze(-1).detach().numpy()
    np.testing.assert_allclose(again, alone)


def test_the_core_model_takes_raw_inputs_and_agrees_with_predict(ladder, ar1):
    formulas = ladder[ladder.fidelity == "expt"].formula.tolist()[:4]
    X = ar1.dataset_.inputs_for(formulas)
    mean = ar1.model_.posterior(X).mean.squeeze(-1).detach().numpy()
    assert np.unique(mean.round(6)).size == 4  # one value per composition, not a constant
    np.testing.assert_allclose(mean, ar1.predict(formulas), rtol=1e-8)


def test_pickle_holds_no_caches(ar1):
    ar1.predict(["NaCl", "Si"])  # builds the n x n factor and fills the feature cache
    assert ar1.model_.model._mfgp_cholesky is not None
    assert len(ar1.dataset_.featurizer._cache()) > 0
    back = pickle.loads(pickle.dumps(ar1))
    assert getattr(back.model_.model, "_mfgp_cholesky", None) is None
    assert len(back.dataset_.featurizer._cache()) == 0
    # the same bytes with and without the caches built
    assert len(pickle.dumps(ar1)) < 1.02 * len(pickle.dumps(back))
    np.testing.assert_allclose(back.predict(["NaCl"]), ar1.predict(["NaCl"]))


def test_a_bare_string_is_one_formula(ar1):
    mean, std = ar1.predict("CO", True)
    assert mean.shape == (1,) and std.shape == (1,)
    assert len(ar1.predict_frame("CO")) == 1


def test_fidelity_order_is_declared_not_guessed(ladder):
    user = pd.DataFrame({"formula": ["NaCl", "Si", "NaCl", "Si", "GaAs"],
                         "fidelity": ["expt", "expt", "oqmd", "oqmd", "oqmd"],
                         "value": [8.5, 1.1, 5.0, 0.6, 0.5]})  # fmt: skip
    with pytest.raises(InputDataError, match=r"no declared order; pass fidelities="):
        MultiFidelityDataset.from_frame(user)
    assert MultiFidelityDataset.from_frame(user, ["oqmd", "expt"]).target == "expt"
    # shipped frames carry their order, however the rows are sorted
    shuffled = ladder.iloc[::-1]
    assert MultiFidelityDataset.from_frame(shuffled).fidelities == ("pbe", "expt")


def test_integer_fidelity_labels():
    df = pd.DataFrame({"formula": ["NaCl", "Si", "NaCl", "Si", "GaAs", "LiF", "MgO"],
                       "fidelity": [1, 1, 0, 0, 0, 1, 0],
                       "value": [8.5, 1.1, 5.0, 0.6, 0.5, 13.0, 4.5]})  # fmt: skip
    ds = MultiFidelityDataset.from_frame(df, [0, 1])
    assert ds.fidelities == ("0", "1") and ds.counts().tolist() == [4, 3]
    assert ds.inputs_for(["NaCl"], 0)[0, -1] == 0.0


def test_duplicates_that_disagree_warn_naming_the_rows():
    df = pd.DataFrame({"formula": ["Si", "Si", "NaCl", "GaAs", "LiF"],
                       "fidelity": "expt", "value": [1.1, 5.0, 8.5, 1.4, 13.0]})  # fmt: skip
    with pytest.warns(ConflictingDuplicatesWarning, match=r"rows \[0, 1\] \(Si, expt\)"):
        ds = MultiFidelityDataset.from_frame(df)
    assert ds.frame.set_index("composition").loc["Si", "value"] == pytest.approx(3.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiFidelityDataset.from_frame(df, conflict_warn=None)
        MultiFidelityDataset.from_frame(df.assign(value=[1.1, 1.12, 8.5, 1.4, 13.0]))


def test_interval_levels_and_bad_settings(ladder, ar1):
    a = ar1.predict_frame(["NaCl", "Si"], level=95)
    b = ar1.predict_frame(["NaCl", "Si"], level=0.95)
    assert list(a.columns) == ["formula", "mean", "std", "lower_95", "upper_95"]
    assert np.isfinite(a.lower_95).all()
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(InputDataError, match="level must be"):
        ar1.predict_frame(["NaCl"], level=0)
    with pytest.raises(InputDataError, match="batch_size must be a positive integer; got 0"):
        ar1.predict(["NaCl"], batch_size=0)
    for name in ("rank", "max_fit_points", "max_rows_per_fidelity"):
        with pytest.raises(InputDataError, match=f"{name} must be a positive integer"):
            MultiFidelityRegressor("multitask", **{**FAST, name: 0}).fit(ladder)
    one = ladder[(ladder.fidelity == "pbe") | (ladder.formula == ladder.formula.iloc[-1])]
    with pytest.raises(InputDataError, match="'expt' has 1 row"):
        MultiFidelityRegressor("ar1", **FAST).fit(one)


def test_known_noise_reaches_the_predictions():
    df = load_bandgap_ladder(["expt"])
    df = df[df.value > 0].sample(60, random_state=0).assign(noise=0.25)
    reg = MultiFidelityRegressor("single", **FAST).fit(df, noise_col="noise")
    f = reg.predict(["NaCl", "Si"], True)[1]
    y = reg.predict(["NaCl", "Si"], True, observation_noise=True)[1]
    np.testing.assert_allclose(y**2 - f**2, 0.25, rtol=1e-6)
    table = reg.predict_frame(["NaCl", "Si"])
    np.testing.assert_allclose(table["std"], y)


def test_latent_chain_trains_on_the_fitted_lower_level(ladder):
    reg = MultiFidelityRegressor("latent", latent_observed=False, **FAST).fit(ladder)
    top = reg.model_
    gp = top.gp
    gp.train()
    z = gp.train_inputs[0][:, -2].clone()
    gp.eval()
    X_top = top.train_X.clone()
    X_top[:, -1] = 0.0
    fitted = top.latent_model.posterior(X_top).mean.squeeze(-1).detach()
    assert torch.allclose(z, fitted, atol=1e-8)


def test_latent_deep_features_find_the_observed_values(ladder):
    reg = MultiFidelityRegressor(
        "latent", deep_features=True, pretrain_options={"epochs": 3, "hidden": (16,), "out_dim": 4},
        **FAST,
    ).fit(ladder)  # fmt: skip
    f = reg.dataset_.frame
    with_pbe = f[(f.fidelity == "expt") & f.composition.isin(f[f.fidelity == "pbe"].composition)]
    formulas = with_pbe.formula.tolist()[:50]
    X = reg.dataset_.inputs_for(formulas)
    assert bool(reg.model_.latent_known(X).all())
    batch = reg.predict(formulas)
    one = np.array([reg.predict([x])[0] for x in formulas[:5]])
    np.testing.assert_allclose(batch[:5], one, rtol=1e-5)  # float32 features: ~1e-7 apart


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
