import numpy as np
import pandas as pd
import pytest
import torch

from mfgp.calibration import cross_validate
from mfgp.data import MultiFidelityDataset, kfold
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor
from mfgp.exceptions import InputDataError, NotFittedError
from mfgp.featurize import reduced_composition
from tests.ladders import small_ladder as make_ladder


@pytest.fixture(scope="module")
def small_ladder():
    return make_ladder(150, 150, seed=0)


FAST = dict(max_rows_per_fidelity=100, max_fit_points=200, max_iter=15, progress=False)


@pytest.mark.parametrize("arch", ["single", "ar1", "multitask", "latent"])
def test_fit_predict_contract(small_ladder, arch):
    reg = MultiFidelityRegressor(arch, **FAST)
    assert reg.fit(small_ladder) is reg
    mean, std = reg.predict(["Si", "GaAs", "NaCl"], True)
    assert mean.shape == (3,) and std.shape == (3,) and (std > 0).all()
    assert np.isfinite(mean).all()
    table = reg.predict_frame(["NaCl"])
    assert list(table.columns) == ["formula", "mean", "std", "lower_90", "upper_90"]
    assert table.lower_90[0] < table["mean"][0] < table.upper_90[0]
    assert reg.get_params()["architecture"] == arch
    if arch == "latent":  # rows grouped by whether their latent is observed, then put back
        X, _, _ = reg.dataset_.tensors()
        top = X[X[:, -1] == X[:, -1].max()][:6]
        Z = top  # the model takes raw contract inputs (its feature map is its own)
        known = reg.model_.latent_known(Z)
        assert known.any() and (~known).any(), known
        grouped = reg.predict(top)
        for rows in (known, ~known):  # each group is one call of one-row posteriors
            alone = reg.model_.posterior(Z[rows].unsqueeze(-2)).mean.reshape(-1).detach().numpy()
            np.testing.assert_allclose(grouped[rows.numpy()], alone, rtol=1e-9)
        # each row's marginal is its own: the same alone as in any batch, latent drawn or not
        one_by_one = [reg.predict(top[i : i + 1])[0] for i in range(len(top))]
        np.testing.assert_allclose(grouped, np.array(one_by_one), rtol=1e-9)


def test_multifidelity_uses_the_low_fidelity(small_ladder):
    """The held-out PBE value of a candidate must move its prediction: AR1 beats target-only."""
    ds = MultiFidelityDataset.from_frame(small_ladder)
    folds = kfold(ds, 3, seed=0)
    maes = {}
    for arch in ["single", "ar1"]:
        cv = cross_validate(MultiFidelityRegressor(arch, **FAST), ds, folds, progress=False)
        maes[arch] = cv.summary().loc["all", "mae"]
        assert len(cv.predictions) == 150 and set(cv.predictions.fold) == {0, 1, 2}
        pred = cv.predictive()  # the folds' predictives, in the rows' order
        np.testing.assert_array_equal(pred.mean(), cv.predictions["mean"])
        np.testing.assert_array_equal(pred.std(), cv.predictions["std"])
    assert maes["ar1"] < maes["single"], maes


def test_errors(small_ladder):
    with pytest.raises(NotFittedError, match="call fit"):
        MultiFidelityRegressor().predict(["Si"])
    with pytest.raises(InputDataError, match="unknown architecture 'nope'"):
        MultiFidelityRegressor("nope").fit(small_ladder)
    reg = MultiFidelityRegressor("single", **FAST).fit(small_ladder)
    with pytest.raises(InputDataError, match="'Xx'"):
        reg.predict(["Fe2Xx3"])


