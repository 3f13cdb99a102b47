import math

import pytest
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement, qNegIntegratedPosteriorVariance

from mfgp.exceptions import ShapeError
from mfgp.fit import fit_gp
from mfgp.kernels import AR1Kernel, LCMKernel, default_data_kernel
from mfgp.models import AR1GP, ExplicitLatentGP, MultiTaskGP, SingleFidelityGP, linear_combination

DT = torch.float64


def with_fid(x, level):
    return torch.cat([x, torch.full_like(x[..., :1], float(level))], -1)


def rel_l2(model, X, y):
    with torch.no_grad():
        p = model.posterior(X).mean
    return float(torch.linalg.norm(p - y) / torch.linalg.norm(y))


@pytest.fixture(scope="module")
def nargp_problem():
    f_lo = lambda x: torch.sin(8 * math.pi * x)  # noqa: E731
    f_hi = lambda x: (x - math.sqrt(2)) * f_lo(x) ** 2  # noqa: E731
    xl = torch.linspace(0, 1, 50, dtype=DT).unsqueeze(-1)
    xh = torch.linspace(0, 1, 14, dtype=DT).unsqueeze(-1)
    xt = torch.linspace(0, 1, 400, dtype=DT).unsqueeze(-1)
    return f_lo, f_hi, xl, xh, xt


def test_ar1_recovers_rho():
    g = torch.Generator().manual_seed(0)
    x_lo, x_hi = torch.rand(60, 1, generator=g, dtype=DT), torch.rand(20, 1, generator=g, dtype=DT)
    f_lo = lambda x: torch.sin(8 * x) + x  # noqa: E731
    X = torch.cat([with_fid(x_lo, 0), with_fid(x_hi, 1)])
    Y = torch.cat([f_lo(x_lo), 2 * f_lo(x_hi) + 0.3 * torch.cos(3 * x_hi)])
    model = AR1GP(X, Y)
    fit_gp(model, restarts=1)
    assert model.rho.item() == pytest.approx(2.0, abs=0.1)


def test_explicit_latent_wins_on_nargp_problem(nargp_problem):
    f_lo, f_hi, xl, xh, xt = nargp_problem
    Xt, yt = with_fid(xt, 1), f_hi(xt)
    low = SingleFidelityGP(with_fid(xl, 0), f_lo(xl))
    fit_gp(low, restarts=2)
    latent = ExplicitLatentGP(with_fid(xh, 1), f_hi(xh), latent_model=low)
    fit_gp(latent, restarts=3)
    ar1 = AR1GP(torch.cat([with_fid(xl, 0), with_fid(xh, 1)]), torch.cat([f_lo(xl), f_hi(xh)]))
    fit_gp(ar1, restarts=3)
    hf = SingleFidelityGP(with_fid(xh, 1), f_hi(xh))
    fit_gp(hf, restarts=3)
    e_lat, e_ar1, e_hf = rel_l2(latent, Xt, yt), rel_l2(ar1, Xt, yt), rel_l2(hf, Xt, yt)
    assert e_lat < 0.2 and e_lat < 0.5 * e_ar1 and e_lat < 0.5 * e_hf, (e_lat, e_ar1, e_hf)


def test_explicit_latent_linear_term_extrapolates_in_the_latent():
    # f_hi = 2 f_lo + smooth delta, high-fidelity points only where |f_lo| < 1.5: predicting
    # the peaks (|f_lo| up to 4) means extrapolating in z, which a stationary k_rho cannot do
    f_lo = lambda x: 3 * torch.sin(8 * x) + x  # noqa: E731
    f_hi = lambda x: 2 * f_lo(x) + 0.3 * torch.cos(3 * x)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    xl = torch.rand(50, 1, generator=g, dtype=DT)
    xh = torch.rand(60, 1, generator=g, dtype=DT)
    xh = xh[f_lo(xh).abs().squeeze(-1) < 1.5][:10]
    xt = torch.linspace(0, 1, 400, dtype=DT).unsqueeze(-1)
    low = SingleFidelityGP(with_fid(xl, 0), f_lo(xl))
    fit_gp(low, restarts=2)
    errors = []
    for linear in (True, False):
        model = ExplicitLatentGP(with_fid(xh, 1), f_hi(xh), latent_model=low, linear=linear)
        fit_gp(model, restarts=3)
        errors.append(rel_l2(model, with_fid(xt, 1), f_hi(xt)))
    assert errors[0] < 0.05 and errors[0] < 0.3 * errors[1], errors


