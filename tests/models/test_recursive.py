"""The recursive (level-by-level) AR1 fit and the input-dependent scale rho(x)."""

import functools

import pytest
import torch

from mfgp.exceptions import InputDataError
from mfgp.fit import fit_ar1_recursive, fit_gp
from mfgp.fit.recursive import _level_nll, _log_priors, _lower_posterior
from mfgp.models import AR1GP, MultiTaskGP
from tests.models.test_models import rel_l2, with_fid

DT = torch.float64


def two_level(n_lo, n_hi, scale, seed=0, d=1):
    g = torch.Generator().manual_seed(seed)
    x_lo = torch.rand(n_lo, d, generator=g, dtype=DT)
    x_hi = torch.rand(n_hi, d, generator=g, dtype=DT)
    f_lo = lambda x: torch.sin(8 * x[:, :1]) + x[:, :1]  # noqa: E731
    f_hi = lambda x: scale(x) * f_lo(x) + 0.3 * torch.cos(3 * x[:, :1])  # noqa: E731
    X = torch.cat([with_fid(x_lo, 0), with_fid(x_hi, 1)])
    return X, torch.cat([f_lo(x_lo), f_hi(x_hi)]), f_hi


def test_recursive_fit_recovers_rho_and_predicts_as_well_as_joint():
    X, Y, f_hi = two_level(60, 20, lambda x: 2.0)
    xt = torch.rand(300, 1, generator=torch.Generator().manual_seed(1), dtype=DT)
    errors = {}
    for name, fit in [("joint", fit_gp), ("recursive", fit_ar1_recursive)]:
        model = AR1GP(X, Y)
        report = fit(model, restarts=1)
        assert model.rho.item() == pytest.approx(2.0, abs=0.1), name
        errors[name] = rel_l2(model, with_fid(xt, 1), f_hi(xt))
    assert report.n_fit == 80 and len(report.losses) == 2
    assert errors["recursive"] < 0.05 and errors["recursive"] < 1.5 * errors["joint"], errors


def test_level_likelihoods_sum_to_the_joint_marginal_likelihood():
    """The chain rule the recursive fit rests on: sum_t -log p(y_t | y_<t) = -log p(y)."""
    g = torch.Generator().manual_seed(3)
    n = (25, 15, 10)
    X = torch.cat([with_fid(torch.rand(k, 2, generator=g, dtype=DT), t) for t, k in enumerate(n)])
    Y = torch.randn(X.shape[0], 1, generator=g, dtype=DT)
    model = AR1GP(X, Y, rho="linear")
    with torch.no_grad():
        model.covar_module.rho.copy_(torch.tensor([1.4, -0.7]))
        model.covar_module.rho_weights.copy_(torch.randn(2, 2, generator=g, dtype=DT))
        model.likelihood.noise = torch.tensor([0.05, 0.1, 0.2], dtype=DT)
        model.mean_module.constant.fill_(0.3)
        for k in model.covar_module.data_kernels:
            k.base_kernel.lengthscale = torch.rand(1, 2, generator=g, dtype=DT) + 0.2
    model.train()
    Z, y = model.transform_inputs(model.train_inputs[0]), model.train_targets
    levels = Z[:, -1].round().long()
    with torch.no_grad():
        K = model.covar_module(Z).to_dense() + torch.diag(model.likelihood.noise[levels])
        joint = -torch.distributions.MultivariateNormal(
            model.mean_module(Z), covariance_matrix=K
        ).log_prob(y)
        noise_of = lambda rows, t: model.likelihood.noise[t].expand(rows.numel())  # noqa: E731
        total = torch.zeros((), dtype=DT)
        for t in range(3):
            rows = torch.nonzero(levels == t).squeeze(-1)
            m = S = None
            if t > 0:
                below = Z[rows].clone()
                below[:, -1] = t - 1
                m, S, _ = _lower_posterior(model, Z, y, levels, t, below, noise_of, 10_000, g)
            noise = functools.partial(noise_of, rows, t)
            total += _level_nll(model, t, Z[rows], y[rows], noise, m, S, 0.0)
            # _level_nll subtracts the log priors of the level's own parameters: add them back
            kernel = model.covar_module
            total += _log_priors(kernel.data_kernels[t])
            total += model.likelihood.noise_covar.noise_prior.log_prob(noise_of(rows, t)[0])
            if t > 0:
                total += kernel.rho_weights_prior.log_prob(kernel.rho_weights[t - 1]).sum()
    assert float(total) == pytest.approx(float(joint), rel=1e-8)  # jitter 1e-8 in the solve