def test_deep_features_pretrain_and_roundtrip(small_ladder, tmp_path):
    from mfgp.nn import load_extractor, save_extractor

    reg = MultiFidelityRegressor(
        "ar1",
        deep_features=True,
        pretrain_options={"epochs": 5, "hidden": (32,), "out_dim": 4},
        **FAST,
    ).fit(small_ladder)
    assert reg.extractor_ is not None and reg.pretrain_report_.best_epoch < 5
    X = torch.rand(3, 132, dtype=torch.float64)
    save_extractor(reg.extractor_, tmp_path / "fx")
    back = load_extractor(tmp_path / "fx")
    assert torch.equal(back.transform(X), reg.extractor_.transform(X))
    assert back.transform(X).dtype == torch.float64
    with pytest.raises(InputDataError, match="no config.json"):
        load_extractor(tmp_path)


@pytest.fixture(scope="module")
def zero_inflated_ladder():
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].sample(260, random_state=1)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(expt.composition)]
    return pd.concat([pbe, expt], ignore_index=True)


def test_hurdle_predictive_is_a_zero_inflated_positive_distribution(zero_inflated_ladder):
    from mfgp.calibration import PointMassMixture

    df = zero_inflated_ladder
    assert (df[df.fidelity == "expt"].value == 0).mean() > 0.3
    hurdle = HurdleRegressor(
        regressor_options=FAST, classifier_options={"epochs": 15, "num_inducing": 100},
        progress=False,
    ).fit(df)  # fmt: skip
    formulas = ["Cu", "Al", "NaCl", "LiF"]
    pred = hurdle.predictive(formulas)
    assert isinstance(pred, PointMassMixture)
    # the classifier's latent: a GP of the PBE gaps, on every PBE row of a target composition
    latent = hurdle.latent_
    assert hurdle.classifier_.latent is latent and latent.dataset_.fidelities == ("pbe",)
    expt = set(df[df.fidelity == "expt"].composition)
    assert expt & set(df[df.fidelity == "pbe"].composition) <= set(latent.dataset_.compositions)
    proba = hurdle.predict_proba(formulas)
    assert proba.shape == (4, 2) and hurdle.classes_.tolist() == [0, 1]
    np.testing.assert_allclose(proba.sum(1), 1.0)
    p = proba[:, 1]  # P(metal): class 1
    assert p[0] > 0.5 > p[2] and p[0] > p[2:].max()  # copper above the wide-gap insulators
    assert np.array_equal(pred.median() == 0, pred.weight >= 0.5)  # the atom holds the median
    X, Y, _ = hurdle.dataset_.tensors()
    top = (X[:, -1] == 1).numpy()
    metal = Y[top, 0].numpy() == 0
    p_train = hurdle.predict_proba(X[top])[:, 1]
    assert p_train[metal].mean() > p_train[~metal].mean() + 0.3
    lo, hi = pred.interval(0.9)
    assert (lo >= 0).all() and (hi > lo).all()
    assert (pred.sample(200) >= 0).all()
    # the notebook table: the hurdle's own scale, P(metal) beside the mixture's moments
    frame = hurdle.predict_frame(formulas, level=95)
    assert frame.columns.tolist() == ["formula", "p_metal", "mean", "std", "lower_95",
                                      "upper_95"]  # fmt: skip
    np.testing.assert_allclose(frame.p_metal, proba[:, 1])
    np.testing.assert_allclose(frame["mean"], pred.mean())
    np.testing.assert_allclose(frame.lower_95, pred.interval(0.95)[0])
    assert (frame.lower_95 >= 0).all() and len(hurdle.predict_frame("NaCl")) == 1
    mean, std = hurdle.predict(["NaCl"], True)
    assert mean[0] > 0 and std[0] > 0
    # point predictions: the hard decision is 0 exactly where P(metal) >= threshold, else the
    # non-metal median, which is the log-normal part alone and never below the mixture median
    nonmetal = hurdle.nonmetal_predictive(formulas)
    assert np.allclose(hurdle.predict(formulas, False, statistic="nonmetal"), nonmetal.median())
    for thr in (0.3, 0.5, 0.9):
        hard = hurdle.predict(formulas, False, statistic="classify", threshold=thr)
        assert np.array_equal(hard == 0, p >= thr)
        assert np.allclose(hard[p < thr], nonmetal.median()[p < thr])
    assert (nonmetal.median() >= pred.median()).all()
    with pytest.raises(InputDataError, match="unknown statistic 'mode'"):
        hurdle.predict(formulas, statistic="mode")
    # the default positive part is softplus-normal; transform="log" gives the log-normal
    from mfgp.calibration import LogNormalPredictive, SoftplusNormalPredictive, softplus_inverse

    assert isinstance(nonmetal, SoftplusNormalPredictive)
    nonzero = (X[top, :][~metal], Y[top, 0].numpy()[~metal])
    fitted = hurdle.regressor_.dataset_.tensors()[1][:, 0].numpy()
    assert np.allclose(np.sort(fitted[-len(nonzero[1]) :]), np.sort(softplus_inverse(nonzero[1])))
    log = HurdleRegressor(transform="log", latent=False, regressor_options=FAST,
                          classifier_options={"epochs": 5, "num_inducing": 50},
                          progress=False).fit(df)  # fmt: skip
    assert isinstance(log.nonmetal_predictive(formulas), LogNormalPredictive)
    with pytest.raises(InputDataError, match="unknown transform 'sqrt'; choose softplus or log"):
        HurdleRegressor(transform="sqrt", progress=False).fit(df)


