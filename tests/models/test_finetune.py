"""Joint fine-tuning of a feature extractor with the GP, guarded by early stopping."""

import pytest
import torch

from mfgp.exceptions import InputDataError
from mfgp.fit import fit_gp
from mfgp.models import SingleFidelityGP
from mfgp.nn import FeatureExtractor, finetune_extractor

DT = torch.float64


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(260, 6, generator=g, dtype=DT)
    y = (torch.sin(6 * X[:, 0]) + X[:, 1] * X[:, 2]).unsqueeze(-1)
    torch.manual_seed(0)
    fx = FeatureExtractor(6, hidden=(16,), out_dim=3).double()  # random: a poor feature map
    for p in fx.parameters():
        p.requires_grad_(False)
    Xc = torch.cat([X, torch.zeros(260, 1, dtype=DT)], -1)
    return fx, Xc[:200], y[:200], Xc[200:], y[200:]


def _fit(fx, X, y):
    model = SingleFidelityGP(torch.cat([fx.transform(X[:, :-1]), X[:, -1:]], -1), y)
    fit_gp(model, max_iter=50)
    return model


def _rmse(model, fx, X, y):
    Z = torch.cat([fx.transform(X[:, :-1]), X[:, -1:]], -1)
    with torch.no_grad():
        return float((model.posterior(Z).mean - y).square().mean().sqrt())


def test_finetuning_improves_a_poor_extractor_and_leaves_the_original(problem):
    fx, X, y, Xt, yt = problem
    model = _fit(fx, X, y)
    frozen = _rmse(model, fx, Xt, yt)
    before = {k: v.clone() for k, v in fx.state_dict().items()}
    tuned, report = finetune_extractor(model, fx, X, steps=120, lr_extractor=3e-3, eval_every=20)
    assert _rmse(model, tuned, Xt, yt) < 0.5 * frozen
    assert report.best_step > 0 and report.val_nlpd[-1] < report.val_nlpd[0]
    assert report.n_val == 30 and report.steps[0] == 0
    assert all(torch.equal(v, before[k]) for k, v in fx.state_dict().items())
    assert not any(p.requires_grad for p in tuned.parameters())
    assert model.train_inputs[0].shape[0] == 200  # conditioned on every row again


def test_early_stopping_keeps_the_frozen_extractor_when_tuning_hurts(problem):
    fx, X, y, _, _ = problem
    model = _fit(fx, X, y)
    tuned, report = finetune_extractor(
        model, fx, X, steps=60, lr_extractor=5.0, lr_gp=1e-6, weight_decay=0.0, eval_every=10,
        patience=2,
    )  # fmt: skip
    assert report.best_step == 0 and min(report.val_nlpd) == report.val_nlpd[0]
    assert torch.equal(tuned.transform(X[:, :-1]), fx.transform(X[:, :-1]))
    assert len(report.steps) <= 4  # stopped after `patience` worse checks


def test_finetune_checks_rows(problem):
    fx, X, y, _, _ = problem
    model = _fit(fx, X, y)
    with pytest.raises(InputDataError, match="X has 199 rows but the model was trained on 200"):
        finetune_extractor(model, fx, X[:-1])
