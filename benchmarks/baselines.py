"""Baselines of the benchmarks, behind the predictor protocol of :func:`mfgp.calibration.cross_validate`.

* :class:`RandomForestBaseline`: scikit-learn random forest on the raw composition features of the
  target fidelity only (the Matbench RF-SCM/Magpie anchor); its std is the spread of the trees.
* :class:`BoTorchBaseline`: BoTorch's ``SingleTaskMultiFidelityGP`` or ``MultiTaskGP`` with their
  defaults (``fit_gpytorch_mll``, default priors, ``Standardize``), on the same inputs as the mfgp
  model (learned features scaled to [0, 1], plus the fidelity) and the same rows, with the same
  kind of solver: exact Cholesky solves throughout (:func:`mfgp.linalg.exact_solves`, for the
  fit and the prediction). Like mfgp's joint AR1 trainer (:func:`mfgp.fit.fit_gp`), the
  hyperparameters are fitted on a stratified subset of ``max_fit_points`` rows (the same subset
  function and seed, so the same rows), and the posterior then conditions on every row the mfgp
  model conditions on (the capped rows of :meth:`MultiFidelityDataset.capped_rows`), with the
  fitted hyperparameters and the fit's output standardisation.
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
from mfgp.linalg import exact_solves


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
        max_fit_points: rows the hyperparameters are fitted on (mfgp's ``max_fit_points``).
    """

    def __init__(self, kind: str, extractor, max_rows_per_fidelity: int = 1500,
                 max_fit_points: int = 1000, seed: int = 0) -> None:  # fmt: skip
        if kind not in ("stmf", "mtgp"):
            raise ValueError(f"unknown BoTorch baseline {kind!r}; choose 'stmf' or 'mtgp'")
        self.kind = kind
        self.extractor = extractor
        self.max_rows_per_fidelity = max_rows_per_fidelity
        self.max_fit_points = max_fit_points
        self.seed = seed

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        z = self.extractor.transform(X[:, :-1])
        z = ((z - self.lo_) / self.span_).clamp(-0.5, 1.5)
        fid = X[:, -1:]
        if self.kind == "stmf":
            fid = fid / max(self.num_fidelities_ - 1, 1)
        return torch.cat([z, fid], -1)

    def _model(self, Xin: torch.Tensor, Y: torch.Tensor, standardize: bool):
        d = Xin.shape[-1] - 1
        kw = {} if standardize else {"outcome_transform": None}
        if self.kind == "stmf":
            return SingleTaskMultiFidelityGP(Xin, Y, data_fidelities=[d], **kw)
        return MultiTaskGP(Xin, Y, task_feature=d, output_tasks=[self.num_fidelities_ - 1], **kw)

    def fit(self, dataset: MultiFidelityDataset, candidates=None) -> BoTorchBaseline:
        X, Y, _ = dataset.tensors()
        self.num_fidelities_ = len(dataset.fidelities)
        rows = dataset.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        X, Y = X[rows], Y[rows]
        z = self.extractor.transform(X[:, :-1])
        self.lo_ = z.min(0).values
        self.span_ = (z.max(0).values - self.lo_).clamp_min(1e-9)
        Xin = self._inputs(X)
        keep = stratified_subset(X[:, -1], self.max_fit_points, self.seed)
        with exact_solves():
            fitted = self._model(Xin[keep], Y[keep], standardize=True)
            fit_gpytorch_mll(ExactMarginalLogLikelihood(fitted.likelihood, fitted))
        # every row, the fitted hyperparameters and the fit's standardisation
        ot = fitted.outcome_transform
        self.y_mean_, self.y_std_ = ot.means.reshape(()), ot.stdvs.reshape(())
        self.model_ = self._model(Xin, (Y - self.y_mean_) / self.y_std_, standardize=False)
        state = {k: v for k, v in fitted.state_dict().items()
                 if not k.startswith("outcome_transform")}  # fmt: skip
        self.model_.load_state_dict(state)
        self.model_.eval()
        self.n_fit_ = int(len(keep))
        self.n_train_ = int(Xin.shape[0])
        return self

    def predict(self, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        Xin = self._inputs(X)
        if self.kind == "mtgp":
            Xin = Xin[:, :-1]  # MultiTaskGP predicts its output task from features alone
        means, stds = [], []
        with torch.no_grad(), exact_solves():
            for i in range(0, Xin.shape[0], 1024):
                post = self.model_.posterior(Xin[i : i + 1024], observation_noise=True)
                means.append(post.mean.reshape(-1) * self.y_std_ + self.y_mean_)
                stds.append(post.variance.reshape(-1).clamp_min(1e-12).sqrt() * self.y_std_)
        return torch.cat(means).numpy(), torch.cat(stds).numpy()
