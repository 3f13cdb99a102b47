from functools import partial

import numpy as np
import pytest
from scipy import integrate, stats

from mfgp.calibration import (
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    SamplePredictive,
    summary,
    summary_mixture,
    summary_samples,
)
from mfgp.calibration import metrics as M
from mfgp.exceptions import InputDataError, NonFiniteValueError, ShapeError

rng = np.random.default_rng(0)
MU = rng.normal(size=40)
SD = rng.uniform(0.3, 2.0, size=40)
Y = MU + SD * rng.normal(size=40)


def crps_numeric(cdf, y, lo, hi):
    f = lambda x: (cdf(x) - (x >= y)) ** 2  # noqa: E731
    return integrate.quad(f, lo, y, limit=200)[0] + integrate.quad(f, y, hi, limit=200)[0]


def test_gaussian_closed_forms_against_scipy():
    p = GaussianPredictive(MU, SD)
    np.testing.assert_allclose(p.log_score(Y), stats.norm.logpdf(Y, MU, SD), rtol=1e-12)
    np.testing.assert_allclose(p.ppf(0.9), stats.norm.ppf(0.9, MU, SD), rtol=1e-12)
    num = [crps_numeric(lambda x, m=m, s=s: stats.norm.cdf(x, m, s), y, m - 12 * s, m + 12 * s)
           for m, s, y in zip(MU[:8], SD[:8], Y[:8])]  # fmt: skip
    np.testing.assert_allclose(GaussianPredictive(MU[:8], SD[:8]).crps(Y[:8]), num, rtol=1e-6)
    # the generic quantile-integral CRPS agrees with the closed form
    generic = super(GaussianPredictive, p).crps(Y)
    np.testing.assert_allclose(generic, p.crps(Y), rtol=2e-3, atol=1e-4)


def test_sample_predictive_matches_gaussian():
    draws = MU + SD * np.random.default_rng(1).normal(size=(20000, 40))
    s, g = SamplePredictive(draws), GaussianPredictive(MU, SD)
    np.testing.assert_allclose(s.crps(Y), g.crps(Y), atol=0.02)
    np.testing.assert_allclose(s.log_score(Y), g.log_score(Y), atol=0.1)  # KDE bias in tails
    np.testing.assert_allclose(s.ppf(0.95), g.ppf(0.95), atol=0.06)


def test_mixture_cdf_crps_and_log_score():
    w = np.array([0.3, 0.7, 0.0, 1.0])
    cont = LogNormalPredictive(np.log([1.0, 2.0, 0.5, 1.0]), [0.4, 0.2, 0.5, 0.3])
    p = PointMassMixture(w, cont)
    y = np.array([0.0, 1.5, 0.7, 0.0])
    # log score: log w on the atom, log((1-w) pdf) off it
    assert p.log_score(y)[0] == pytest.approx(np.log(0.3))
    assert p.log_score(y)[1] == pytest.approx(
        np.log(0.3) + stats.lognorm.logpdf(1.5, 0.2, scale=2.0)
    )
    assert p.log_score(y)[3] == pytest.approx(0.0)

    # CRPS against numerical integration of the mixed CDF
    def mixed_cdf(x, i):
        lognormal = stats.lognorm.cdf(x, cont.sigma[i], scale=np.exp(cont.mu[i]))
        return w[i] * (x >= 0) + (1 - w[i]) * lognormal

    for i in range(3):
        cdf = partial(mixed_cdf, i=i)
        assert p.crps(y)[i] == pytest.approx(
            crps_numeric(cdf, y[i], -1.0, 30.0), rel=3e-3, abs=1e-4
        )
    # quantiles sit on the atom where its mass covers them
    assert p.ppf(0.2)[0] == 0.0 and p.ppf(0.5)[1] == 0.0 and p.ppf(0.5)[2] > 0
    # moments against sampling
    draws = p.sample(40000, seed=3)
    np.testing.assert_allclose(draws.mean(0), p.mean(), rtol=0.03, atol=0.01)
    np.testing.assert_allclose(draws.std(0), p.std(), rtol=0.04, atol=0.01)


def test_softplus_normal_predictive():
    from mfgp.calibration import SoftplusNormalPredictive, softplus, softplus_inverse

    mu, sig = np.array([-3.0, 0.0, 2.0, 40.0]), np.array([0.5, 1.0, 0.3, 0.2])
    p = SoftplusNormalPredictive(mu, sig)
    # the transform: log-like near 0, the identity far from it, and its own inverse
    y = np.array([1e-9, 0.3, 5.0, 60.0])
    np.testing.assert_allclose(softplus(softplus_inverse(y)), y, rtol=1e-12)
    assert softplus_inverse(1e-9) == pytest.approx(np.log(1e-9), abs=1e-8)
    assert softplus_inverse(60.0) == pytest.approx(60.0, abs=1e-12)
    with pytest.raises(InputDataError, match="position 1 has 0.0"):
        softplus_inverse([1.0, 0.0])
    # quantiles invert the CDF; nothing at or below 0
    np.testing.assert_allclose(p.cdf(p.ppf(0.3)), 0.3, atol=1e-12)
    assert (p.cdf(np.zeros(4)) == 0).all() and np.isneginf(p.log_score(np.zeros(4))).all()
    # the density integrates to 1, and its moments match sampling
    for i in range(4):
        q = p.subset([i])
        density = lambda v, q=q: np.exp(q.log_score(np.array([v]))[0])  # noqa: E731
        m = float(q.median()[0])
        total = integrate.quad(density, 0, m)[0] + integrate.quad(density, m, np.inf)[0]
        assert total == pytest.approx(1.0, abs=1e-6)
    draws = softplus(mu + sig * np.random.default_rng(4).normal(size=(400000, 4)))
    np.testing.assert_allclose(p.mean(), draws.mean(0), rtol=4e-3)
    np.testing.assert_allclose(p.std(), draws.std(0), rtol=1e-2)
    # far from 0 it is the Gaussian N(mu, sig)
    assert p.mean()[3] == pytest.approx(40.0, abs=1e-9) and p.std()[3] == pytest.approx(0.2)