def test_hurdle_cross_validation_keeps_the_mixtures_for_recalibration(zero_inflated_ladder):
    from mfgp.calibration import IsotonicRecalibration, PointMassMixture

    ds = MultiFidelityDataset.from_frame(zero_inflated_ladder)
    hurdle = HurdleRegressor("single", classifier=BaseRate(), regressor_options=FAST,
                             progress=False)  # fmt: skip
    cv = cross_validate(hurdle, ds, kfold(ds, 2, seed=0), progress=False)
    pred = cv.predictive()
    assert isinstance(pred, PointMassMixture) and pred.n == len(cv.predictions)
    np.testing.assert_allclose(pred.mean(), cv.predictions["mean"])
    y = cv.predictions["observed"].to_numpy()
    assert 0 < pred.weight.min() < pred.weight.max() < 1  # each fold's own base rate
    out = IsotonicRecalibration().fit(y, pred).transform(pred)
    assert isinstance(out, PointMassMixture) and out.n == pred.n
    # the isotonic weight map pools the folds' base rates: it lands between them
    assert pred.weight.min() <= out.weight.min() <= out.weight.max() <= pred.weight.max()


def test_cross_validation_without_a_predictive_keeps_means_and_stds(small_ladder):
    class MeanOnly:
        def fit(self, dataset):
            self.mean_ = float(dataset.tensors()[1][:, 0].mean())
            return self

        def predict(self, X, return_std=False):
            mean = np.full(X.shape[0], self.mean_)
            return (mean, np.ones_like(mean)) if return_std else mean

    ds = MultiFidelityDataset.from_frame(small_ladder)
    cv = cross_validate(MeanOnly(), ds, kfold(ds, 3, seed=0), progress=False)
    assert cv.predictives is None and (cv.predictions["std"] == 1).all()
    with pytest.raises(InputDataError, match="means and stds only"):
        cv.predictive()


def test_hurdle_rejects_negative_gaps(zero_inflated_ladder):
    df = zero_inflated_ladder.copy()
    i = df.index[df.fidelity == "expt"][0]
    df.loc[i, "value"] = -0.5
    comp = df.loc[i, "composition"]
    with pytest.raises(InputDataError, match=rf"band gaps must be >= 0; {comp} \(expt\) has -0.5"):
        HurdleRegressor(progress=False).fit(df)


def test_metal_classifier_facade(zero_inflated_ladder):
    from mfgp.datasets import load_metallicity

    labels = load_metallicity(["pbe", "expt"])
    labels = labels[labels.composition.isin(zero_inflated_ladder.composition)]
    for multitask in (False, True):
        clf = MetalClassifier(multitask, epochs=15, num_inducing=100, progress=False).fit(labels)
        assert clf.predict(["Cu", "NaCl"]).tolist() == [1, 0]
    with pytest.raises(InputDataError, match="deep_features=False or a fitted FeatureExtractor"):
        MetalClassifier(deep_features=True).fit(labels)


