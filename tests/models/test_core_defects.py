"""Silent wrong answers of the core (issue 13): each test failed on the code before its fix."""

import math
import warnings

import pytest
import torch
from botorch.acquisition import qLogExpectedImprovement, qNegIntegratedPosteriorVariance
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.errors import NanError

import mfgp.fit.exact as exactmod
from mfgp.exceptions import InputDataError, NumericalError
from mfgp.fit import fit_gp
from mfgp.models import AR1GP, ExplicitLatentGP, FeatureMap, MultiTaskGP, SingleFidelityGP
from mfgp.models.specs import FitOptions, LatentChainSpec

DT = torch.float64


def with_fid(x, level):
    return torch.cat([x, torch.full_like(x[..., :1], float(level))], -1)


def f_lo(x):
    return torch.sin(8 * x) + x


@pytest.fixture(scope="module")
def chain_data():
    g = torch.Generator().manual_seed(0)
    xl, xh = torch.rand(60, 1, generator=g, dtype=DT), torch.rand(15, 1, generator=g, dtype=DT)
    X = torch.cat([with_fid(xl, 0), with_fid(xh, 1)])
    Y = torch.cat([f_lo(xl), 2 * f_lo(xh) + 0.3 * torch.cos(3 * xh)])
    return X, Y, xh


def training_latents(model):
    gp = model.gp
    gp.train()  # BoTorch: the untransformed training inputs
    z = gp.train_inputs[0][:, -2].clone()
    gp.eval()
    return z


def test_latent_training_rows_follow_the_fitted_lower_level(chain_data):
    X, Y, xh = chain_data
    low_rows = X[:, -1] == 0
    # built before the lower level is fitted, as the facade used to
    low = SingleFidelityGP(X[low_rows], Y[low_rows])
    high = ExplicitLatentGP(X[~low_rows], Y[~low_rows], latent_model=low)
    fit_gp(low, max_iter=50)
    fit_gp(high, max_iter=30)
    fitted = low.posterior(with_fid(xh, 0)).mean.squeeze(-1).detach()
    assert torch.allclose(training_latents(high), fitted, atol=1e-8)
    # and the chain builder fits bottom-up
    spec = LatentChainSpec(observed=False)
    top = spec.build(X, Y)
    reports = spec.fit(top, FitOptions(max_iter=30))
    assert len(reports) == 2
    fitted = top.latent_model.posterior(with_fid(xh, 0)).mean.squeeze(-1).detach()
    assert torch.allclose(training_latents(top), fitted, atol=1e-8)


def test_observed_latents_are_found_whatever_the_extractor_batch(chain_data):
    X, Y, xh = chain_data
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh()).float()
    fmap = FeatureMap(extractor=net)
    obs = (torch.cat([X, with_fid(xh, 0)]), torch.cat([Y, f_lo(xh)]))  # lo known at xh too
    spec = LatentChainSpec()
    top = spec.build(X, Y, feature_map=fmap, observations=obs)
    spec.fit(top, FitOptions(max_iter=10))
    # 500 rows, the observed ones among them: float32 features differ across batch sizes, the
    # lookup keys on the raw (float64) inputs
    g = torch.Generator().manual_seed(3)
    queries = with_fid(torch.cat([xh, torch.rand(485, 1, generator=g, dtype=DT)]), 1)
    known = top.latent_known(queries)
    assert known[:15].all()
    one = torch.stack([top.latent_known(queries[i : i + 1])[0] for i in range(15)])
    assert one.all()


def test_cholesky_cache_follows_new_training_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, generator=g, dtype=DT)
    y = torch.sin(6 * x)
    model = SingleFidelityGP(with_fid(x, 0), y)
    fit_gp(model, max_iter=10)
    Xq = with_fid(torch.linspace(0, 1, 7, dtype=DT).unsqueeze(-1), 0)
    wrong = 0
    for trial in range(20):
        x_new = torch.rand(40, 1, generator=g, dtype=DT)
        model.posterior(Xq)  # build the cache on the current data
        new = model.transform_inputs(with_fid(x_new, 0))  # eval mode holds transformed inputs
        if trial % 2:
            model.set_train_data(new, model.train_targets, strict=False)
        else:  # assigned directly, bypassing set_train_data: the key still sees it
            model.train_inputs = (new,)
        got = model.posterior(Xq).mean
        model.clear_cache()
        expected = model.posterior(Xq).mean
        wrong += not torch.allclose(got, expected)
    assert wrong == 0