def test_explicit_latent_uses_observed_latent_values():
    # the low fidelity has a rough part (period ~0.06) that a GP on 50 points books as noise;
    # the target depends on it, so only the observed low-fidelity values can carry it
    f_lo = lambda x: torch.sin(6 * x) + 0.5 * torch.sin(97 * x)  # noqa: E731
    f_hi = lambda x: 2 * f_lo(x) + 0.3 * torch.cos(3 * x)  # noqa: E731
    g = torch.Generator().manual_seed(1)
    xl, xh = torch.rand(50, 1, generator=g, dtype=DT), torch.rand(25, 1, generator=g, dtype=DT)
    xt = torch.rand(200, 1, generator=g, dtype=DT)
    low = SingleFidelityGP(with_fid(xl, 0), f_lo(xl))
    fit_gp(low, restarts=1)
    # the low fidelity is known at the training and the test inputs (not used to fit `low`)
    x_obs = torch.cat([xh, xt, xh[:3]])  # repeated rows: their mean is used
    y_obs = torch.cat([f_lo(xh), f_lo(xt), f_lo(xh[:3])])
    Xt, yt = with_fid(xt, 1), f_hi(xt)
    errors = {}
    for observed in (True, False):
        obs = (with_fid(x_obs, 0), y_obs) if observed else None
        model = ExplicitLatentGP(
            with_fid(xh, 1), f_hi(xh), latent_model=low, latent_observations=obs
        )
        fit_gp(model, restarts=2)
        errors[observed] = rel_l2(model, Xt, yt)
        if observed:
            # no observation at x_new: the latent is drawn from `low`'s noisy predictive
            x_new = torch.tensor([[0.3131], [0.7171]], dtype=DT)
            both = model.posterior(with_fid(torch.cat([xt[:2], x_new]), 1)).variance.squeeze(-1)
            assert (both[2:] > 4 * both[:2].max()).all(), both
            # all latents known: one inner evaluation, the same marginals as the sampled path
            alone = model.posterior(with_fid(xt[:2], 1))
            assert torch.allclose(alone.variance.squeeze(-1), both[:2], rtol=1e-6, atol=1e-10)
            assert model.latent_known(with_fid(torch.cat([xt[:2], x_new]), 1)).tolist() == [
                True, True, False, False,
            ]  # fmt: skip
            batched = model.posterior(Xt[:6].reshape(2, 3, 2)).mean
            assert torch.allclose(batched.reshape(6, 1), model.posterior(Xt[:6]).mean)
    assert errors[True] < 0.1 and errors[True] < 0.4 * errors[False], errors
    with pytest.raises(ShapeError, match="finite values"):
        ExplicitLatentGP(with_fid(xh, 1), f_hi(xh), latent_model=low,
                         latent_observations=(with_fid(xh, 0), torch.full_like(xh, math.nan)))  # fmt: skip


def test_ar1_beats_high_fidelity_only_on_forrester():
    f_hi = lambda x: (6 * x - 2) ** 2 * torch.sin(12 * x - 4)  # noqa: E731
    f_lo = lambda x: 0.5 * f_hi(x) + 10 * (x - 0.5) - 5  # noqa: E731
    xl = torch.linspace(0, 1, 11, dtype=DT).unsqueeze(-1)
    xh = torch.tensor([[0.0], [0.4], [0.6], [1.0]], dtype=DT)
    xt = torch.linspace(0, 1, 200, dtype=DT).unsqueeze(-1)
    X, Y = torch.cat([with_fid(xl, 0), with_fid(xh, 1)]), torch.cat([f_lo(xl), f_hi(xh)])
    hf = SingleFidelityGP(with_fid(xh, 1), f_hi(xh))
    fit_gp(hf, restarts=3)
    e_hf = rel_l2(hf, with_fid(xt, 1), f_hi(xt))
    # a deterministic simulator: noise known to be ~0, as in the co-kriging literature
    ar1 = AR1GP(X, Y, train_Yvar=torch.full_like(Y, 1e-4))  # ~4e-6 once standardised
    fit_gp(ar1, restarts=3)
    e_ar1 = rel_l2(ar1, with_fid(xt, 1), f_hi(xt))
    assert e_ar1 < 0.1 and e_ar1 < 0.2 * e_hf, (e_ar1, e_hf)
    assert ar1.rho.item() == pytest.approx(2.0, abs=0.15)
    # with the noise learned from 4 high-fidelity points it still wins clearly
    learned = AR1GP(X, Y)
    fit_gp(learned, restarts=3)
    assert rel_l2(learned, with_fid(xt, 1), f_hi(xt)) < 0.5 * e_hf