def test_finetune_and_recursive_options(small_ladder):
    reg = MultiFidelityRegressor(
        "ar1",
        deep_features=True,
        pretrain_options={"epochs": 5, "hidden": (32,), "out_dim": 4},
        finetune={"steps": 20, "eval_every": 10},
        training="recursive",
        rho="linear",
        **FAST,
    ).fit(small_ladder)
    assert reg.finetune_report_.steps[0] == 0 and reg.finetune_report_.n_val > 0
    assert reg.model_.model.covar_module.rho_weights.shape == (1, 4)  # the GP behind the map
    mean, std = reg.predict(["NaCl", "Si"], True)
    assert np.isfinite(mean).all() and (std > 0).all()
    with pytest.raises(InputDataError, match="finetune needs deep features"):
        MultiFidelityRegressor("ar1", finetune=True, **FAST).fit(small_ladder)
    with pytest.raises(InputDataError, match="'multitask' is fitted jointly"):
        MultiFidelityRegressor("multitask", training="recursive", **FAST).fit(small_ladder)
    with pytest.raises(InputDataError, match="rho='linear' applies to the 'ar1' architecture"):
        MultiFidelityRegressor("single", rho="linear", **FAST).fit(small_ladder)
    with pytest.raises(InputDataError, match="training must be 'auto', 'joint' or 'recursive'"):
        MultiFidelityRegressor("ar1", training="levels", **FAST).fit(small_ladder)


def test_training_auto_is_recursive_for_ar1_only(small_ladder, monkeypatch):
    import mfgp.fit as est  # the specs look their trainer up here

    calls = []
    for name in ("fit_gp", "fit_ar1_recursive"):
        real = getattr(est, name)
        monkeypatch.setattr(
            est, name, lambda *a, _n=name, _f=real, **k: calls.append(_n) or _f(*a, **k)
        )
    for arch, training, expected in [
        ("ar1", "auto", "fit_ar1_recursive"),
        ("ar1", "joint", "fit_gp"),
        ("single", "auto", "fit_gp"),
        ("multitask", "auto", "fit_gp"),
    ]:
        calls.clear()
        MultiFidelityRegressor(arch, training=training, **FAST).fit(small_ladder)
        assert calls == [expected], (arch, training, calls)


@pytest.fixture(scope="module")
def hidden_property():
    """Compositions with a property no feature can predict, and labels that follow it."""
    df = load_bandgap_ladder(["expt"])
    comps = df.drop_duplicates("composition").sample(300, random_state=2)
    u = np.random.default_rng(0).standard_normal(len(comps))
    prop = pd.DataFrame({"formula": comps.formula.to_numpy(), "fidelity": "prop", "value": u})
    labels = prop.assign(fidelity="metal", value=(u > 0).astype(float))
    return prop, labels