def test_mixture_pit_is_uniform_when_calibrated():
    n = 20000
    r = np.random.default_rng(5)
    w = r.uniform(0.1, 0.9, n)
    mu, sig = r.normal(0, 0.5, n), np.full(n, 0.4)
    y = np.where(r.uniform(size=n) < w, 0.0, np.exp(mu + sig * r.normal(size=n)))
    pit = PointMassMixture(w, LogNormalPredictive(mu, sig)).pit(y)
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    df = summary_mixture(y, w, LogNormalPredictive(mu, sig))
    for level in (50, 90, 95):
        assert df.loc["all", f"coverage_{level}"] == pytest.approx(level / 100, abs=0.015)


def test_summary_columns_groups_and_calibrated_coverage():
    n = 30000
    r = np.random.default_rng(2)
    mu, sd = r.normal(size=n), r.uniform(0.5, 1.5, n)
    y = mu + sd * r.normal(size=n)
    groups = np.where(np.arange(n) % 3 == 0, "pbe", "expt")
    df = summary(y, mu, sd, groups=groups)
    for col in [
        "mae",
        "rmse",
        "nlpd",
        "crps",
        "coverage_50",
        "coverage_90",
        "coverage_95",
        "miscalibration_area",
        "sharpness",
        "ence",
    ]:
        assert col in df.columns
    assert list(df.index) == ["all", "pbe", "expt"] and df.loc["pbe", "n"] == 10000
    for level in (50, 68, 90, 95):
        assert df.loc["all", f"coverage_{level}"] == pytest.approx(level / 100, abs=0.01)
    assert df.loc["all", "miscalibration_area"] < 0.01 and df.loc["all", "ence"] < 0.05
    assert df.loc["all", "nlpd"] == pytest.approx(np.mean(-stats.norm.logpdf(y, mu, sd)))
    # an over-confident predictor is caught
    bad = summary(y, mu, sd / 3)
    assert bad.loc["all", "coverage_90"] < 0.5 and bad.loc["all", "miscalibration_area"] > 0.2
    s = summary_samples(y[:500], mu[:500] + sd[:500] * r.normal(size=(4000, 500)))
    assert s.loc["all", "coverage_90"] == pytest.approx(0.9, abs=0.05)


def test_metric_inputs_are_checked():
    with pytest.raises(ShapeError, match="y has 3 points but the prediction has 2"):
        M.mae([1, 2, 3], GaussianPredictive([0, 0], [1, 1]))
    with pytest.raises(NonFiniteValueError, match="point 1: std 0.0"):
        GaussianPredictive([0, 0], [1, 0])


def test_probability_between_counts_the_atom_and_matches_sampling():
    from mfgp.calibration import GaussianPredictive, PointMassMixture

    gauss = GaussianPredictive(np.array([1.4, 3.0]), np.array([0.2, 0.5]))
    mix = PointMassMixture(np.array([0.3, 0.9]), gauss)
    inside = mix.probability_between(0.0, 1.7)  # the atom at 0 is inside
    assert np.allclose(inside, [0.3 + 0.7 * gauss.cdf(np.array([1.7, 1.7]))[0],
                                0.9 + 0.1 * gauss.cdf(np.array([1.7, 1.7]))[1]])  # fmt: skip
    window = mix.probability_between(1.1, 1.7)  # the atom is outside
    draws = mix.sample(40_000, seed=1)
    empirical = ((draws >= 1.1) & (draws <= 1.7)).mean(0)
    assert np.allclose(window, empirical, atol=0.01)
    assert np.allclose(gauss.probability_between(-np.inf, np.inf), 1.0)


def test_concatenate_keeps_each_kind_and_the_order():
    from mfgp.calibration import (
        LogNormalPredictive,
        PointMassMixture,
        SamplePredictive,
        SoftplusNormalPredictive,
        concatenate,
    )
    from mfgp.exceptions import InputDataError

    r = np.random.default_rng(0)
    y = r.uniform(0.1, 2.0, 7)
    kinds = [
        lambda n: GaussianPredictive(r.normal(size=n), r.uniform(0.5, 1, n)),
        lambda n: LogNormalPredictive(r.normal(size=n), r.uniform(0.5, 1, n)),
        lambda n: SoftplusNormalPredictive(r.normal(size=n), r.uniform(0.5, 1, n)),
        lambda n: SamplePredictive(r.normal(size=(50, n))),
        lambda n: PointMassMixture(r.uniform(size=n), SoftplusNormalPredictive(
            r.normal(size=n), r.uniform(0.5, 1, n))),
    ]  # fmt: skip
    for make in kinds:
        a, b = make(3), make(4)
        c = concatenate([a, b])
        assert type(c) is type(a) and c.n == 7
        np.testing.assert_allclose(c.cdf(y), np.r_[a.cdf(y[:3]), b.cdf(y[3:])])
        np.testing.assert_allclose(c.log_score(y), np.r_[a.log_score(y[:3]), b.log_score(y[3:])])
    with pytest.raises(InputDataError, match="part 1 is a LogNormalPredictive"):
        concatenate([kinds[0](2), kinds[1](2)])
    with pytest.raises(InputDataError, match=r"\[20, 50\] draws"):
        concatenate([kinds[3](2), SamplePredictive(r.normal(size=(20, 2)))])
    with pytest.raises(InputDataError, match="at least one"):
        concatenate([])
