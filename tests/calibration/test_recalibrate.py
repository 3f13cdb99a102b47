import numpy as np
import pytest

from mfgp.calibration import (
    GaussianPredictive,
    IsotonicRecalibration,
    PointMassMixture,
    VarianceScaling,
    summary,
)
from mfgp.calibration import metrics as M
from mfgp.exceptions import InputDataError, NotFittedError


def make(n, factor, seed):
    r = np.random.default_rng(seed)
    mu = r.normal(size=n)
    true_sd = r.uniform(0.3, 1.5, n)
    y = mu + true_sd * r.normal(size=n)
    return y, mu, true_sd * factor  # the predictor reports a wrong std


@pytest.mark.parametrize("factor", [0.5, 2.0])  # over- and under-confident
def test_variance_scaling_restores_coverage(factor):
    y_cv, mu_cv, sd_cv = make(5000, factor, seed=1)
    y, mu, sd = make(20000, factor, seed=2)  # held-out data, never seen in fit
    before = summary(y, mu, sd).loc["all"]
    assert abs(before["coverage_90"] - 0.9) > 0.09
    vs = VarianceScaling().fit(y_cv, mu_cv, sd_cv)
    assert vs.scale_["all"] == pytest.approx(1 / factor, rel=0.05)
    after = summary(y, mu, vs.transform_std(sd)).loc["all"]
    for level in (50, 68, 90, 95):
        assert after[f"coverage_{level}"] == pytest.approx(level / 100, abs=0.02)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_isotonic_restores_coverage(factor):
    y_cv, mu_cv, sd_cv = make(5000, factor, seed=3)
    y, mu, sd = make(20000, factor, seed=4)
    iso = IsotonicRecalibration().fit(y_cv, GaussianPredictive(mu_cv, sd_cv))
    pred = iso.transform(GaussianPredictive(mu, sd))
    for level in (0.5, 0.68, 0.9, 0.95):
        assert M.coverage(y, pred, level) == pytest.approx(level, abs=0.02)
    assert M.miscalibration_area(y, pred) < 0.02
    assert np.isfinite(pred.log_score(y)).all()
    # a proper score improves too
    assert M.nlpd(y, pred) < M.nlpd(y, GaussianPredictive(mu, sd))


def test_per_group_scaling():
    y1, m1, s1 = make(4000, 0.5, 5)
    y2, m2, s2 = make(4000, 2.0, 6)
    g = ["pbe"] * 4000 + ["expt"] * 4000
    vs = VarianceScaling().fit(np.r_[y1, y2], np.r_[m1, m2], np.r_[s1, s2], groups=g)
    assert vs.scale_["pbe"] == pytest.approx(2.0, rel=0.06)
    assert vs.scale_["expt"] == pytest.approx(0.5, rel=0.06)
    with pytest.raises(InputDataError, match="'hse'"):
        vs.transform_std([1.0], groups=["hse"])


def test_not_fitted():
    with pytest.raises(NotFittedError):
        VarianceScaling().transform_std([1.0])
    with pytest.raises(NotFittedError):
        IsotonicRecalibration().transform(GaussianPredictive([0.0], [1.0]))


def test_isotonic_density_stays_finite_in_the_far_tail():
    # an over-confident model: some CV residuals so large that their PIT values round to within
    # a few ulps of 1, then a held-out residual whose PIT is exactly 1.0; the map's last knots
    # would be a hair apart with equal values: a zero slope, a log density of -inf
    r = np.random.default_rng(0)
    n = 2000
    mu, sd = r.normal(size=n), np.ones(n)
    y = mu + r.normal(size=n)
    far = r.random(n) < 0.05
    y[far] = mu[far] + r.uniform(8.1, 8.3, far.sum())  # 1 - PIT ~ 1e-16
    iso = IsotonicRecalibration().fit(y, GaussianPredictive(mu, sd))
    knots, mapped = iso.maps_["all"]
    assert (np.diff(knots) > 0).all() and (np.diff(mapped) > 0).all()
    y_new = np.array([0.0, 3.0, 9.0, 20.0, -20.0])
    pred = iso.transform(GaussianPredictive(np.zeros(5), np.ones(5)))
    assert GaussianPredictive(np.zeros(5), np.ones(5)).cdf(y_new)[3] == 1.0
    assert np.isfinite(pred.log_score(y_new)).all()