def test_metal_classifier_with_a_latent_property(hidden_property, monkeypatch):
    from mfgp.calibration import classification_scores

    prop, labels = hidden_property
    train, test = labels.iloc[:240], labels.iloc[240:]
    latent = MultiFidelityRegressor("single", max_fit_points=300, max_iter=30, progress=False)
    latent.fit(prop)
    options = dict(epochs=60, num_inducing=120, progress=False)
    plain = MetalClassifier(False, **options).fit(train)
    clf = MetalClassifier(False, latent=latent, **options).fit(train)
    y = test.value.to_numpy()
    auc_plain = classification_scores(y, plain.predict_proba(test.formula)[:, 1])["roc_auc"]
    auc = classification_scores(y, clf.predict_proba(test.formula)[:, 1])["roc_auc"]
    # the labels follow the latent alone: only the classifier that sees it can rank them
    assert auc > 0.95 and auc_plain < 0.75
    # tensors and formulas reach the same observed latent
    X = clf.dataset_.inputs_for(test.formula.tolist())
    assert np.allclose(clf.predict_proba(X), clf.predict_proba(test.formula))
    # at compositions the latent never saw, P(metal) integrates over its predictive: the
    # quadrature agrees with Monte Carlo over the same Gaussian
    others = load_bandgap_ladder(["expt"]).drop_duplicates("composition")
    others = others[~others.formula.isin(prop.formula)].formula.iloc[:8].tolist()
    X = clf.dataset_.inputs_for(others)
    Z = clf._task_inputs(clf._inputs(X))
    head = clf.model_  # the core LatentInputClassifier holds the latent and the quadrature
    keys = np.array(reduced_composition(others), dtype=object)
    mean, std = clf._property_moments(X, keys, head.latent)
    assert (std > 0.3).all()
    S = 20000
    g = torch.Generator().manual_seed(0)
    draws = mean + std * torch.randn(S, 1, dtype=std.dtype, generator=g)
    mc = head.classifier.predict_proba(head.latent.augment(Z.repeat(S, 1), draws.reshape(-1)))
    assert np.allclose(clf.predict_proba(X)[:, 1], mc.reshape(S, -1).mean(0).numpy(),
                       atol=0.015)  # fmt: skip
    # the classifier's moments are interpolated in z from 16 (then 32) Chebyshev points a row, not
    # evaluated at the 64 nodes, within the rule's tolerance of every node evaluated; a row's
    # answer is the same alone and in the batch
    counted = []
    original = head.classifier.latent_moments
    along = head.classifier.latent_moments_along

    def counting(Xq, batch_size=4096):
        counted.append(Xq.shape[0])
        return original(Xq, batch_size)

    def counting_along(Xq, column, values):  # points per row, the other columns shared
        counted.append(values.numel())
        return along(Xq, column, values)

    monkeypatch.setattr(head.classifier, "latent_moments", counting, raising=False)
    monkeypatch.setattr(head.classifier, "latent_moments_along", counting_along, raising=False)
    fast = head.quadrature(Z, mean, std)
    assert 0 < sum(counted) < head.nodes * len(others), counted
    monkeypatch.setattr(head, "interpolation", None)
    every = head.quadrature(Z, mean, std)
    assert float((fast - every).abs().max()) <= head.tolerance
    monkeypatch.undo()
    alone = torch.cat([head.quadrature(Z[i : i + 1], mean[i : i + 1], std[i : i + 1])
                       for i in range(len(others))])  # fmt: skip
    torch.testing.assert_close(alone, fast, rtol=0, atol=1e-12)
    # the labels' latent is pure noise to the latent's GP: its noise-free function knows
    # nothing of it, so a classifier on that function cannot rank the held-out labels
    blind = MetalClassifier(False, latent=latent, latent_observed=False, **options).fit(train)
    assert classification_scores(y, blind.predict_proba(test.formula)[:, 1])["roc_auc"] < 0.75


def test_metal_classifier_latent_errors(hidden_property):
    prop, labels = hidden_property
    with pytest.raises(InputDataError, match="latent must be a fitted MultiFidelityRegressor"):
        MetalClassifier(latent=MultiFidelityRegressor("single"), progress=False).fit(labels)
    latent = MultiFidelityRegressor("single", max_fit_points=100, max_iter=5, progress=False)
    latent.fit(prop.iloc[:100])
    with pytest.raises(
        InputDataError, match="featurizer 'magpie' but this classifier uses 'extended'"
    ):
        MetalClassifier(latent=latent, featurizer="extended", progress=False).fit(labels)


