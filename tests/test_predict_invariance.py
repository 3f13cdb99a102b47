"""A prediction is a function of what is asked, not of how (STYLE.md rule 11; issue 34).

The candidates here *do* have lower-fidelity rows that the fit left out (``max_rows_per_fidelity``
caps them): each composition's prediction conditions on its own rows and on no other asked
composition's, so it is the same alone, in a batch, in any screening batch size, and (keyed by
composition, not by feature values) in float32 within a stated tolerance.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor
from mfgp.exceptions import InputDataError
from mfgp.screen import screen
from tests.ladders import small_ladder

CAP = 50
FAST = dict(max_fit_points=200, max_iter=10, progress=False)
#: float32 against float64, both fitted: the fits agree to ~2e-5 eV on this ladder (measured:
#: ar1 1.6e-5, single 5e-5, latent 8e-4, the latent's Monte Carlo over draws); before the fix the
#: float32 model lost each composition's own rows and was up to 2.8 eV off
F32_ATOL = 5e-3
#: a prediction alone and in a batch: the same arithmetic up to the order of batched sums
TIGHT = dict(rtol=1e-9, atol=1e-10)


@pytest.fixture(scope="module")
def ladder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return small_ladder(60, 300, seed=1)


def _left_out(reg, n=10):
    """Formulas whose PBE row the fit left out (and that have no target row)."""
    f = reg.dataset_.frame
    left = f[(f.fidelity == "pbe") & ~f.index.isin(reg.train_rows_)]
    return left.formula.tolist()[:n]


def _asked(reg, n=10):
    """Left-out compositions first, then fitted ones and one the data do not hold."""
    f = reg.dataset_.frame
    kept = f[f.index.isin(reg.train_rows_)].formula.drop_duplicates().tolist()[:4]
    return _left_out(reg, n) + kept + ["LiBr"]


_FITTED: dict = {}


def _fit(ladder, architecture, cap=CAP, dtype="float64"):
    key = (architecture, cap, dtype)
    if key not in _FITTED:
        _FITTED[key] = MultiFidelityRegressor(architecture, max_rows_per_fidelity=cap,
                                              dtype=dtype, **FAST).fit(ladder)  # fmt: skip
    return _FITTED[key]


@pytest.mark.parametrize("cap", [CAP, None])
@pytest.mark.parametrize("architecture", ["ar1", "multitask", "single", "latent"])
def test_a_prediction_is_the_same_alone_or_in_a_batch(ladder, architecture, cap):
    reg = _fit(ladder, architecture, cap)
    asked = _asked(reg) if cap else _asked(_fit(ladder, architecture))
    assert len(asked) == 15
    for fidelity in (None, "pbe") if architecture != "latent" else (None,):
        for noise in (False, True):
            mean, std = reg.predict(asked, True, fidelity=fidelity, observation_noise=noise)
            alone = np.array([reg.predict([x], True, fidelity=fidelity,
                                          observation_noise=noise) for x in asked])  # fmt: skip
            np.testing.assert_allclose(mean, alone[:, 0, 0], **TIGHT)
            np.testing.assert_allclose(std, alone[:, 1, 0], **TIGHT)
            halves = [reg.predict(asked[::2], True, fidelity=fidelity, observation_noise=noise),
                      reg.predict(asked[1::2], True, fidelity=fidelity, observation_noise=noise)]
            np.testing.assert_allclose(mean[::2], halves[0][0], **TIGHT)
            np.testing.assert_allclose(mean[1::2], halves[1][0], **TIGHT)


@pytest.mark.parametrize("architecture", ["ar1", "multitask"])
def test_each_composition_conditions_on_its_own_left_out_rows(ladder, architecture):
    reg = _fit(ladder, architecture)
    ds = reg.dataset_
    asked = _left_out(reg, 6)
    for fidelity in (None, "pbe"):
        mean, std = reg.predict(asked, True, fidelity=fidelity, observation_noise=True)
        for i, formula in enumerate(asked):
            own = ds.frame.index[ds.frame.formula == formula].to_numpy()
            own = own[~np.isin(own, reg.train_rows_)]
            assert own.size  # the cap left this composition's PBE row out of the fit
            model = reg.model_.conditioned_on(*ds.tensors(own))
            post = model.posterior(ds.inputs_for([formula], fidelity), observation_noise=True)
            np.testing.assert_allclose(mean[i], float(post.mean.detach()), rtol=1e-8,
                                       atol=1e-10)  # fmt: skip
            np.testing.assert_allclose(std[i], float(post.variance.detach().sqrt()), rtol=1e-8)
    # and at the PBE fidelity the prediction moves to the composition's own PBE value
    pbe = ds.frame.set_index("formula").loc[asked]
    pbe = pbe[pbe.fidelity == "pbe"]["value"].to_numpy()
    blind = reg.model_.posterior(ds.inputs_for(asked, "pbe")).mean.detach().numpy().ravel()
    own = np.abs(reg.predict(asked, fidelity="pbe") - pbe)
    assert np.median(own) < 0.8 * np.median(np.abs(blind - pbe)), (own, blind - pbe)


@pytest.mark.parametrize("architecture", ["ar1", "single", "latent"])
def test_float32_is_float64_within_a_stated_tolerance(ladder, architecture):
    r64, r32 = _fit(ladder, architecture), _fit(ladder, architecture, dtype="float32")
    asked = _asked(r64)
    for fidelity in (None, "pbe") if architecture != "latent" else (None,):
        m64, s64 = r64.predict(asked, True, fidelity=fidelity)
        m32, s32 = r32.predict(asked, True, fidelity=fidelity)
        np.testing.assert_allclose(m32, m64, atol=F32_ATOL)
        np.testing.assert_allclose(s32, s64, atol=F32_ATOL)
    # raw float32 tensors (no formulas: the fallback matches rows by features at float32's
    # precision) find the same compositions
    X = r32.dataset_.inputs_for(asked, dtype=torch.float32)
    np.testing.assert_allclose(r32.predict(X), r32.predict(asked), rtol=1e-6, atol=1e-6)


def test_float32_multitask_with_the_same_hyperparameters(ladder):
    """The multitask fit itself moves in float32 (its loss differs in the 4th digit, and its
    predictions by up to 0.25 eV); with the float64 fit's hyperparameters, the float32 prediction
    path (rows keyed by composition) agrees."""
    r64 = _fit(ladder, "multitask")
    r32 = copy.deepcopy(r64)
    r32.dtype = "float32"
    r32.model_ = r32.model_.to(torch.float32)
    asked = _asked(r64)
    for fidelity in (None, "pbe"):
        m64, s64 = r64.predict(asked, True, fidelity=fidelity)
        m32, s32 = r32.predict(asked, True, fidelity=fidelity)
        np.testing.assert_allclose(m32, m64, atol=2e-3)
        np.testing.assert_allclose(s32, s64, atol=2e-3)


def test_screen_is_the_same_for_any_batch_size(ladder):
    reg = _fit(ladder, "ar1")
    pool = _asked(reg, 20)
    runs = [screen(reg, pool, score="mean", top_k=8, batch_size=b, progress=False)
            for b in (1, 3, 7, len(pool))]  # fmt: skip
    for run in runs[1:]:
        assert run.formula.tolist() == runs[0].formula.tolist()
        np.testing.assert_allclose(run["score"], runs[0]["score"], **TIGHT)
        np.testing.assert_allclose(run["std"], runs[0]["std"], **TIGHT)


@pytest.fixture(scope="module")
def hurdle(ladder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HurdleRegressor(
            regressor_options=dict(max_rows_per_fidelity=CAP, **FAST),
            classifier_options=dict(num_inducing=10, epochs=5),
            latent=dict(max_rows_per_fidelity=CAP, max_iter=10), progress=False,
        ).fit(ladder)  # fmt: skip


def test_hurdle_predictions_are_the_same_alone_or_in_a_batch(hurdle):
    asked = _asked(hurdle.regressor_)
    mean, std = hurdle.predict(asked, True)
    alone = np.array([hurdle.predict([x], True) for x in asked])
    np.testing.assert_allclose(mean, alone[:, 0, 0], **TIGHT)
    np.testing.assert_allclose(std, alone[:, 1, 0], **TIGHT)
    p = hurdle.predict_proba(asked)
    np.testing.assert_allclose(p, np.concatenate([hurdle.predict_proba([x]) for x in asked]),
                               **TIGHT)  # fmt: skip
    top = [screen(hurdle, asked, score="window", window=(0.5, 2.0), top_k=6, batch_size=b,
                  progress=False) for b in (1, 4, len(asked))]  # fmt: skip
    for run in top[1:]:
        assert run.formula.tolist() == top[0].formula.tolist()
        np.testing.assert_allclose(run["score"], top[0]["score"], **TIGHT)


def test_the_classifier_reads_a_left_out_composition_s_own_pbe_gap(hurdle, ladder):
    """The classifier's latent input at a composition with a PBE row is that row's value (std 0),
    also where the latent GP's cap left the row out of its fit (a formula of the shipped PBE
    table asked after the fit): before, such a composition got the latent GP's smoothed guess
    (on the shipped model GaN's 0.73 +- 0.92 eV for its PBE 1.74)."""
    lat = hurdle.latent_
    pbe = ladder[ladder.fidelity == "pbe"]
    assert lat.dataset_.n == len(pbe)  # every PBE row is in the latent's dataset
    assert len(lat.train_rows_) < lat.dataset_.n  # the cap left some out of the fit
    f = lat.dataset_.frame
    left = f[~f.index.isin(lat.train_rows_)].drop_duplicates("composition").head(8)
    assert len(left) == 8
    clf = hurdle.classifier_
    raw, keys = clf._asked(left.formula.tolist(), None)
    mean, std = clf._property_moments(raw, keys, clf.model_.latent)
    expected = left.groupby("composition", sort=False)["value"].mean()[list(keys)].to_numpy()
    np.testing.assert_allclose(mean.numpy(), expected, rtol=0, atol=1e-12)
    assert bool((std == 0).all())
    # P(metal) there is the classifier's at that value, in one evaluation
    Z = clf._task_inputs(clf._inputs(raw))
    p = clf.model_.quadrature(Z, mean, std).numpy()
    np.testing.assert_allclose(hurdle.predict_proba(left.formula.tolist())[:, 1], p, **TIGHT)
    # a composition without a PBE row still integrates over the latent GP's predictive
    raw, keys = clf._asked(["LiBr"], None)
    assert float(clf._property_moments(raw, keys, clf.model_.latent)[1][0]) > 0


def test_fit_on_chosen_rows_conditions_on_the_others(ladder):
    """``fit(rows=...)``: the model is fitted on those rows; a prediction at a left-out row's
    composition conditions on it, as on the rows a cap leaves out."""
    pbe = ladder[ladder.fidelity == "pbe"].reset_index(drop=True)
    rows = np.arange(0, len(pbe), 3)
    reg = MultiFidelityRegressor("single", **FAST).fit(pbe, rows=rows)
    np.testing.assert_array_equal(reg.train_rows_, rows)
    f = reg.dataset_.frame
    out = f[~f.index.isin(rows)].drop_duplicates("composition", keep=False).head(5)
    mean, _ = reg.predict(out.formula.tolist(), True)
    alone = MultiFidelityRegressor("single", **FAST).fit(pbe.iloc[rows])
    far, _ = alone.predict(out.formula.tolist(), True)
    # the own row pulls each prediction towards its value
    assert np.abs(mean - out.value.to_numpy()).sum() < np.abs(far - out.value.to_numpy()).sum()


@pytest.mark.parametrize("rows, candidates, match", [
    ([0, 1, 2], ["LiBr"], "rows= or candidates=, not both"),
    ([0, 1, 10_000], None, "position 10000, outside"),
    ([[0, 1]], None, "1-D sequence of integer"),
    ([0.5, 1.5], None, "1-D sequence of integer"),
])  # fmt: skip
def test_fit_rows_are_checked(ladder, rows, candidates, match):
    pbe = ladder[ladder.fidelity == "pbe"]
    with pytest.raises(InputDataError, match=match):
        MultiFidelityRegressor("single", **FAST).fit(pbe, candidates, rows=rows)


def test_fit_rows_take_a_boolean_mask_and_a_refused_fit_changes_nothing(ladder):
    pbe = ladder[ladder.fidelity == "pbe"].reset_index(drop=True)
    mask = np.arange(len(pbe)) % 3 == 0
    reg = MultiFidelityRegressor("single", **FAST).fit(pbe, rows=mask)
    np.testing.assert_array_equal(reg.train_rows_, np.flatnonzero(mask))
    before = reg.predict(["GaN", "Si"], True)
    for bad in ([0], mask[:-1]):  # too few target rows; a mask of another length
        with pytest.raises(InputDataError):
            reg.fit(pbe.iloc[:100], rows=bad)
    with pytest.raises(InputDataError, match="rows= or candidates="):
        reg.fit(pbe.iloc[:100], ["GaN"], rows=[0, 1, 2])
    np.testing.assert_array_equal(reg.predict(["GaN", "Si"], True), before)


def test_fit_rows_need_two_target_rows(ladder):
    top = np.flatnonzero(ladder.fidelity.to_numpy() == "expt")
    with pytest.raises(InputDataError, match="1 row.s. of the target fidelity 'expt'"):
        MultiFidelityRegressor("ar1", **FAST).fit(ladder, rows=top[:1])


def test_a_saved_hurdle_reads_its_left_out_pbe_gaps_after_loading(hurdle, tmp_path):
    lat = hurdle.latent_
    f = lat.dataset_.frame
    left = f[~f.index.isin(lat.train_rows_)].formula.drop_duplicates().head(6).tolist()
    loaded = HurdleRegressor.load(hurdle.save(tmp_path / "h.mfgp"))
    np.testing.assert_array_equal(loaded.latent_.train_rows_, lat.train_rows_)
    assert loaded.latent_.dataset_.n == lat.dataset_.n
    np.testing.assert_array_equal(loaded.predict_proba(left), hurdle.predict_proba(left))
    np.testing.assert_array_equal(loaded.predict(left), hurdle.predict(left))


def test_a_classifier_on_a_capped_latent_is_the_same_alone_or_in_a_batch(ladder):
    latent = MultiFidelityRegressor("ar1", max_rows_per_fidelity=CAP, **FAST).fit(ladder)
    labels = ladder.assign(value=(ladder.value == 0).astype(float))
    clf = MetalClassifier(False, latent=latent, num_inducing=10, epochs=5,
                          progress=False).fit(labels)  # fmt: skip
    asked = _asked(latent)
    p = clf.predict_proba(asked)[:, 1]
    alone = np.array([clf.predict_proba([x])[0, 1] for x in asked])
    np.testing.assert_allclose(p, alone, **TIGHT)


# -- the noise of a composition's own rows: the likelihood's, read off the prior ------------------

@pytest.mark.parametrize("architecture", ["ar1", "multitask"])
def test_own_row_noise_is_read_off_the_prior(ladder, architecture, monkeypatch):
    """Each own row's noise costs a kernel diagonal, not a predictive variance (a solve against
    every training row): the posterior is asked at no more than 2 rows per fidelity, to check
    the prior's noise; the predictions are those of the posterior's noise at every row."""
    import gpytorch

    import mfgp.predict as P

    reg = _fit(ladder, architecture)
    asked = _asked(reg)
    counted = []
    original = P.predict_marginals

    def counting(model, X, **kw):
        if kw.get("observation_noise") and not gpytorch.settings.prior_mode.on():
            counted.append(X.shape[0])
        return original(model, X, **kw)

    monkeypatch.setattr(P, "predict_marginals", counting)
    mean, std = reg.predict(asked, return_std=True)
    fidelities = len(reg.dataset_.fidelities)
    assert 0 < sum(counted) <= 2 * fidelities, counted
    monkeypatch.setattr(P, "predict_marginals", original)
    monkeypatch.setattr(P, "_noise_variance", lambda m, X, b, mb: P._posterior_noise(m, X, b, mb))
    mean0, std0 = reg.predict(asked, return_std=True)
    np.testing.assert_allclose(mean, mean0, **TIGHT)
    np.testing.assert_allclose(std, std0, **TIGHT)


def test_own_row_noise_falls_back_where_the_prior_differs():
    """A likelihood whose noise the prior does not give (here: a wrapper that adds 1 to the
    prior's noisy variance) gets the posterior's noise at every row."""
    import types

    import gpytorch
    from botorch.models import SingleTaskGP

    import mfgp.predict as P

    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 3, generator=g, dtype=torch.float64)
    X[:, -1] = (X[:, -1] > 0.5).double()
    gp = SingleTaskGP(X, torch.sin(6 * X[:, :1]))
    gp.eval()

    class PriorNoiseDiffers(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def posterior(self, Xq, observation_noise=False, **kw):
            post = self.inner.posterior(Xq, observation_noise=observation_noise, **kw)
            if observation_noise and gpytorch.settings.prior_mode.on():
                return types.SimpleNamespace(mean=post.mean, variance=post.variance + 1.0)
            return post

    model = PriorNoiseDiffers(gp)
    Q = torch.rand(7, 3, generator=g, dtype=torch.float64)
    Q[:, -1] = torch.tensor([0, 1, 0, 1, 1, 0, 0], dtype=torch.float64)
    expected = P._posterior_noise(model, Q, 64, 2**20)
    got = P._noise_variance(model, Q, 64, 2**20)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    plain = P._noise_variance(gp, Q, 64, 2**20)  # the unwrapped GP: the prior's noise is right
    torch.testing.assert_close(plain, P._posterior_noise(gp, Q, 64, 2**20), rtol=1e-9,
                               atol=1e-12)  # fmt: skip
    assert P._noise_variance(gp, Q[:0], 64, 2**20).shape == (0,)
