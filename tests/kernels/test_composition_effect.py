"""The composition effect of the AR1: keys, the kernel, the split of the recursive fit."""

import functools

import pandas as pd
import pytest
import torch

from mfgp.fit.recursive import _EffectSplit, _level_nll, _log_priors, _lower_posterior
from mfgp.kernels.effect import CompositionEffect, WithCompositionEffect, composition_keys
from mfgp.models.specs import AR1Spec, FitOptions

DT = torch.float64


def test_keys_are_equal_for_equal_rows_in_any_batch_and_dtype():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(50, 7, generator=g, dtype=DT)
    keys = composition_keys(X)
    assert keys.shape == (50, 2) and keys.dtype == DT
    assert torch.equal(composition_keys(X[7:9]), keys[7:9])  # alone or in a batch
    assert torch.unique(keys, dim=0).shape[0] == 50  # distinct rows, distinct keys
    k32 = composition_keys(X.float())
    assert k32.dtype == torch.float32 and torch.equal(composition_keys(X[3:4].float()), k32[3:4])
    assert float(k32.max()) < 2**22  # integers exact in float32
    assert torch.equal(composition_keys(torch.zeros(1, 3, dtype=DT)),
                       composition_keys(-torch.zeros(1, 3, dtype=DT)))  # fmt: skip


def _three_levels(seed=3):
    """Three levels over 24 compositions; each level's rows of distinct compositions."""
    g = torch.Generator().manual_seed(seed)
    comps = torch.rand(24, 2, generator=g, dtype=DT)
    parts = []
    for t, idx in enumerate((torch.arange(0, 18), torch.arange(6, 20), torch.arange(10, 24))):
        parts.append(torch.cat([comps[idx], torch.full((idx.numel(), 1), float(t), dtype=DT)], 1))
    X = torch.cat(parts)
    Y = torch.randn(X.shape[0], 1, generator=g, dtype=DT)
    return X, Y


def test_level_likelihoods_with_effects_sum_to_the_joint_marginal_likelihood():
    """The split the recursive fit makes is exact: with each level's effect variance moved
    from its noise to the level above's step (the closed form of ``_lower_posterior``), the
    sum of the level terms is the joint marginal likelihood of the model with the effects."""
    X, Y = _three_levels()
    gp = AR1Spec(composition_effect=True, training="recursive").build(X, Y).model
    kernel, lik = gp.covar_module, gp.likelihood
    effects = [kernel.data_kernels[t].effect for t in (0, 1)]
    assert isinstance(kernel.data_kernels[0], WithCompositionEffect)
    assert not isinstance(kernel.data_kernels[2], WithCompositionEffect)
    tau, s2 = torch.tensor([0.5, 0.3, 0.1], dtype=DT), torch.tensor([0.35, 0.12], dtype=DT)
    with torch.no_grad():
        kernel.rho.copy_(torch.tensor([1.3, 0.8]))
        for t, m in enumerate(kernel.data_kernels):
            base = m.base if t < 2 else m
            base.base_kernel.lengthscale = torch.tensor([[0.3 + 0.1 * t, 0.5]], dtype=DT)
        gp.mean_module.constants.copy_(torch.tensor([0.1, -0.2, 0.3]))
    gp.train()
    Z, y = gp.transform_inputs(gp.train_inputs[0]), gp.train_targets
    levels = Z[:, -1].round().long()

    def set_state(effect_vars, noise):
        with torch.no_grad():
            for e, v in zip(effects, effect_vars):
                e.variance = v
            lik.noise = noise

    with torch.no_grad():
        set_state(s2, tau - torch.cat([s2, torch.zeros(1, dtype=DT)]))
        K = kernel(Z).to_dense() + torch.diag(lik.noise[levels])
        joint = -torch.distributions.MultivariateNormal(gp.mean_module(Z), K).log_prob(y)
        noise_of = lambda rows, t: lik.noise[t].expand(rows.numel())  # noqa: E731
        total = torch.zeros((), dtype=DT)
        g = torch.Generator().manual_seed(0)
        for t in range(3):
            # what the fit holds at level t: the effects below t-1 settled, t-1's in its noise
            settled = [s2[j] if j < t - 1 else 0.0 for j in (0, 1)]
            noise = tau.clone()
            for j in range(max(t - 1, 0)):
                noise[j] = tau[j] - s2[j]
            set_state(settled, noise)
            rows = torch.nonzero(levels == t).squeeze(-1)
            m = S = pieces = None
            if t > 0:
                split = _EffectSplit(t - 1, effects[t - 1])
                split.tau = tau[t - 1]
                below = Z[rows].clone()
                below[:, -1] = t - 1
                m, S, pieces = _lower_posterior(gp, Z, y, levels, t, below, noise_of, 10_000, g,
                                                split)  # fmt: skip
                pieces = (*pieces, lambda t=t: s2[t - 1])
            own_noise = functools.partial(noise_of, rows, t)
            total += _level_nll(gp, t, Z[rows], y[rows], own_noise, m, S, 0.0, effect=pieces)
            total += _log_priors(kernel.data_kernels[t])  # the priors it subtracts
            total += lik.noise_covar.noise_prior.log_prob(noise_of(rows, t)[0])
    assert float(total) == pytest.approx(float(joint), rel=1e-8)