def make_hurdle(n, seed, power=1.0):
    """Zero-inflated values: P(zero) = w**power while the predictive says w (calibrated for
    power 1), the positive part heavy-tailed in softplus space while the predictive's
    continuous part is a softplus-normal (too wide in its middle)."""
    from mfgp.calibration import SoftplusNormalPredictive, softplus

    r = np.random.default_rng(seed)
    w = r.uniform(0.05, 0.95, n)
    mu = r.normal(1.0, 0.5, n)
    zero = r.random(n) < w**power
    y = np.where(zero, 0.0, softplus(mu + 0.3 * r.standard_t(2.5, n)))
    sigma = np.full(n, 0.3 * np.sqrt(2.5 / 0.5))  # the t's std: right in the tails only
    return y, PointMassMixture(w, SoftplusNormalPredictive(mu, sigma))


def test_isotonic_on_a_point_mass_mixture_maps_each_part():
    y_cv, pred_cv = make_hurdle(6000, seed=7)
    y, pred = make_hurdle(20000, seed=8)
    assert abs(M.coverage(y, pred, 0.5) - 0.5) > 0.03  # miscalibrated in the middle
    # the continuous part alone: the weights are kept, and already calibrated here
    iso = IsotonicRecalibration(mixture_weight=False).fit(y_cv, pred_cv)
    out = iso.transform(pred)
    assert isinstance(out, PointMassMixture) and not iso.weight_maps_
    np.testing.assert_array_equal(out.weight, pred.weight)
    for level in (0.5, 0.68, 0.9, 0.95):
        assert M.coverage(y, out, level) == pytest.approx(level, abs=0.02)
    off = y > 0
    np.testing.assert_array_equal(out.log_score(y)[~off], pred.log_score(y)[~off])
    assert np.isfinite(out.log_score(y)).all()
    assert M.nlpd(y, out) < M.nlpd(y, pred)
    part = out.subset(np.arange(10))  # the mapped part subsets with its points
    np.testing.assert_allclose(part.cdf(y[:10]), out.cdf(y)[:10])


def test_isotonic_on_a_point_mass_mixture_recalibrates_its_weight():
    # P(zero) is w**2 but the predictive says w: the atom is too likely
    y_cv, pred_cv = make_hurdle(6000, seed=9, power=2.0)
    y, pred = make_hurdle(20000, seed=10, power=2.0)
    kept = IsotonicRecalibration(mixture_weight=False).fit(y_cv, pred_cv).transform(pred)
    iso = IsotonicRecalibration().fit(y_cv, pred_cv)
    out = iso.transform(pred)
    assert 0 < out.weight.min() and out.weight.max() < 1  # mixed with the identity
    assert np.abs(out.weight - pred.weight**2).mean() < 0.02  # the true P(zero)
    assert np.abs(pred.weight - pred.weight**2).mean() > 0.15
    for level in (0.5, 0.68, 0.9, 0.95):
        assert M.coverage(y, out, level) == pytest.approx(level, abs=0.02)
    assert M.nlpd(y, out) < M.nlpd(y, kept) - 0.02  # the log score sees the atom's mass


def test_isotonic_on_a_mixture_needs_values_off_the_atom():
    pred = PointMassMixture([0.5, 0.5], GaussianPredictive([1.0, 1.0], [1.0, 1.0]))
    with pytest.raises(InputDataError, match="atom at 0"):
        IsotonicRecalibration().fit([0.0, 0.0], pred)
