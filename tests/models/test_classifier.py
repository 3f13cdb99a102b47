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


def test_latent_quadrature_in_batches_is_the_node_by_node_sum():
    """Rows and nodes share posterior calls (any batch size), with the same bits as one call per
    node; observed latents (std 0) take one evaluation."""
    from mfgp.models import LatentInput, LatentInputClassifier

    g = torch.Generator().manual_seed(1)
    x = torch.rand(60, 3, generator=g, dtype=DT)
    X = torch.cat([x, torch.zeros(60, 1, dtype=DT)], -1)  # 2 features, the latent, the task
    clf = GPClassifier(X, (x[:, 2:] > 0.5).to(DT), num_inducing=20)  # unfitted: the sums
    with torch.no_grad():  # are what is tested; a non-trivial variational mean
        clf.model.variational_strategy._variational_distribution.variational_mean.normal_(
            generator=g)
    K, n = 8, 13
    head = LatentInputClassifier(clf, LatentInput(0, z_mean=0.5, z_scale=0.3), nodes=K)
    Z = torch.cat([torch.rand(n, 2, generator=g, dtype=DT), torch.zeros(n, 1, dtype=DT)], -1)
    mean = torch.rand(n, generator=g, dtype=DT)
    std = torch.rand(n, generator=g, dtype=DT) * 0.4
    std[::4] = 0.0
    u = (torch.arange(K, dtype=DT) + 0.5) / K
    expected = torch.zeros(n, dtype=DT)
    for node in torch.distributions.Normal(0.0, 1.0).icdf(u):
        expected += clf.predict_proba(head.latent.augment(Z, mean + node * std)) / K
    observed = clf.predict_proba(head.latent.augment(Z, mean))
    expected[std == 0] = observed[std == 0]
    for batch_size in (4096, 20, 1):  # one call; 2 rows per call; 1 row with its 8 nodes
        got = head.quadrature(Z, mean, std, batch_size=batch_size)
        torch.testing.assert_close(got, expected.clamp(0, 1), rtol=1e-12, atol=1e-14)