def test_cholesky_cache_follows_fixed_noise():
    x = torch.linspace(0, 1, 30, dtype=DT).unsqueeze(-1)
    model = SingleFidelityGP(with_fid(x, 0), torch.sin(6 * x), torch.full((30, 1), 1e-3, dtype=DT))
    model.eval()
    Xq = with_fid(torch.tensor([[0.5]], dtype=DT), 0)
    before = model.posterior(Xq).variance
    model.likelihood.noise = model.likelihood.noise * 100
    assert not torch.allclose(model.posterior(Xq).variance, before)


def test_fantasies_leave_the_fast_path_on():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(30, 2, generator=g, dtype=DT)
    X[:, -1] = (X[:, 0] > 0.5).double()
    model = AR1GP(X, torch.sin(6 * X[:, :1]))
    fit_gp(model, max_iter=5)
    acq = qNegIntegratedPosteriorVariance(model, mc_points=torch.rand(16, 2, dtype=DT))
    acq(torch.rand(3, 1, 2, dtype=DT))
    assert model.prediction_strategy is None
    calls = []
    real = model._cached_posterior
    model._cached_posterior = lambda X: calls.append(1) or real(X)
    model.posterior(X[:4])
    assert calls == [1]


def test_fit_report_loss_is_per_datum_like_the_recursive_trainer():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, generator=g, dtype=DT)
    model = SingleFidelityGP(with_fid(x, 0), torch.sin(6 * x))
    report = fit_gp(model, max_iter=20, max_fit_points=None)
    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with torch.no_grad():
        X, y = model.train_inputs[0], model.train_targets
        per_datum = float(-mll(model(X), y))
    model.eval()
    assert report.loss == pytest.approx(per_datum, rel=1e-6)
    assert report.losses == [pytest.approx(report.loss)]


def test_explicit_latent_has_a_batch_shape_and_fantasizes(chain_data):
    X, Y, _ = chain_data
    spec = LatentChainSpec(n_samples=8)
    top = spec.build(X, Y)
    spec.fit(top, FitOptions(max_iter=5))
    assert top.batch_shape == torch.Size([])
    acq = qNegIntegratedPosteriorVariance(top, mc_points=with_fid(torch.rand(8, 1, dtype=DT), 1))
    value = acq(with_fid(torch.rand(2, 1, 1, dtype=DT), 1))
    assert value.shape == (2,) and torch.isfinite(value).all()


@pytest.mark.parametrize("cls", [AR1GP, MultiTaskGP])
def test_fractional_or_out_of_range_fidelity_is_refused(cls):
    X = torch.rand(10, 2, dtype=DT)
    X[:, -1] = torch.tensor([0, 1] * 5, dtype=DT)
    X[3, -1] = 0.5
    with pytest.raises(InputDataError, match="row 3: the fidelity column .* 0.5"):
        cls(X, torch.rand(10, 1, dtype=DT))
    X[3, -1] = 1.0
    with pytest.raises(InputDataError, match=r"row 2: .* 2.0, .* in 0\.\.1"):
        X[2, -1] = 2.0
        cls(X, torch.rand(10, 1, dtype=DT), num_fidelities=2)


def test_conditioned_on_equals_conditioning_on_all_rows():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(60, 2, generator=g, dtype=DT)
    X[:, -1] = (torch.arange(60) % 3 == 0).double()
    Y = torch.sin(6 * X[:, :1]) + X[:, -1:]
    model = AR1GP(X[:40], Y[:40])
    fit_gp(model, max_iter=10)
    Xq = torch.rand(9, 2, generator=g, dtype=DT)
    Xq[:, -1] = 1.0
    before = model.posterior(Xq).mean.detach().clone()
    updated = model.conditioned_on(X[40:], Y[40:])
    full = AR1GP(X, Y)
    full.load_state_dict(model.state_dict(), strict=False)
    full.outcome_transform = model.outcome_transform  # same standardisation as the fit
    full.eval()
    a, b = updated.posterior(Xq), full.posterior(Xq)
    assert torch.allclose(a.mean, b.mean, atol=1e-7)
    assert torch.allclose(a.variance, b.variance, atol=1e-7)
    assert torch.allclose(model.posterior(Xq).mean, before)  # the original is unchanged