def _small_problem(device, n=24, d=3, T=3):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, d, generator=g, dtype=DT)
    fid = torch.arange(n) % T
    X = torch.cat([x, fid.unsqueeze(-1).to(DT)], -1).to(device)
    Y = (torch.sin(3 * x.sum(-1, keepdim=True)) * (1 + 0.5 * fid.unsqueeze(-1))).to(device)
    return X, Y


MODELS = {
    "single": lambda X, Y: SingleFidelityGP(X, Y),
    "ar1": lambda X, Y: AR1GP(X, Y),
    "multitask": lambda X, Y: MultiTaskGP(X, Y, rank=2),
    "lcm": lambda X, Y: MultiTaskGP(X, Y, rank=1, num_latents=2),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_dtype_device_and_psd(name, device):
    X, Y = _small_problem(device)
    model = MODELS[name](X, Y)
    fit_gp(model, max_iter=15)
    Xt = X[:7].clone()
    post = model.posterior(Xt)
    assert post.mean.shape == (7, 1) and post.mean.dtype == DT
    assert post.mean.device.type == device.type
    cov = post.distribution.covariance_matrix
    assert torch.allclose(cov, cov.T, atol=1e-10)
    assert torch.linalg.eigvalsh(cov).min() > -1e-8
    assert model.posterior(Xt.expand(4, 7, 4)).mean.shape == (4, 7, 1)  # batch of q-batches


def test_explicit_latent_shapes_and_psd(device):
    X, Y = _small_problem(device)
    low = AR1GP(X, Y)
    fit_gp(low, max_iter=15)
    top = X[:, -1] == 2
    model = ExplicitLatentGP(X[top], Y[top], latent_model=low, latent_fidelity=1, n_samples=16)
    fit_gp(model, max_iter=15)
    Xq = X[:5].clone()
    Xq[:, -1] = 2  # the model's own level (a lower one is refused: issue 34)
    post = model.posterior(Xq)
    cov = post.distribution.covariance_matrix
    assert post.mean.shape == (5, 1) and post.mean.device.type == device.type
    assert torch.linalg.eigvalsh(cov).min() > -1e-8
    # deterministic: fixed base samples
    assert torch.equal(post.mean, model.posterior(Xq).mean)


@pytest.mark.parametrize("name", ["ar1", "multitask", "single", "latent"])
def test_botorch_acquisitions_run_at_target_fidelity(name):
    X, Y = _small_problem("cpu")
    if name == "latent":
        low = AR1GP(X, Y)
        fit_gp(low, max_iter=10)
        top = X[:, -1] == 2
        model = ExplicitLatentGP(X[top], Y[top], latent_model=low, latent_fidelity=1, n_samples=8)
    else:
        model = MODELS[name](X, Y)
    fit_gp(model, max_iter=10)
    cand = with_fid(torch.rand(5, 1, 3, dtype=DT), 2)  # 5 candidates, q = 1, target fidelity
    nei = qLogNoisyExpectedImprovement(model, X_baseline=X[X[:, -1] == 2], prune_baseline=False)
    assert torch.isfinite(nei(cand)).all()
    nipv = qNegIntegratedPosteriorVariance(
        model, mc_points=with_fid(torch.rand(16, 3, dtype=DT), 2)
    )
    vals = nipv(cand)
    assert vals.shape == (5,) and (vals <= 0).all()
    if name != "latent":
        # measuring at a candidate lowers the integrated variance below the current one (not a
        # theorem for the latent model: its spread across latent draws can grow with a fantasy)
        current = -model.posterior(nipv.mc_points).variance.mean()
        assert (vals > current).all()


@pytest.mark.parametrize("kernel", ["ar1", "ar1_rho_x", "lcm"])
def test_kernel_gradcheck(kernel):
    torch.manual_seed(0)
    kernels = [default_data_kernel(2).double() for _ in range(3)]
    if kernel == "lcm":
        k = LCMKernel(kernels[:2], 3, rank=2)
    else:
        k = AR1Kernel(kernels, rho_dims=2 if kernel == "ar1_rho_x" else None)
    k = k.double()
    if kernel == "ar1_rho_x":
        with torch.no_grad():
            k.rho_weights.copy_(torch.randn(2, 2, dtype=DT))
    fid = torch.tensor([[0.0], [1.0], [2.0], [1.0]], dtype=DT)
    x = torch.rand(4, 2, dtype=DT, requires_grad=True)
    f = lambda x: k(torch.cat([x, fid], -1)).to_dense()  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    if kernel != "lcm":
        X = torch.cat([x.detach(), fid], -1)
        rho = torch.tensor([1.3, -0.4], dtype=DT, requires_grad=True)
        assert torch.autograd.gradcheck(lambda r: _ar1_with(k, "rho", r, X), (rho,))
    if kernel == "ar1_rho_x":
        w = torch.randn(2, 2, dtype=DT, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v: _ar1_with(k, "rho_weights", v, X), (w,))


def _ar1_with(k, name, value, X):
    """The kernel matrix with parameter ``name`` replaced by a plain tensor (for gradcheck)."""
    old = getattr(k, name)
    delattr(k, name)
    setattr(k, name, value)
    try:
        return k(X).to_dense()
    finally:
        delattr(k, name)
        k.register_parameter(name, old)


def test_kernel_diag_and_batch_agree():
    k = AR1Kernel([default_data_kernel(2) for _ in range(2)]).double()
    X = with_fid(torch.rand(6, 2, dtype=DT), 0)
    X[3:, -1] = 1
    with torch.no_grad():
        full = k(X).to_dense()
        assert torch.allclose(k(X, diag=True), full.diagonal())
        batch = k(torch.stack([X, X.flip(0)])).to_dense()
        assert torch.allclose(batch[0], full) and torch.allclose(batch[1], k(X.flip(0)).to_dense())


def test_composite_variance_matches_monte_carlo():
    g = torch.Generator().manual_seed(3)
    x_lo, x_hi = torch.rand(40, 2, generator=g, dtype=DT), torch.rand(15, 2, generator=g, dtype=DT)
    f = lambda x: torch.sin(4 * x).sum(-1, keepdim=True)  # noqa: E731
    X = torch.cat([with_fid(x_lo, 0), with_fid(x_hi, 1)])
    model = AR1GP(X, torch.cat([f(x_lo), 1.5 * f(x_hi) + 0.1]))
    fit_gp(model, max_iter=30)
    xq = torch.rand(3, 2, generator=g, dtype=DT)
    Xq = torch.cat([with_fid(xq, 1), with_fid(xq[:1], 0)])  # three targets and one low fidelity
    W = torch.tensor([[1.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, -1.0]], dtype=DT)
    mean, var = linear_combination(model, Xq, W)
    draws = model.posterior(Xq).rsample(torch.Size([40000])).squeeze(-1)  # S x 4
    combos = draws @ W.T
    assert torch.allclose(mean, combos.mean(0), atol=0.02)
    assert torch.allclose(var, combos.var(0), rtol=0.05, atol=1e-6)
    # the fidelity difference at one composition is strongly correlated: far below the naive sum
    naive = model.posterior(Xq).variance.squeeze(-1)
    assert var[1] < naive[0] + naive[3]
    with pytest.raises(ShapeError, match="weights have 2 terms but X has 4 rows"):
        linear_combination(model, Xq, torch.ones(2))


def test_input_validation_messages():
    with pytest.raises(ShapeError, match=r"train_Y must be n x 1 .* got \(5,\)"):
        AR1GP(torch.rand(5, 3, dtype=DT), torch.rand(5, dtype=DT))
    with pytest.raises(ShapeError, match="fidelity index"):
        AR1GP(torch.rand(5, 1, dtype=DT), torch.rand(5, 1, dtype=DT))


def test_fit_on_subset_with_known_noise_conditions_on_all_rows():
    X, Y = _small_problem("cpu", n=60)
    Yvar = torch.full_like(Y, 0.01)
    model = AR1GP(X, Y, Yvar)
    report = fit_gp(model, max_iter=10, max_fit_points=20, restarts=1)
    assert report.n_fit < report.n_total == 60
    assert model.train_inputs[0].shape[0] == 60 and model.likelihood.noise.shape[-1] == 60
    assert model.posterior(X[:3]).mean.shape == (3, 1)


@pytest.mark.parametrize("name", ["ar1", "lcm", "single"])
def test_cached_posterior_matches_gpytorch_strategy(name, device):
    from gpytorch.models import ExactGP

    X, Y = _small_problem(device, n=40)
    model = MODELS[name](X, Y)
    fit_gp(model, max_iter=10)
    Xq = torch.rand(3, 5, 4, dtype=DT, device=device)
    Xq[..., -1] = torch.tensor([0.0, 1.0, 2.0, 2.0, 1.0], dtype=DT)
    ours = model.posterior(Xq, observation_noise=True)
    with torch.no_grad():
        ref = ExactGP.__call__(model, model.transform_inputs(Xq))  # GPyTorch's own strategy
    model.prediction_strategy = None
    mvn = model(model.transform_inputs(Xq))
    assert torch.allclose(mvn.mean, ref.mean, atol=1e-8)
    assert torch.allclose(mvn.covariance_matrix, ref.covariance_matrix, atol=1e-8)
    assert ours.mean.shape == (3, 5, 1)
    # gradients reach the query points
    Xg = Xq[0].clone().requires_grad_(True)
    model.posterior(Xg).mean.sum().backward()
    assert Xg.grad is not None and torch.isfinite(Xg.grad).all()
    # a hyperparameter changed in eval mode invalidates the cached factor
    before = model.posterior(Xq[0]).mean.clone()
    with torch.no_grad():
        for k in model.covar_module.modules():
            if hasattr(k, "raw_outputscale"):
                k.raw_outputscale.add_(1.0)
    assert not torch.allclose(model.posterior(Xq[0]).mean, before)


def test_recursive_ar1_level_is_a_regression_with_intercept():
    """A top level that is the one below scaled about 0 (Borehole's shape), with 5 points in 4-D.

    Standardised, ``1.25 f`` is ``f`` scaled about a point far from the origin; one constant
    shared by the levels and fixed after level 0 makes the discrepancy GP carry the offset from
    5 points, which it cannot. A constant per level (``AR1Spec``'s recursive build) can.
    """
    from mfgp.fit import fit_ar1_recursive
    from mfgp.models.specs import AR1Spec

    g = torch.Generator().manual_seed(0)
    d = 4

    def f_low(x):
        return 40 + 10 * torch.sin(3 * x).sum(-1, keepdim=True) + 5 * x.square().sum(-1, keepdim=True)

    xl = torch.rand(60, d, generator=g, dtype=torch.float64)
    X = torch.cat([with_fid(xl, 0), with_fid(xl[:5], 1)])
    Y = torch.cat([f_low(xl), 1.25 * f_low(xl[:5])])
    xt = torch.rand(500, d, generator=g, dtype=torch.float64)
    yt = 1.25 * f_low(xt)

    def rel_rmse(model):
        with torch.no_grad():
            mu = model.posterior(with_fid(xt, 1)).mean
        return float((mu - yt).square().mean().sqrt() / yt.std())

    spec = AR1Spec()
    model = spec.build(X, Y)
    spec.fit(model)
    shared = AR1GP(X, Y)  # one constant for both levels
    fit_ar1_recursive(shared)
    e, e_shared = rel_rmse(model), rel_rmse(shared)
    assert e < 0.1 and e < 0.6 * e_shared, (e, e_shared)