def test_recursive_fit_finds_a_shared_composition_effect_and_uses_the_own_value():
    """Level 0 = smooth function + a per-composition effect shared by level 1: the fit puts
    the effect in the kernel (not the noise) and predicts held-out level-1 values from their
    own level-0 row; the model without the effect cannot (it treats the effect as noise)."""
    g = torch.Generator().manual_seed(0)
    n0, n1 = 300, 60
    C = torch.rand(n0, 3, generator=g, dtype=DT)
    f = torch.sin(4 * C[:, 0]) + C[:, 1]
    effect = 0.8 * torch.randn(n0, generator=g, dtype=DT)
    y0 = f + effect + 0.05 * torch.randn(n0, generator=g, dtype=DT)
    top = torch.randperm(n0, generator=g)[:n1]
    truth = 1.2 * (f + effect) + 0.3 * C[:, 2]
    y1 = truth[top] + 0.05 * torch.randn(n1, generator=g, dtype=DT)
    fid = lambda x, t: torch.cat([x, torch.full((x.shape[0], 1), float(t), dtype=DT)], 1)  # noqa: E731
    X = torch.cat([fid(C, 0), fid(C[top], 1)])
    Y = torch.cat([y0, y1]).unsqueeze(-1)
    held = torch.ones(n0, dtype=torch.bool)
    held[top] = False
    errors = {}
    for on in (False, True):
        spec = AR1Spec(composition_effect=on)
        model = spec.build(X, Y)
        spec.fit(model, FitOptions())
        with torch.no_grad():
            mean = model.posterior(fid(C, 1)).mean.squeeze(-1)
        errors[on] = float((mean - truth)[held].abs().mean())
    share = model.model.covar_module.data_kernels[0].effect.variance.detach()
    assert float(share) > 0.3  # standardised units: most of level 0's residual variance
    assert errors[True] < 0.15 and errors[False] > 3 * errors[True], errors


def test_estimator_predicts_a_compositions_own_lower_value(tmp_path):
    """The issue's ZnO: fitted on its own PBE row, a composition's PBE prediction is that
    value (within 0.15 eV on average over the training compositions), and saving keeps it."""
    from mfgp.datasets import load_bandgap_ladder
    from mfgp.estimators import MultiFidelityRegressor, load_estimator

    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].sample(150, random_state=0)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(set(expt.composition))]
    pbe = pd.concat([pbe, df[df.fidelity == "pbe"].sample(250, random_state=1)]).drop_duplicates(
        "composition")
    frame = pd.concat([pbe, expt])
    own = {}
    for on in (False, True):
        est = MultiFidelityRegressor(composition_effect=on, max_iter=40, progress=False)
        est.fit(frame)
        pred = est.predict(pbe.formula.tolist(), fidelity="pbe")
        own[on] = float(abs(pred - pbe.value.to_numpy()).mean())
    assert own[True] < 0.15 and own[False] > 2 * own[True], own
    path = est.save(tmp_path / "m.mfgp")
    again = load_estimator(path).predict(pbe.formula.tolist()[:20], fidelity="pbe")
    assert again == pytest.approx(pred[:20], abs=1e-8)


def test_effect_kernel_matches_on_keys_only():
    k = CompositionEffect(active_dims=[1, 2], variance=0.5)
    x = torch.tensor([[0.3, 1.0, 2.0], [0.9, 1.0, 2.0], [0.3, 1.0, 3.0]], dtype=DT)
    K = k(x, x).to_dense()
    assert K.tolist() == [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.5]]
    assert k(x, x, diag=True).tolist() == [0.5, 0.5, 0.5]


def test_composition_effect_option_is_checked_and_auto_resolves():
    from mfgp.datasets import load_bandgap_ladder
    from mfgp.estimators import MultiFidelityRegressor
    from mfgp.exceptions import InputDataError

    df = load_bandgap_ladder(["pbe", "expt"])
    frame = pd.concat([df[df.fidelity == "pbe"].head(60), df[df.fidelity == "expt"].head(30)])
    with pytest.raises(InputDataError, match="composition_effect must be"):
        MultiFidelityRegressor(composition_effect="yes", progress=False).fit(frame)
    with pytest.raises(InputDataError, match="cannot be fine-tuned"):
        MultiFidelityRegressor(composition_effect=True, deep_features=True, finetune=True,
                               progress=False).fit(frame)  # fmt: skip
    est = MultiFidelityRegressor(composition_effect="auto", max_iter=2, progress=False).fit(frame)
    assert est.spec_.composition_effect is True
    assert MultiFidelityRegressor().composition_effect is False  # the default (docs/models.md)


def test_composition_effect_true_is_refused_outside_the_ar1():
    from mfgp.estimators import MultiFidelityRegressor
    from mfgp.exceptions import InputDataError

    frame = pd.DataFrame({"formula": ["NaCl", "KCl", "NaCl", "KCl"],
                          "fidelity": ["pbe", "pbe", "expt", "expt"],
                          "value": [5.0, 5.1, 8.5, 8.4]})  # fmt: skip
    with pytest.raises(InputDataError, match="part of the 'ar1' architecture"):
        MultiFidelityRegressor("multitask", composition_effect=True, progress=False).fit(frame)


def test_a_failed_level_leaves_no_share_parameter_on_the_model(monkeypatch):
    import mfgp.fit.recursive as rec
    from mfgp.exceptions import NumericalError

    X, Y = _three_levels()
    spec = AR1Spec(composition_effect=True)
    model = spec.build(X, Y)
    real = rec.best_of_starts

    def fail_at_level_1(model_, run, **kw):
        if kw["where"] == "level 1: ":
            raise NumericalError("every start failed")
        return real(model_, run, **kw)

    monkeypatch.setattr(rec, "best_of_starts", fail_at_level_1)
    with pytest.raises(NumericalError):
        spec.fit(model, FitOptions(max_iter=5))
    assert "_effect_share" not in dict(model.model.named_parameters())
