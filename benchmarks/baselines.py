"""Baselines of the benchmarks, behind the predictor protocol of :func:`mfgp.calibration.cross_validate`.

* :class:`RandomForestBaseline`: scikit-learn random forest on the raw composition features of the
  target fidelity only (the Matbench RF-SCM/Magpie anchor); its std is the spread of the trees.
* :class:`BoTorchBaseline`: BoTorch's ``SingleTaskMultiFidelityGP`` or ``MultiTaskGP`` with their
  defaults (``fit_gpytorch_mll``, default priors, ``Standardize``), on the same inputs as the mfgp
  model (learned features scaled to [0, 1], plus the fidelity), on a stratified subset of at most
  ``max_train`` of the rows mfgp is given: with more, GPyTorch leaves Cholesky for conjugate
  gradients (above 4,096 once BoTorch is imported) and one fit takes hours on 2 cores.
"""

from __future__ import annotations

import numpy as np
import torch
from botorch import fit_gpytorch_mll
from botorch.models import MultiTaskGP, SingleTaskMultiFidelityGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from mfgp.data import MultiFidelityDataset
from mfgp.fit import stratified_subset


class RandomForestBaseline:
    """Random forest on the target fidelity's composition features.

    Its predictive std is the spread of the trees (at least 1e-6): zero where every tree
    agrees (often on metals), so its NLPD can be astronomically large or small; compare its MAE.
    """

    def __init__(self, n_estimators: int = 300, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, dataset: MultiFidelityDataset, candidates=None) -> RandomForestBaseline:
        X, Y, _ = dataset.tensors()
        top = X[:, -1] == X[:, -1].max()
        self.n_train_ = int(top.sum())
        self.rf_ = RandomForestRegressor(
            n_estimators=self.n_estimators, n_jobs=2, random_state=self.seed
        ).fit(X[top, :-1].numpy(), Y[top, 0].numpy())
        return self

    def predict(self, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats = X[:, :-1].numpy()
        per_tree = np.stack([t.predict(feats) for t in self.rf_.estimators_])
        return per_tree.mean(0), np.maximum(per_tree.std(0), 1e-6)


class ForestClassifier:
    """Random-forest P(metal) on the target task's composition features (a hurdle classifier)."""

    def __init__(self, n_estimators: int = 300, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, labels: MultiFidelityDataset, candidates=None) -> ForestClassifier:
        X, Y, _ = labels.tensors()
        top = X[:, -1] == X[:, -1].max()
        self.rf_ = RandomForestClassifier(
            n_estimators=self.n_estimators, n_jobs=2, random_state=self.seed
        ).fit(X[top, :-1].numpy(), (Y[top, 0] >= 0.5).numpy())
        return self

    def predict_proba(self, X: torch.Tensor) -> np.ndarray:
        # vote fraction shrunk by half a vote towards 1/2: a forest's 0/1 fractions would give
        # an infinite log score to the first metal it calls certain
        votes = self.rf_.predict_proba(X[:, :-1].numpy())[:, 1] * self.n_estimators
        return (votes + 0.5) / (self.n_estimators + 1)


class BoTorchBaseline:
    """BoTorch's own multi-fidelity / multi-task GP with default settings.

    Args:
        kind: ``"stmf"`` (``SingleTaskMultiFidelityGP``, fidelity scaled to [0, 1] as a data
            fidelity) or ``"mtgp"`` (``MultiTaskGP``, fidelity as the task feature).
        extractor: the frozen feature extractor shared with the mfgp rows.
        max_rows_per_fidelity: the cap mfgp's rows use (the same rows are drawn).
        max_train: rows BoTorch is fitted on (stratified subset of those).
    """

    def __init__(self, kind: str, extractor, max_rows_per_fidelity: int = 1500,
                 max_train: int = 2000, seed: int = 0) -> None:  # fmt: skip
        self.kind = kind
        self.extractor = extractor
        self.max_rows_per_fidelity = max_rows_per_fidelity
        self.max_train = max_train
        self.seed = seed

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        z = self.extractor.transform(X[:, :-1])
        z = ((z - self.lo_) / self.span_).clamp(-0.5, 1.5)
        fid = X[:, -1:]
        if self.kind == "stmf":
            fid = fid / max(self.num_fidelities_ - 1, 1)
        return torch.cat([z, fid], -1)

    def fit(self, dataset: MultiFidelityDataset, candidates=None) -> BoTorchBaseline:
        X, Y, _ = dataset.tensors()
        self.num_fidelities_ = len(dataset.fidelities)
        rows = dataset.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        X, Y = X[rows], Y[rows]
        keep = stratified_subset(X[:, -1], self.max_train, self.seed)
        X, Y = X[keep], Y[keep]
        z = self.extractor.transform(X[:, :-1])
        self.lo_ = z.min(0).values
        self.span_ = (z.max(0).values - self.lo_).clamp_min(1e-9)
        Xin = self._inputs(X)
        d = Xin.shape[-1] - 1
        if self.kind == "stmf":
            self.model_ = SingleTaskMultiFidelityGP(Xin, Y, data_fidelities=[d])
        elif self.kind == "mtgp":
            self.model_ = MultiTaskGP(
                Xin, Y, task_feature=d, output_tasks=[self.num_fidelities_ - 1]
            )
        else:
            raise ValueError(f"unknown BoTorch baseline {self.kind!r}")
        self.n_train_ = int(Xin.shape[0])
        fit_gpytorch_mll(ExactMarginalLogLikelihood(self.model_.likelihood, self.model_))
        return self

    def predict(self, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        Xin = self._inputs(X)
        if self.kind == "mtgp":
            Xin = Xin[:, :-1]  # MultiTaskGP predicts its output task from features alone
        means, stds = [], []
        with torch.no_grad():
            for i in range(0, Xin.shape[0], 1024):
                post = self.model_.posterior(Xin[i : i + 1024], observation_noise=True)
                means.append(post.mean.reshape(-1))
                stds.append(post.variance.reshape(-1).clamp_min(1e-12).sqrt())
        return torch.cat(means).numpy(), torch.cat(stds).numpy()
