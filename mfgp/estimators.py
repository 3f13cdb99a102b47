"""The notebook facade: scikit-learn-style estimators on DataFrames of formulas.

The facade holds no modelling logic: it builds a :class:`~mfgp.data.MultiFidelityDataset`,
optionally pretrains a frozen deep feature extractor (:mod:`mfgp.nn`), builds one of the models
of :mod:`mfgp.models` and fits it with :func:`mfgp.fit.fit_gp`.

Example:
    >>> from mfgp.datasets import load_bandgap_ladder
    >>> df = load_bandgap_ladder(["pbe", "expt"])
    >>> reg = MultiFidelityRegressor("ar1").fit(df)  # doctest: +SKIP
    >>> mean, std = reg.predict(["Si", "GaAs"])  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from botorch.models.model import Model
from torch import Tensor

from mfgp.calibration.predictive import GaussianPredictive
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.exceptions import InputDataError, NotFittedError
from mfgp.fit import FitReport, fit_gp
from mfgp.models import AR1GP, ExplicitLatentGP, MultiTaskGP, SingleFidelityGP
from mfgp.models.base import exact_solves
from mfgp.nn.extractor import FeatureExtractor, pretrain

__all__ = ["ARCHITECTURES", "MultiFidelityRegressor"]


def _build_single(X: Tensor, Y: Tensor, Yvar: Tensor | None, est) -> tuple[Model, list]:
    top = X[:, -1] == X[:, -1].max()
    model = SingleFidelityGP(X[top], Y[top], None if Yvar is None else Yvar[top])
    return model, [model]


def _build_ar1(X, Y, Yvar, est):
    model = AR1GP(X, Y, Yvar)
    return model, [model]


def _build_multitask(X, Y, Yvar, est):
    model = MultiTaskGP(X, Y, Yvar, rank=est.rank, num_latents=est.num_latents)
    return model, [model]


def _build_latent(X, Y, Yvar, est):
    """A chain: level 0 a single-fidelity GP, each level above an explicit-latent GP on it."""
    levels = X[:, -1].round().long()
    top = int(levels.max())
    parts = []
    model = None
    for t in range(top + 1):
        rows = levels == t
        yv = None if Yvar is None else Yvar[rows]
        if model is None:
            model = SingleFidelityGP(X[rows], Y[rows], yv)
        else:
            model = ExplicitLatentGP(X[rows], Y[rows], latent_model=model, latent_fidelity=t - 1,
                                     train_Yvar=yv, seed=est.seed)  # fmt: skip
        parts.append(model)
    return model, parts


#: architecture name -> builder ``(X, Y, Yvar, estimator) -> (model, parts to fit in order)``.
ARCHITECTURES: dict[str, Callable] = {
    "single": _build_single,
    "ar1": _build_ar1,
    "multitask": _build_multitask,
    "latent": _build_latent,
}


class MultiFidelityRegressor:
    """Fit a multi-fidelity GP to a long-format frame of formulas and predict new formulas.

    Args:
        architecture: ``"ar1"`` (difference), ``"multitask"`` (LCM), ``"latent"`` (explicit
            latent chain) or ``"single"`` (target fidelity only).
        fidelities: fidelity names low to high (default: order of appearance in the frame).
        featurizer: a composition featurizer preset.
        deep_features: ``False`` (GP on standardised composition features), ``True`` (pretrain a
            frozen extractor on the lowest fidelity: all its rows, not only the capped ones), or
            a :class:`~mfgp.nn.FeatureExtractor` to use as is.
        pretrain_options: keyword arguments for :func:`mfgp.nn.pretrain`.
        max_rows_per_fidelity: cap on each lower fidelity's rows given to the GP (see
            :meth:`MultiFidelityDataset.capped_rows`); ``None`` keeps all.
        max_fit_points: rows used for the hyperparameters (:func:`mfgp.fit.fit_gp`).
        max_iter: L-BFGS iterations per start.
        restarts: extra random starts.
        rank: task-covariance rank (``"multitask"``).
        num_latents: latent processes (``"multitask"``).
        seed: seeds every random choice.
        progress: show progress bars.

    Attributes:
        dataset_: the training :class:`MultiFidelityDataset`.
        model_: the fitted BoTorch model (inputs: learned or standardised features + fidelity).
        extractor_: the feature extractor, or ``None``.
        fit_reports_: one :class:`~mfgp.fit.FitReport` per fitted GP.
    """

    def __init__(
        self,
        architecture: str = "ar1",
        *,
        fidelities: Sequence[str] | None = None,
        featurizer: str = "magpie",
        deep_features: bool | FeatureExtractor = False,
        pretrain_options: dict | None = None,
        max_rows_per_fidelity: int | None = 3000,
        max_fit_points: int | None = 1500,
        max_iter: int = 100,
        restarts: int = 0,
        rank: int = 1,
        num_latents: int = 1,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.architecture = architecture
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.pretrain_options = pretrain_options
        self.max_rows_per_fidelity = max_rows_per_fidelity
        self.max_fit_points = max_fit_points
        self.max_iter = max_iter
        self.restarts = restarts
        self.rank = rank
        self.num_latents = num_latents
        self.seed = seed
        self.progress = progress

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame | MultiFidelityDataset,
        candidates: Sequence[str] | None = None,
        **frame_options,
    ) -> MultiFidelityRegressor:
        """Fit on a long-format frame (see :mod:`mfgp.datasets`) or a dataset; returns ``self``.

        Args:
            data: the observations.
            candidates: compositions you will ask predictions for; their lower-fidelity rows are
                always kept, however ``max_rows_per_fidelity`` caps the rest.
            **frame_options: passed to :meth:`MultiFidelityDataset.from_frame`.
        """
        if self.architecture not in ARCHITECTURES:
            raise InputDataError(
                f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}"
            )
        if isinstance(data, MultiFidelityDataset):
            ds = data
        else:
            ds = MultiFidelityDataset.from_frame(
                data, self.fidelities, featurizer=self.featurizer, **frame_options
            )
        self.dataset_ = ds
        X_all, Y_all, Yvar_all = ds.tensors()
        self.extractor_ = self._extractor(X_all, Y_all)
        rows = ds.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        X, Y = self._inputs(X_all[rows]), Y_all[rows]
        Yvar = None if Yvar_all is None else Yvar_all[rows]
        self.model_, parts = ARCHITECTURES[self.architecture](X, Y, Yvar, self)
        self.fit_reports_: list[FitReport] = [
            fit_gp(part, max_iter=self.max_iter, restarts=self.restarts,
                   max_fit_points=self.max_fit_points, seed=self.seed, progress=self.progress)
            for part in parts
        ]  # fmt: skip
        return self

    def _extractor(self, X: Tensor, Y: Tensor) -> FeatureExtractor | None:
        if isinstance(self.deep_features, FeatureExtractor):
            return self.deep_features
        if not self.deep_features:
            self._x_mean = X[:, :-1].mean(0)
            std = X[:, :-1].std(0)
            self._x_std = torch.where(std > 1e-12, std, torch.ones_like(std))
            return None
        low = X[:, -1] == 0
        options = {"seed": self.seed, "progress": self.progress, **(self.pretrain_options or {})}
        extractor, self.pretrain_report_ = pretrain(X[low, :-1], Y[low, 0], **options)
        return extractor

    def _inputs(self, X: Tensor) -> Tensor:
        """Contract inputs in the model's space: learned (or standardised) features + fidelity."""
        feats = X[..., :-1]
        if self.extractor_ is not None:
            z = self.extractor_.transform(feats)
        else:
            z = (feats - self._x_mean) / self._x_std
        return torch.cat([z, X[..., -1:]], dim=-1)

    # -- prediction ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(frame) first"
            )

    def predict(
        self,
        X: Sequence[str] | pd.DataFrame | Tensor,
        fidelity: str | None = None,
        return_std: bool = True,
        observation_noise: bool = False,
        batch_size: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """Predictive mean (and std) for formulas, a frame with a ``formula`` column, or tensors.

        Args:
            X: formulas; or a DataFrame with ``formula``; or contract tensors ``n x (d + 1)``
                in the dataset's feature space (as from ``dataset.tensors``).
            fidelity: the fidelity to predict for formulas (default: the target).
            return_std: also return the standard deviation.
            observation_noise: include the fidelity's observation noise (a prediction of a new
                measurement rather than of the underlying value).
            batch_size: points per posterior call (memory bound).
        """
        self._check_fitted()
        if isinstance(X, Tensor):
            inputs = X
        else:
            formulas = X["formula"].tolist() if isinstance(X, pd.DataFrame) else list(X)
            inputs = self.dataset_.inputs_for(formulas, fidelity)
        Z = self._inputs(inputs)
        means, stds = [], []
        with torch.no_grad(), exact_solves():
            for i in range(0, Z.shape[0], batch_size):
                post = self.model_.posterior(
                    Z[i : i + batch_size], observation_noise=observation_noise
                )
                means.append(post.mean.squeeze(-1))
                stds.append(post.variance.squeeze(-1).clamp_min(1e-12).sqrt())
        mean = torch.cat(means).cpu().numpy()
        std = torch.cat(stds).cpu().numpy()
        return (mean, std) if return_std else mean

    def predictive(
        self, X, fidelity: str | None = None, observation_noise: bool = True
    ) -> GaussianPredictive:
        """The predictive distribution (for :mod:`mfgp.calibration` metrics and plots)."""
        mean, std = self.predict(X, fidelity, observation_noise=observation_noise)
        return GaussianPredictive(mean, std)

    def predict_frame(
        self, formulas: Sequence[str], fidelity: str | None = None, level: float = 0.9
    ) -> pd.DataFrame:
        """A table of predictions with central intervals, one row per formula."""
        mean, std = self.predict(formulas, fidelity, observation_noise=True)
        lo, hi = GaussianPredictive(mean, std).interval(level)
        pct = round(level * 100)
        return pd.DataFrame(
            {
                "formula": list(formulas),
                "mean": mean,
                "std": std,
                f"lower_{pct}": lo,
                f"upper_{pct}": hi,
            }
        )

    def get_params(self, deep: bool = True) -> dict:
        """Constructor arguments (scikit-learn contract)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}