def test_batched_posterior_is_one_solve_and_equals_the_loop(monkeypatch):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(200, 2, generator=g, dtype=DT)
    X[:, -1] = (X[:, 0] > 0.3).double()
    model = AR1GP(X, torch.sin(6 * X[:, :1]))
    fit_gp(model, max_iter=5)
    cand = torch.rand(300, 1, 2, generator=g, dtype=DT)
    cand[..., -1] = 1.0
    real = torch.linalg.solve_triangular
    shapes = []

    def spy(A, B, **kw):
        shapes.append((tuple(A.shape), tuple(B.shape)))
        return real(A, B, **kw)

    monkeypatch.setattr(torch.linalg, "solve_triangular", spy)
    kernel_inputs = []
    real_forward = model.covar_module.forward

    def kernel_spy(x1, x2, **kw):
        kernel_inputs.append((tuple(x1.shape), tuple(x2.shape)))
        return real_forward(x1, x2, **kw)

    monkeypatch.setattr(model.covar_module, "forward", kernel_spy)
    with torch.no_grad():
        batched = model.posterior(cand)
    # the training rows enter the kernel once, unbatched (a copy per candidate costs n x d each)
    with_train = [a for a, b in kernel_inputs if len(a) >= 2 and a[-2] == 200]
    assert with_train and all(len(a) == 2 for a in with_train), kernel_inputs
    monkeypatch.setattr(model.covar_module, "forward", real_forward)
    # one unbatched solve: torch would broadcast the n x n factor over a batched right side,
    # copying it once per candidate (469 GB for 500 candidates at n = 10,835)
    assert shapes and all(len(a) == 2 and len(b) == 2 for a, b in shapes), shapes
    monkeypatch.setattr(torch.linalg, "solve_triangular", real)
    loop = torch.cat([model.posterior(c).mean for c in cand[:20]])
    assert torch.allclose(batched.mean[:20].reshape(-1), loop.reshape(-1), atol=1e-10)
    acq = qLogExpectedImprovement(model, best_f=0.5)
    assert acq(cand).shape == (300,)


def test_known_noise_enters_observation_noise_predictions():
    x = torch.linspace(0, 1, 30, dtype=DT).unsqueeze(-1)
    noise = 0.25
    model = SingleFidelityGP(with_fid(x, 0), torch.sin(6 * x), torch.full((30, 1), noise, dtype=DT))
    model.eval()
    Xq = with_fid(torch.tensor([[0.5], [2.0]], dtype=DT), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # GPyTorch's "treated as a no-op" warning
        f = model.posterior(Xq).variance
        y = model.posterior(Xq, observation_noise=True).variance
    assert torch.allclose(y - f, torch.full_like(f, noise), rtol=1e-6)
    tiny = SingleFidelityGP(with_fid(x, 0), 3 * torch.sin(6 * x), torch.full((30, 1), 1e-6, dtype=DT))
    stdv = tiny.outcome_transform.stdvs.squeeze()
    assert torch.allclose(tiny.likelihood.noise * stdv**2, torch.full((30,), 1e-6, dtype=DT))


def test_one_failed_restart_does_not_throw_the_fit_away(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, generator=g, dtype=DT)
    model = SingleFidelityGP(with_fid(x, 0), torch.sin(6 * x))
    state = {"start": 0}
    real_randomize, real_run = exactmod.randomize, exactmod._mll_run

    def randomize(*a, **k):
        state["start"] += 1
        return real_randomize(*a, **k)

    def run(*a, **k):
        if state["start"] == 1:
            raise NanError("NaN in the Cholesky")
        return real_run(*a, **k)

    monkeypatch.setattr(exactmod, "randomize", randomize)
    monkeypatch.setattr(exactmod, "_mll_run", run)
    with pytest.warns(UserWarning, match=r"start\(s\) \[1\] failed"):
        report = fit_gp(model, restarts=2, max_iter=10)
    assert report.failed_starts == [1] and math.isinf(report.losses[1])
    assert math.isfinite(report.loss)
    state["start"] = 1  # every start fails: then the fit fails

    def always(*a, **k):
        raise NanError("NaN")

    monkeypatch.setattr(exactmod, "_mll_run", always)
    with pytest.raises(NumericalError, match="every start"):
        fit_gp(SingleFidelityGP(with_fid(x, 0), torch.sin(6 * x)), restarts=1, max_iter=5)
