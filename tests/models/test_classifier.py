import pytest
import torch

from mfgp.exceptions import InputDataError
from mfgp.fit import fit_variational
from mfgp.models import GPClassifier

DT = torch.float64


def _labels(x, g):
    p = torch.sigmoid(8 * (torch.sin(4 * x[:, 0]) - x[:, 1] + 0.3))
    return (torch.rand(x.shape[0], generator=g, dtype=DT) < p).to(DT), p


def _auc(y, p):
    pos, neg = p[y == 1], p[y == 0]
    return float((pos.unsqueeze(1) > neg.unsqueeze(0)).to(DT).mean())


def test_classifier_learns_the_probability():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(600, 2, generator=g, dtype=DT)
    y, p_true = _labels(x, g)
    X = torch.cat([x, torch.zeros(600, 1, dtype=DT)], -1)
    clf = GPClassifier(X, y.unsqueeze(-1), num_inducing=100)
    report = fit_variational(clf, epochs=40, batch_size=200, lr=0.05)
    assert report.losses[-1] < report.losses[0]
    p = clf.predict_proba(X)
    assert p.shape == (600,) and ((p >= 0) & (p <= 1)).all()
    assert float((p - p_true).abs().mean()) < 0.12
    assert clf.posterior(X[:5]).mean.shape == (5, 1)  # a BoTorch model of the latent


def test_multitask_classifier_borrows_from_a_related_task():
    g = torch.Generator().manual_seed(1)
    x_many = torch.rand(500, 2, generator=g, dtype=DT)  # cheap labels (e.g. PBE metallicity)
    x_few = torch.rand(25, 2, generator=g, dtype=DT)  # scarce target labels
    y_many, _ = _labels(x_many, g)
    y_few, _ = _labels(x_few, g)
    x_test = torch.rand(400, 2, generator=g, dtype=DT)
    _, p_test = _labels(x_test, g)
    y_test = (p_test > 0.5).to(DT)
    X = torch.cat([torch.cat([x_many, torch.zeros(500, 1, dtype=DT)], -1),
                   torch.cat([x_few, torch.ones(25, 1, dtype=DT)], -1)])  # fmt: skip
    multi = GPClassifier(X, torch.cat([y_many, y_few]).unsqueeze(-1), num_inducing=120)
    fit_variational(multi, epochs=40, batch_size=200, lr=0.05)
    single = GPClassifier(X[500:].clone(), y_few.unsqueeze(-1), num_inducing=25)
    fit_variational(single, epochs=100, batch_size=25, lr=0.05)
    Xt = torch.cat([x_test, torch.ones(400, 1, dtype=DT)], -1)
    auc_multi = _auc(y_test, multi.predict_proba(Xt))
    auc_single = _auc(y_test, single.predict_proba(Xt))
    assert auc_multi > 0.9 and auc_multi > auc_single + 0.03, (auc_multi, auc_single)


def test_classifier_rejects_non_binary_labels():
    X = torch.rand(10, 3, dtype=DT)
    X[:, -1] = 0
    with pytest.raises(InputDataError, match="labels must be 0 or 1; found 0.5"):
        GPClassifier(X, torch.full((10, 1), 0.5, dtype=DT))