def test_recursive_fit_moves_only_each_levels_own_parameters(monkeypatch):
    import mfgp.fit.recursive as recmod

    X, Y, _ = two_level(40, 12, lambda x: 2.0)
    X = torch.cat([X, with_fid(torch.rand(8, 1, dtype=DT), 2)])
    Y = torch.cat([Y, torch.randn(8, 1, dtype=DT)])
    model = AR1GP(X, Y)  # every level has rows
    moved = {}
    real = recmod.lbfgs

    def spy(objective, owned, max_iter):
        t = objective.args[1]  # partial(_level_nll, model, t, ..., jitter), flattened
        before = {k: v.clone() for k, v in model.state_dict().items()}
        out = real(objective, owned, max_iter)
        moved[t] = {k: (before[k], v.clone()) for k, v in model.state_dict().items()
                    if not torch.equal(before[k], v)}  # fmt: skip
        return out

    monkeypatch.setattr(recmod, "lbfgs", spy)
    fit_ar1_recursive(model, max_iter=30)
    assert sorted(moved) == [0, 1, 2]
    for t, changes in moved.items():
        own_kernel = [k for k in changes if f"data_kernels.{t}." in k]
        assert own_kernel, (t, list(changes))  # the level's own kernel moved
        for key, (old, new) in changes.items():
            if "data_kernels." in key:
                assert f"data_kernels.{t}." in key, (t, key)
            elif key.endswith("rho"):  # rho_t is entry t - 1; the others stay
                keep = torch.arange(old.numel()) != t - 1
                assert t > 0 and torch.equal(old.reshape(-1)[keep], new.reshape(-1)[keep]), key
            elif "raw_noise" in key:  # a noise per level: entry t
                keep = torch.arange(old.numel()) != t
                assert torch.equal(old.reshape(-1)[keep], new.reshape(-1)[keep]), key
            else:  # the shared constant mean is fitted with level 0 only
                assert t == 0 and "mean_module" in key, (t, key)


def test_recursive_needs_an_ar1_kernel():
    X = with_fid(torch.rand(10, 1, dtype=DT), 0)
    with pytest.raises(TypeError, match="needs an AR1Kernel; MultiTaskGP has LCMKernel"):
        fit_ar1_recursive(MultiTaskGP(X, torch.rand(10, 1, dtype=DT), num_fidelities=2))


def test_rho_of_x_beats_a_constant_rho_when_the_scale_varies():
    X, Y, f_hi = two_level(120, 40, lambda x: 1.0 + 1.5 * x[:, 1:2], d=2)
    xt = torch.rand(400, 2, generator=torch.Generator().manual_seed(2), dtype=DT)
    err = {}
    for rho in ("constant", "linear"):
        model = AR1GP(X, Y, rho=rho)
        fit_ar1_recursive(model, restarts=1)
        err[rho] = rel_l2(model, with_fid(xt, 1), f_hi(xt))
    assert err["linear"] < 0.7 * err["constant"], err
    w = model.covar_module.rho_weights.detach()
    assert w[0, 1] > 0.5 and abs(w[0, 1]) > 3 * abs(w[0, 0]), w  # the scale grows with x_1 only


def test_rho_option_is_validated():
    X = with_fid(torch.rand(10, 1, dtype=DT), 0)
    with pytest.raises(InputDataError, match="rho must be 'constant' or 'linear'; got 'cubic'"):
        AR1GP(X, torch.rand(10, 1, dtype=DT), rho="cubic")


def _park(x):
    """Park's (1991) two-fidelity 4-D function on the unit cube: (low, high)."""
    x1, x2, x3, x4 = x.unbind(-1)
    high = x1 / 2 * (torch.sqrt(1 + (x2 + x3**2) * x4 / x1**2) - 1) + (x1 + 3 * x4) * torch.exp(
        1 + torch.sin(x3)
    )
    low = (1 + torch.sin(x1) / 10) * high - 2 * x1 + x2**2 + x3**2 + 0.5
    return low.unsqueeze(-1), high.unsqueeze(-1)


def test_a_level_with_fewer_rows_than_hyperparameters_keeps_its_discrepancy():
    """5 top-level rows in 4-D (8 hyperparameters): left to itself the level explains its
    residuals by noise, its discrepancy's variance collapses and the predictive is
    overconfident; the sparse rule's prior keeps the discrepancy and calibrates it."""
    from mfgp.fit.recursive import sparse_level

    nll = {"auto": [], False: []}
    for seed in range(4):
        g = torch.Generator().manual_seed(10 + seed)
        x_lo = torch.rand(30, 4, generator=g, dtype=DT).clamp_min(0.02)
        x_hi = x_lo[torch.randperm(30, generator=g)[:5]]
        X = torch.cat([with_fid(x_lo, 0), with_fid(x_hi, 1)])
        Y = torch.cat([_park(x_lo)[0], _park(x_hi)[1]])
        xt = torch.rand(400, 4, generator=g, dtype=DT).clamp_min(0.02)
        yt = _park(xt)[1].squeeze(-1)
        if seed == 0:
            kernel = AR1GP(X, Y).covar_module
            assert sparse_level(kernel, 1, 5) and not sparse_level(kernel, 1, 9)
        for sparse in nll:
            model = AR1GP(X, Y)
            fit_ar1_recursive(model, sparse=sparse)
            if sparse == "auto":
                assert model.covar_module.data_kernels[1].outputscale > 1e-3
            with torch.no_grad():
                post = model.posterior(with_fid(xt, 1), observation_noise=True)
            nll[sparse].append(
                -torch.distributions.Normal(post.mean.squeeze(-1), post.variance.sqrt().squeeze(-1))
                .log_prob(yt)
                .mean()
                .item()
            )
    gain = [b - a for a, b in zip(nll["auto"], nll[False])]
    assert min(gain) > -0.02 and sum(gain) / len(gain) > 0.15, nll