def test_regressor_recalibrates_itself_on_its_own_folds(small_ladder, tmp_path):
    from mfgp.calibration import GaussianPredictive, RecalibratedPredictive

    reg = MultiFidelityRegressor("ar1", **FAST).fit(small_ladder)
    formulas = ["Si", "GaAs", "NaCl"]
    raw = reg.predict_frame(formulas)
    assert reg.recalibrate(3, seed=0) is reg
    cv = reg.recalibration_cv_
    assert len(cv.predictions) == 150 and set(cv.predictions.fold) == {0, 1, 2}
    # the map, applied to the predictions it was fitted on, is calibrated at every level
    y = cv.predictions["observed"].to_numpy()
    mapped = reg.recalibration_.transform(cv.predictive())
    for level in (0.5, 0.68, 0.9):
        lo, hi = mapped.interval(level)
        assert abs(np.mean((y >= lo) & (y <= hi)) - level) < 0.03, level
    # every target predictive goes through the map; other fidelities and the latent do not
    pred = reg.predictive(formulas)
    assert isinstance(pred, RecalibratedPredictive)
    unmapped = reg.predictive(formulas, recalibrated=False)
    np.testing.assert_allclose(pred.interval(0.9), reg.recalibration_.transform(unmapped).interval(0.9))
    frame = reg.predict_frame(formulas)
    np.testing.assert_allclose(frame[["lower_90", "upper_90"]].to_numpy().T, pred.interval(0.9))
    assert not np.allclose(frame.lower_90, raw.lower_90)
    assert isinstance(reg.predictive(formulas, fidelity="pbe"), GaussianPredictive)
    assert isinstance(reg.predictive(formulas, observation_noise=False), GaussianPredictive)
    # saved with the estimator; a new fit drops it
    loaded = MultiFidelityRegressor.load(reg.save(tmp_path / "r.mfgp"))
    np.testing.assert_array_equal(loaded.predict_frame(formulas).to_numpy(), frame.to_numpy())
    reg.fit(small_ladder)
    assert reg.recalibration_ is None
    np.testing.assert_allclose(reg.predict_frame(formulas)[["lower_90"]], raw[["lower_90"]])
    with pytest.raises(InputDataError, match="folds"):
        reg.recalibrate(0)
    with pytest.raises(NotFittedError):
        MultiFidelityRegressor().recalibrate()


class BaseRate:
    """P(metal) = the share of metals among the target rows: a fast stand-in classifier."""

    def fit(self, labels, candidates=None):
        X, Y, _ = labels.tensors()
        self.p_ = float(Y[X[:, -1] == X[:, -1].max(), 0].mean())
        return self

    def predict_proba(self, X):
        return np.full(len(X), self.p_)


def test_hurdle_recalibrates_both_parts_and_saves_them(zero_inflated_ladder, tmp_path):
    from mfgp.calibration import PointMassMixture

    fast = HurdleRegressor("single", classifier=BaseRate(), regressor_options=FAST,
                           progress=False).fit(zero_inflated_ladder)  # fmt: skip
    formulas = ["Cu", "NaCl", "GaAs", "ZnO"]
    raw = fast.predictive(formulas)
    assert fast.recalibrate(2, seed=0) is fast
    pred = fast.predictive(formulas)
    assert isinstance(pred, PointMassMixture) and fast.recalibration_.weight_maps_
    np.testing.assert_array_equal(fast.predict_proba(formulas)[:, 1], pred.weight)  # mapped
    np.testing.assert_array_equal(fast.predict(formulas), pred.mean())
    np.testing.assert_array_equal(fast.predictive(formulas, recalibrated=False).weight,
                                  raw.weight)  # fmt: skip
    # on the out-of-fold predictions it was fitted on, the mixture is calibrated
    cv = fast.recalibration_cv_
    levels = np.array([0.5, 0.9])
    y = cv.predictions["observed"].to_numpy()
    before = cv.predictive().covered(y, levels).mean(axis=1)
    after = fast.recalibration_.transform(cv.predictive()).covered(y, levels).mean(axis=1)
    assert np.abs(after - levels).max() < 0.03 < np.abs(before - levels).max(), (before, after)
    # the maps are the estimator's state: saved and loaded with a (saveable) hurdle
    hurdle = HurdleRegressor("single", latent=False, regressor_options=FAST,
                             classifier_options={"epochs": 3, "num_inducing": 30},
                             progress=False).fit(zero_inflated_ladder)  # fmt: skip
    hurdle.recalibration_ = fast.recalibration_
    pred = hurdle.predictive(formulas)
    loaded = HurdleRegressor.load(hurdle.save(tmp_path / "h.mfgp"))
    again = loaded.predictive(formulas)
    np.testing.assert_array_equal(again.weight, pred.weight)
    np.testing.assert_array_equal(np.array(again.interval(0.9)), np.array(pred.interval(0.9)))
    np.testing.assert_array_equal(loaded.nonmetal_predictive(formulas).interval(0.9),
                                  hurdle.nonmetal_predictive(formulas).interval(0.9))  # fmt: skip
    hurdle.fit(zero_inflated_ladder)
    assert hurdle.recalibration_ is None


