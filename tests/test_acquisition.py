"""Pool acquisitions: exact against brute force, per unit cost, diverse batches."""

import numpy as np
import pytest
import torch

from mfgp.acquisition import (
    GreedyMean,
    KnowledgeGradient,
    LearnMap,
    MaxValueEntropy,
    Uncertainty,
    UpperConfidenceBound,
    WindowHits,
    envelope_lines,
    expected_max_of_lines,
    expected_max_of_lines_batch,
    make_objective,
    marginal_moments,
    max_value_quantiles,
    pool_moments,
    select_batch,
    twin_moments,
)
from mfgp.exceptions import InputDataError
from mfgp.fit import fit_gp
from mfgp.models import AR1GP

DT = torch.float64


def with_fid(x, t):
    return torch.cat([x, torch.full((x.shape[0], 1), float(t), dtype=DT)], dim=-1)


@pytest.fixture(scope="module")
def setting():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(40, 2, generator=g, dtype=DT)
    x1 = x0[:8]

    def f0(x):
        return torch.sin(6 * x[:, :1]) + x[:, 1:]

    X = torch.cat([with_fid(x0, 0), with_fid(x1, 1)])
    Y = torch.cat([f0(x0), 1.5 * f0(x1) + 0.3]) + 0.05 * torch.randn(48, 1, generator=g, dtype=DT)
    model = AR1GP(X, Y)
    fit_gp(model, max_iter=40)
    xp = torch.rand(25, 2, generator=g, dtype=DT)
    R = with_fid(xp, 1)
    C = torch.cat([R, with_fid(xp, 0)])
    return model, C, R


def test_pool_moments_match_the_joint_posterior(setting):
    model, C, R = setting
    mom = pool_moments(model, C, R, batch_size=7)  # batches must not change anything
    with torch.no_grad():
        joint = model.posterior(torch.cat([C, R]))
        cov = joint.distribution.covariance_matrix
        noisy = model.posterior(C, observation_noise=True).variance.reshape(-1)
    n = C.shape[0]
    assert torch.allclose(mom.cross, cov[n:, :n], atol=1e-10)
    assert torch.allclose(mom.var_y, noisy, atol=1e-10)
    assert torch.allclose(mom.mean_ref, joint.mean.reshape(-1)[n:], atol=1e-10)
    assert (mom.var_y > mom.var_f).all()  # observation noise on the candidates' own variance


def test_learn_map_is_the_exact_variance_reduction(setting):
    model, C, R = setting
    mom = pool_moments(model, C, R)
    cost = torch.ones(C.shape[0], dtype=DT)
    score = LearnMap().score(mom, cost=cost, is_target=C[:, -1] == 1)
    with torch.no_grad():
        before = model.posterior(R).variance.reshape(-1)
        for i in (0, 3, 30, 44):
            after = model.conditioned_on(C[i : i + 1], torch.zeros(1, 1, dtype=DT))
            brute = (before - after.posterior(R).variance.reshape(-1)).mean()
            assert torch.allclose(score[i], brute, rtol=1e-8, atol=1e-12), i
    # per unit cost: a 10x dearer row scores 10x lower
    dear = LearnMap().score(mom, cost=cost * 10, is_target=C[:, -1] == 1)
    assert torch.allclose(dear * 10, score)


def test_expected_max_of_lines_is_exact():
    g = np.random.default_rng(0)
    for _ in range(5):
        a, b = g.normal(size=12), g.normal(size=12)
        b[3] = b[4]  # equal slopes
        z = g.standard_normal(400_000)
        mc = np.max(a[:, None] + b[:, None] * z[None, :], axis=0).mean()
        assert abs(expected_max_of_lines(a, b) - mc) < 0.01
    assert expected_max_of_lines(np.array([1.0]), np.array([2.0])) == pytest.approx(1.0)