def test_a_sparse_noisy_level_fits_its_own_noise(monkeypatch):
    """10 noisy rows over a noiseless computed level in 8-D (12 hyperparameters): a sparse
    level, like a campaign's first experiments beside PBE. Taking the noise of the level below
    (the rule's first form) makes the predictive overconfident; the level fits its own."""
    import mfgp.fit.recursive as recursive

    nll = {"fit": [], "below": []}
    for seed in range(4):
        X, Y, f_hi = two_level(60, 10, lambda x: 1.5, seed=seed, d=8)
        g = torch.Generator().manual_seed(100 + seed)
        top = X[:, -1] == 1
        Y = Y.clone()
        Y[top] += 0.3 * torch.randn(int(top.sum()), 1, generator=g, dtype=DT)
        xt = torch.rand(300, 8, generator=g, dtype=DT)
        yt = f_hi(xt).squeeze(-1) + 0.3 * torch.randn(300, generator=g, dtype=DT)
        for mode in nll:
            monkeypatch.setattr(recursive, "SPARSE_NOISE", mode)
            model = AR1GP(X, Y)
            assert recursive.sparse_level(model.covar_module, 1, 10)
            fit_ar1_recursive(model)
            noise = model.likelihood.noise.reshape(-1)
            if mode == "fit":
                assert noise[1] > 1e3 * noise[0], noise
            with torch.no_grad():
                post = model.posterior(with_fid(xt, 1), observation_noise=True)
            dist = torch.distributions.Normal(post.mean.squeeze(-1), post.variance.sqrt().squeeze(-1))
            nll[mode].append(-dist.log_prob(yt).mean().item())
    gain = [b - a for a, b in zip(nll["fit"], nll["below"])]
    assert min(gain) > 0 and sum(gain) / len(gain) > 0.03, nll


def test_sparse_takes_auto_or_false():
    X, Y, _ = two_level(10, 3, lambda x: 1.0)
    with pytest.raises(ValueError, match="sparse"):
        fit_ar1_recursive(AR1GP(X, Y), sparse="yes")


def test_sparse_level_development_options_act_on_the_sparse_level_only(monkeypatch):
    """``SPARSE_NOISE_PRIOR``, ``SPARSE_CRITERION`` and ``SPARSE_RHO_PRIOR`` (the options of
    ``benchmarks/diag_*.py``) change the sparse level's fit and nothing below it; left at
    their defaults the fit is the package's."""
    import mfgp.fit.recursive as recursive

    X, Y, _ = two_level(60, 10, lambda x: 1.5, seed=3, d=8)

    def fitted(**options):
        for name, value in options.items():
            monkeypatch.setattr(recursive, name, value)
        model = AR1GP(X, Y)
        assert recursive.sparse_level(model.covar_module, 1, 10)
        fit_ar1_recursive(model)
        monkeypatch.undo()
        rho = float(model.covar_module.rho.detach()[0])
        return model.likelihood.noise.detach().reshape(-1), rho

    base, rho = fitted()
    same = fitted(SPARSE_NOISE_PRIOR=None, SPARSE_CRITERION="likelihood", SPARSE_RHO_PRIOR=None)
    assert torch.equal(same[0], base) and same[1] == rho
    wide = fitted(SPARSE_NOISE_PRIOR=(0.0, 0.1))[0]  # a prior at noise variance 1
    assert wide[0] == base[0] and wide[1] > 10 * base[1], (base, wide)
    loo = fitted(SPARSE_CRITERION="loo")[0]
    assert loo[0] == base[0] and not torch.isclose(loo[1], base[1]), (base, loo)
    pinned = fitted(SPARSE_RHO_PRIOR=(0.3, 1e-3))  # a prior that leaves rho no choice
    assert pinned[0][0] == base[0] and abs(pinned[1] - 0.3) < 0.01 < abs(rho - 0.3), (rho, pinned)