def test_hurdle_with_few_experiments_learns_metallicity_from_the_pbe_labels():
    """``multitask="auto"``: below ``multitask_below`` target labels the classifier also learns
    PBE's ``gap == 0`` labels, which a handful of experiments cannot replace (issue #33: a
    campaign's hurdle, started from 20 experiments, gave PBE metals a P(metal) near 0.5,
    measured by hand)."""
    from sklearn.metrics import brier_score_loss

    df = load_bandgap_ladder(["pbe", "expt"])
    ex = df[df.fidelity == "expt"].drop_duplicates("composition")
    order = np.random.default_rng(3).permutation(len(ex))
    test, train = ex.iloc[order[:300]], ex.iloc[order[300:330]]
    pbe = df[(df.fidelity == "pbe")
             & df.composition.isin(set(test.composition) | set(train.composition))]
    data = pd.concat([pbe, train], ignore_index=True)
    y = (test.value.to_numpy() == 0).astype(int)
    brier = {}
    for below in (HurdleRegressor.multitask_below, 10):
        est = HurdleRegressor(regressor_options=FAST, progress=False)
        est.multitask_below = below
        est.fit(data)
        assert est.multitask_ is (below > 30) and est.classifier_.multitask is est.multitask_
        brier[est.multitask_] = brier_score_loss(y, est.predict_proba(test.formula.tolist())[:, 1])
    assert brier[True] < brier[False] - 0.03, brier
    with pytest.raises(InputDataError, match="multitask must be 'auto', True or False"):
        HurdleRegressor(multitask="yes", progress=False).fit(data)


def test_a_hurdle_fit_says_which_part_is_running(monkeypatch, caplog):
    """Issue #37: a hurdle fits three models; its bars name the one running."""
    import logging

    import mfgp._progress as progress

    descs = []
    real = progress.tqdm

    def recording(iterable=None, **kwargs):
        descs.append(kwargs.get("desc"))
        return real(iterable, **{**kwargs, "disable": True})

    monkeypatch.setattr(progress, "tqdm", recording)
    df = load_bandgap_ladder(["pbe", "expt"])
    ex = df[df.fidelity == "expt"].drop_duplicates("composition").sample(40, random_state=0)
    data = pd.concat([df[(df.fidelity == "pbe") & df.composition.isin(ex.composition)], ex])
    with caplog.at_level(logging.INFO, logger="mfgp"):
        HurdleRegressor(progress=True, regressor_options={"max_iter": 5}, latent={"max_iter": 5},
                        classifier_options={"epochs": 5, "num_inducing": 30}).fit(data)  # fmt: skip
    assert "hurdle: regression (gap of a non-metal): AR1 levels" in descs, descs
    assert "hurdle: classifier (P(metal)): fit" in descs, descs
    assert "hurdle: the classifier's pbe gap input: fit" in descs, descs
    assert "hurdle: classifier (P(metal))" in [r.getMessage() for r in caplog.records]
    assert progress.described("fit") == "fit"  # the stages end with the fit
    with pytest.raises(RuntimeError), progress.stage("a part that fails"):
        raise RuntimeError
    assert progress.described("fit") == "fit"  # and with a part that raised