def test_expected_max_of_lines_batch_equals_the_envelope_of_every_line():
    """The vectorised filter drops only lines that are never the maximum: the same value to
    double precision, with ties, equal slopes, flat candidates and wide scales."""
    g = np.random.default_rng(1)
    for trial in range(30):
        m, n = int(g.integers(1, 200)), int(g.integers(1, 30))
        scale = g.choice([0.01, 1.0, 100.0])
        a, B = g.normal(size=m) * scale, g.normal(size=(m, n)) * g.choice([0.01, 1.0, 100.0])
        if trial % 3 == 0:  # ties and equal slopes
            a, B[: m // 2] = np.round(a, 1), np.round(B[: m // 2], 1)
        if trial % 5 == 0:  # candidates that inform nothing
            B[:, : n // 2] = 0.0
        if trial % 7 == 0:  # most references unaffected, as for a far candidate
            B[g.random(B.shape) < 0.9] = 0.0
        exact = np.array([expected_max_of_lines(a, B[:, c]) for c in range(n)])
        np.testing.assert_allclose(expected_max_of_lines_batch(a, B), exact, rtol=1e-13,
                                   atol=1e-13 * (1 + np.abs(exact).max()))  # fmt: skip
    # the filter does filter: far lines go, the lines of the envelope stay
    a = np.array([0.0, 0.0, -5.0, 1.0])
    B = np.array([[-1.0], [1.0], [0.0], [0.0]])
    assert envelope_lines(a, B)[:, 0].tolist() == [True, True, False, True]
    with pytest.raises(InputDataError, match="finite"):
        expected_max_of_lines_batch(a, np.where(B == 0.0, np.nan, B))


@pytest.fixture(scope="module")
def uncertain_setting():
    """``setting``'s function on 8 low and 2 high points: a posterior whose KG is not ~0."""
    g = torch.Generator().manual_seed(6)
    x0 = torch.rand(8, 2, generator=g, dtype=DT)

    def f0(x):
        return torch.sin(6 * x[:, :1]) + x[:, 1:]

    X = torch.cat([with_fid(x0, 0), with_fid(x0[:2], 1)])
    Y = torch.cat([f0(x0), 1.5 * f0(x0[:2]) + 0.3]) + 0.05 * torch.randn(10, 1, generator=g,
                                                                          dtype=DT)  # fmt: skip
    model = AR1GP(X, Y)
    fit_gp(model, max_iter=40)
    xp = torch.rand(25, 2, generator=g, dtype=DT)
    return model, torch.cat([with_fid(xp, 1), with_fid(xp, 0)]), with_fid(xp, 1)


def test_knowledge_gradient_matches_monte_carlo(uncertain_setting):
    model, C, R = uncertain_setting
    mom = pool_moments(model, C, R)
    kg = KnowledgeGradient().score(mom, cost=torch.ones(C.shape[0], dtype=DT),
                                   is_target=C[:, -1] == 1)  # fmt: skip
    g = torch.Generator().manual_seed(1)
    best = float(mom.mean_ref.max())
    order = torch.argsort(kg, descending=True)
    assert float(kg[order[0]]) > 0.05, "a posterior this certain cannot test the KG"
    low = R.shape[0] + int(torch.argmax(kg[R.shape[0]:]))  # the best low-fidelity row
    assert C[low, -1] == 0 and float(kg[low]) > 0.01, float(kg[low])
    for i in (int(order[0]), low):
        # the model conditioned on y at candidate i: its mean at the references is a + b y
        # (three conditionings check that, by the model itself), so the Monte Carlo draws of
        # y need no conditioning each
        with torch.no_grad():
            ys = mom.mean[i] + mom.var_y[i].sqrt() * torch.tensor([-1.0, 0.0, 1.7], dtype=DT)
            means = [model.conditioned_on(C[i : i + 1], y.reshape(1, 1)).posterior(R).mean
                     .reshape(-1) for y in ys]  # fmt: skip
        b = (means[2] - means[1]) / (ys[2] - ys[1])
        a = means[1] - b * ys[1]
        assert torch.allclose(a + b * ys[0], means[0], atol=1e-8), "conditioning is not linear"
        z = torch.randn(100_000, generator=g, dtype=DT)
        z = torch.cat([z, -z])  # antithetic
        y = mom.mean[i] + mom.var_y[i].sqrt() * z
        vals = (a.unsqueeze(0) + b.unsqueeze(0) * y.unsqueeze(-1)).amax(-1).numpy()
        mc = np.mean(vals) - best
        se = np.std(vals) / np.sqrt(len(vals))
        assert abs(float(kg[i]) - mc) < 4 * se + 1e-4, (i, float(kg[i]), mc, se)


def test_max_value_quantiles_match_the_maximum_of_samples():
    g = torch.Generator().manual_seed(2)
    mean, std = torch.randn(30, generator=g, dtype=DT), torch.rand(30, generator=g, dtype=DT)
    q = max_value_quantiles(mean, std + 0.05, 16)
    draws = (mean + (std + 0.05) * torch.randn(200_000, 30, generator=g, dtype=DT)).amax(-1)
    levels = (torch.arange(16, dtype=DT) + 0.5) / 16
    empirical = (draws[:, None] <= q[None, :]).to(DT).mean(0)
    assert torch.allclose(empirical, levels, atol=0.005), (empirical, levels)


def test_max_value_entropy_matches_monte_carlo(setting):
    """Each candidate's gain against a brute-force estimate of the same truncation.

    For each quantile f* of the pool's maximum: draw (f_T(x_c), y_c) from the model's joint
    posterior, keep the draws with f_T(x_c) <= f*, and take -1/2 log of the kept y_c's
    variance over its prior variance; average over the quantiles.
    """
    model, C, R = setting
    mom = pool_moments(model, C, R)
    cost = torch.ones(C.shape[0], dtype=DT)
    mes = MaxValueEntropy(samples=8)
    score = mes.score(mom, cost=cost, is_target=C[:, -1] == 1, model=model, C=C, R=R)
    assert torch.isfinite(score).all() and (score >= 0).all()
    # the quantiles are of the maximum over the pool's compositions at the target (R here)
    with torch.no_grad():
        post = model.posterior(R)
    f_star = max_value_quantiles(post.mean.reshape(-1), post.variance.reshape(-1).sqrt(), 8)
    g = torch.Generator().manual_seed(3)
    lower = 25 + int(score[25:].argmax())  # the best lower-fidelity row
    for i in (int(score.argmax()), int(score[:25].argmin()), lower, 30):
        twin = C[i : i + 1].clone()
        twin[:, -1] = 1.0
        with torch.no_grad():
            joint = model.posterior(torch.cat([twin, C[i : i + 1]]))
            mu = joint.mean.reshape(-1)
            S = joint.distribution.covariance_matrix.clone()
            S[1, 1] = model.posterior(C[i : i + 1], observation_noise=True).variance.squeeze()
        draws = mu + torch.randn(400_000, 2, generator=g, dtype=DT) @ torch.linalg.cholesky(S).T
        # against the draws' own variance: no truncation gives exactly 0
        gains = [-0.5 * torch.log(draws[draws[:, 0] <= f, 1].var() / draws[:, 1].var())
                 for f in f_star]  # fmt: skip
        brute = float(torch.stack(gains).mean())
        assert abs(float(score[i]) - brute) < 0.03 * brute + 2e-3, (i, float(score[i]), brute)
    # per unit cost, and twin moments agree with the joint posterior
    assert torch.allclose(mes.score(mom, cost=cost * 4, is_target=C[:, -1] == 1, model=model,
                                    C=C, R=R) * 4, score)  # fmt: skip
    mean_g, var_g, cov = twin_moments(model, C[30:31], 1.0)
    with torch.no_grad():
        joint = model.posterior(torch.cat([R[5:6], C[30:31]]))  # C[30] is R[5] at fidelity 0
    S = joint.distribution.covariance_matrix
    assert torch.allclose(torch.stack([var_g[0], cov[0]]), S[0], atol=1e-10)
    # a lower-fidelity row is worth less than its target twin at equal cost; 50x cheaper, more
    t = int(score[:25].argmax())
    assert 0 < score[t + 25] < score[t]
    cheap = torch.where(C[:, -1] == 1, cost, cost / 50)
    cheap_score = mes.score(mom, cost=cheap, is_target=C[:, -1] == 1, model=model, C=C, R=R)
    assert cheap_score[t + 25] > cheap_score[t]


def test_batches_are_diverse_and_target_only_objectives_skip_lower_rows(setting):
    model, C, R = setting
    groups = np.concatenate([np.arange(25), np.arange(25)])  # row i and i + 25: one composition
    sel = select_batch(model, C, LearnMap(), q=5, R=R, groups=groups)
    assert len(set(groups[sel.rows])) == 5
    ucb = select_batch(model, C, UpperConfidenceBound(), q=3, is_target=C[:, -1] == 1)
    assert all(i < 25 for i in ucb.rows) and np.isinf(ucb.first_scores[25:]).all()
    # the second choice of a greedy batch sees the first one's information
    one = select_batch(model, C, LearnMap(), q=1, R=R)
    two = select_batch(model, C, LearnMap(), q=2, R=R)
    assert one.rows[0] == two.rows[0] and two.scores[1] < two.scores[0]


@pytest.mark.parametrize("objective", [LearnMap(), KnowledgeGradient(),
                                       UpperConfidenceBound(), WindowHits(0.0, 1.0)])
def test_rank_one_updates_give_the_batch_of_fantasy_models(setting, objective):
    """The fast path (one pass, rank-1 updates) against conditioning the model on fantasies."""
    model, C, R = setting
    cost = torch.where(C[:, -1] == 1, 10.0, 1.0).to(DT)
    kw = dict(q=5, R=R, cost=cost, is_target=C[:, -1] == 1)
    fast = select_batch(model, C, objective, updates=True, **kw)
    slow = select_batch(model, C, objective, updates=False, **kw)
    assert fast.rows == slow.rows
    assert np.allclose(fast.scores, slow.scores, rtol=1e-7, atol=1e-12)


def test_kept_factor_and_recomputed_covariances_agree(setting):
    from mfgp.acquisition import GreedyUpdates

    model, C, R = setting
    kept = GreedyUpdates(model, C, R)
    fresh = GreedyUpdates(model, C, R, max_bytes=0)  # no factor kept: a kernel pass a choice
    assert kept.factor is not None and fresh.factor is None
    for row in (3, 30, 3):  # a repeat of one row too
        kept.condition(row)
        fresh.condition(row)
    for name in ("mean", "var_f", "var_y", "mean_ref", "var_ref", "cross"):
        assert torch.allclose(getattr(kept.moments, name), getattr(fresh.moments, name),
                              atol=1e-10), name  # fmt: skip
    # the kept path conditions from the factors alone: no solve against the training rows
    def no_solve(*args, **kwargs):
        raise AssertionError("a choice solved against the training rows")

    solo = GreedyUpdates(model, C, R)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("posterior_covariance", "posterior"):
            mp.setattr(type(model), name, no_solve)
        mp.setattr(torch.linalg, "solve_triangular", no_solve)
        mp.setattr(torch, "cholesky_solve", no_solve)
        for row in (3, 30, 3):
            solo.condition(row)
    assert torch.equal(solo.moments.cross, kept.moments.cross)
    # factor_cross is the posterior covariance, exact and from one low-rank cache
    from mfgp.fastvar import fast_variances

    a, b = model.pool_factor(R), model.pool_factor(C)
    assert torch.allclose(model.factor_cross(a, b), model.posterior_covariance(R, C), atol=1e-10)
    with fast_variances(rank=8):
        fa, fb = model.pool_factor(R), model.pool_factor(C)
        assert torch.allclose(model.factor_cross(fa, fb, torch.tensor([4, 7])),
                              model.posterior_covariance(R, C[[4, 7]]), atol=1e-10)
    with pytest.raises(ValueError, match="same kind"):
        model.factor_cross(a, fb)
    # and both equal the model conditioned on the three fantasies
    X = C[[3, 30, 3]]
    with torch.no_grad():
        y = model.posterior(X).mean.reshape(-1, 1)
        after = model.conditioned_on(X, y)
        var = after.posterior(C).variance.reshape(-1)
    assert torch.allclose(kept.moments.var_f, var, atol=1e-9)


def test_fantasize_falls_back_to_botorch_conditioning():
    """A model without mfgp's block update is conditioned by BoTorch's own fantasy update."""
    from botorch.models import SingleTaskGP

    from mfgp.acquisition import fantasize

    g = torch.Generator().manual_seed(5)
    X = torch.rand(12, 2, generator=g, dtype=DT)
    model = SingleTaskGP(X, torch.sin(4 * X[:, :1]))
    model.eval()
    x = torch.rand(1, 2, generator=g, dtype=DT)
    with torch.no_grad():
        y = model.posterior(x).mean
        new = fantasize(model, x, y)
        before = model.posterior(x).variance
        after = new.posterior(x).variance
    assert float(after) < float(before)
    sel = select_batch(model, torch.rand(20, 2, generator=g, dtype=DT), UpperConfidenceBound(),
                       q=3)  # fmt: skip
    assert len(set(sel.rows)) == 3  # generic path: no posterior_covariance on this model


def test_generic_pool_moments_agree_with_the_fast_path(setting, monkeypatch):
    import mfgp.acquisition.pool as pool

    model, C, R = setting
    fast = pool_moments(model, C, R)
    monkeypatch.setattr(pool, "supports_updates", lambda m: False)
    slow = pool_moments(model, C, R, batch_size=9)
    for name in ("mean", "var_f", "var_y", "mean_ref", "var_ref", "cross"):
        assert torch.allclose(getattr(fast, name), getattr(slow, name), atol=1e-10), name


def _tiny_model():
    X = with_fid(torch.linspace(0, 1, 6, dtype=DT).reshape(-1, 1), 1)
    model = AR1GP(X, torch.sin(5 * X[:, :1]))
    return model, with_fid(torch.tensor([[0.1], [0.55], [0.9]], dtype=DT), 1)


def test_window_probability_and_objective_names():
    w = WindowHits(1.0, 2.0)
    p = w.probability(torch.tensor([1.5, 10.0], dtype=DT), torch.tensor([0.1, 0.1], dtype=DT))
    assert p[0] > 0.99 and p[1] < 1e-6
    assert make_objective({"name": "window", "lo": 0.5, "hi": 1.0}) == WindowHits(0.5, 1.0)
    with pytest.raises(InputDataError, match="unknown objective 'best'"):
        make_objective("best")
    assert make_objective("mes", maximize=False) == MaxValueEntropy(maximize=False)
    mom = marginal_moments(*_tiny_model())
    target = torch.tensor([True, True, False])
    one = torch.ones(3, dtype=DT)
    std = Uncertainty().score(mom, cost=one, is_target=target)
    assert torch.equal(std[:2], mom.var_y[:2].sqrt()) and std[2] == -np.inf
    near = GreedyMean(value=float(mom.mean[1])).score(mom, cost=one, is_target=target)
    assert int(near.argmax()) == 1 and near[2] == -np.inf
    low = GreedyMean(maximize=False).score(mom, cost=one, is_target=target)
    assert int(low.argmax()) == int(mom.mean[:2].argmin())
    with pytest.raises(InputDataError, match="mes needs samples >= 1"):
        MaxValueEntropy(samples=0)
    with pytest.raises(InputDataError, match="window needs lo < hi"):
        WindowHits(2.0, 1.0)
