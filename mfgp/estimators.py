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

import copy
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from botorch.models.model import Model
from sklearn.base import BaseEstimator
from torch import Tensor

from mfgp.calibration.predictive import (
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    SoftplusNormalPredictive,
    softplus_inverse,
)
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.exceptions import InputDataError, NotFittedError, SerializationError
from mfgp.fit import FitReport, fit_variational
from mfgp.models import GPClassifier
from mfgp.models.features import FeatureMap
from mfgp.models.specs import (
    AR1Spec,
    FitOptions,
    LatentChainSpec,
    ModelSpec,
    MultiTaskSpec,
    SingleSpec,
)
from mfgp.nn.extractor import FeatureExtractor, pretrain
from mfgp.nn.finetune import finetune_extractor
from mfgp.predict import predict_marginals

__all__ = [
    "zero_gap_labels",
    "ARCHITECTURES",
    "HurdleRegressor",
    "MetalClassifier",
    "MultiFidelityRegressor",
]


def _single_spec(est) -> ModelSpec:
    return SingleSpec()


def _ar1_spec(est) -> ModelSpec:
    return AR1Spec(rho=est.rho, training=est.training)


def _multitask_spec(est) -> ModelSpec:
    return MultiTaskSpec(rank=est.rank, num_latents=est.num_latents)


def _latent_spec(est) -> ModelSpec:
    return LatentChainSpec(observed=est.latent_observed, seed=est.seed)


#: architecture name -> the core spec an estimator's options describe (strings at the edge;
#: the assembly of each architecture is its spec in :mod:`mfgp.models.specs`)
ARCHITECTURES: dict[str, Callable] = {
    "single": _single_spec,
    "ar1": _ar1_spec,
    "multitask": _multitask_spec,
    "latent": _latent_spec,
}


def _interval_level(level) -> float:
    """An interval probability given as a fraction (0.9) or a percentage (90)."""
    value = float(level)
    if 1.0 < value < 100.0:
        value /= 100.0
    if not 0.0 < value < 1.0:
        raise InputDataError(
            f"level must be a probability in (0, 1) or a percentage in (1, 100); got {level!r}"
        )
    return value


def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputDataError(
            f"{name} must be a positive integer{' or None' if allow_none else ''}; got {value!r}"
        )


class _FormulaEstimator(BaseEstimator):
    """What the facades share: the dataset, the feature space and the inputs of new formulas.

    scikit-learn's estimator contract: ``__init__`` only stores its arguments
    (``get_params`` / ``set_params`` / ``clone`` / ``repr`` come from ``BaseEstimator``),
    ``fit`` returns ``self``, fitted attributes end in ``_``.
    """

    deep_features: bool | FeatureExtractor
    fidelities: Sequence[str] | None
    featurizer: str
    pretrain_options: dict | None
    seed: int
    progress: bool

    def _dataset(self, data, frame_options: dict) -> MultiFidelityDataset:
        if isinstance(data, MultiFidelityDataset):
            return data
        return MultiFidelityDataset.from_frame(
            data, self.fidelities, featurizer=self.featurizer, **frame_options
        )

    def _extractor(self, X: Tensor, Y: Tensor) -> FeatureExtractor | None:
        """The extractor (pretrained here if asked) and ``feature_map_``, the model's input map."""
        if isinstance(self.deep_features, FeatureExtractor):
            extractor = self.deep_features
        elif not self.deep_features:
            self.feature_map_ = FeatureMap.standardize(X)
            return None
        else:
            low = X[:, -1] == 0
            options = {"seed": self.seed, "progress": self.progress,
                       **(self.pretrain_options or {})}  # fmt: skip
            extractor, self.pretrain_report_ = pretrain(X[low, :-1], Y[low, 0], **options)
        extractor.eval()
        self.feature_map_ = FeatureMap(extractor=extractor)
        return extractor

    def _inputs(self, X: Tensor) -> Tensor:
        """Contract inputs in the model's space: learned (or standardised) features + fidelity."""
        with torch.no_grad():
            return self.feature_map_(X)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(frame) first"
            )

    def _raw_inputs(self, X, fidelity: str | None) -> Tensor:
        """Formulas, a frame with ``formula`` or contract tensors -> raw contract tensors."""
        self._check_fitted()
        if isinstance(X, Tensor):
            return X
        if isinstance(X, str):
            X = [X]  # one formula, not its characters
        formulas = X["formula"].tolist() if isinstance(X, pd.DataFrame) else list(X)
        return self.dataset_.inputs_for(formulas, fidelity)


class MultiFidelityRegressor(_FormulaEstimator):
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
        finetune: with deep features, also fine-tune a copy of the extractor jointly with the
            GP (:func:`mfgp.nn.finetune_extractor`: early stopping on held-out target rows,
            weight decay); ``True`` or a dict of its keyword arguments. Not for ``"latent"``.
        max_rows_per_fidelity: cap on each lower fidelity's rows given to the GP (see
            :meth:`MultiFidelityDataset.capped_rows`); ``None`` keeps all.
        max_fit_points: rows used for the hyperparameters (:func:`mfgp.fit.fit_gp`).
        max_iter: L-BFGS iterations per start.
        restarts: extra random starts.
        training: ``"joint"`` (:func:`mfgp.fit.fit_gp` on all levels at once),
            ``"recursive"`` (``"ar1"`` only: :func:`mfgp.fit.fit_ar1_recursive`, level by level,
            each level's hyperparameters on up to ``max_fit_points`` of its own rows) or
            ``"auto"``: recursive for ``"ar1"`` (more accurate and better calibrated on the
            band-gap benchmark, ``docs/models.md``), joint for the other architectures.
        rho: ``"constant"`` or ``"linear"`` (``"ar1"`` only: ``rho_t(x)`` linear in the
            features, see :class:`~mfgp.kernels.AR1Kernel`).
        rank: task-covariance rank (``"multitask"``).
        num_latents: latent processes (``"multitask"``).
        latent_observed: (``"latent"``) each level's latent is the level below's *observed*
            value where the composition has one (the number a DFT calculation gave, not the
            GP's smoothed mean of it), elsewhere a draw from that level's predictive with
            noise; ``False``: the level below's posterior everywhere. See
            :class:`~mfgp.models.ExplicitLatentGP`.
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
        finetune: bool | dict = False,
        max_rows_per_fidelity: int | None = 3000,
        max_fit_points: int | None = 1500,
        max_iter: int = 100,
        restarts: int = 0,
        training: str = "auto",
        rho: str = "constant",
        rank: int = 1,
        num_latents: int = 1,
        latent_observed: bool = True,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.architecture = architecture
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.pretrain_options = pretrain_options
        self.finetune = finetune
        self.max_rows_per_fidelity = max_rows_per_fidelity
        self.max_fit_points = max_fit_points
        self.max_iter = max_iter
        self.restarts = restarts
        self.training = training
        self.rho = rho
        self.rank = rank
        self.num_latents = num_latents
        self.latent_observed = latent_observed
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
        if self.training not in ("auto", "joint", "recursive"):
            raise InputDataError(
                f"training must be 'auto', 'joint' or 'recursive'; got {self.training!r}"
            )
        if self.training == "recursive" and self.architecture != "ar1":
            raise InputDataError(
                f"training='recursive' is the level-by-level fit of the 'ar1' architecture; "
                f"{self.architecture!r} is fitted jointly (use training='joint')"
            )
        if self.rho != "constant" and self.architecture != "ar1":
            raise InputDataError(
                f"rho={self.rho!r} applies to the 'ar1' architecture, not {self.architecture!r}"
            )
        _check_positive_int("max_rows_per_fidelity", self.max_rows_per_fidelity, True)
        _check_positive_int("max_fit_points", self.max_fit_points, True)
        _check_positive_int("max_iter", self.max_iter)
        _check_positive_int("rank", self.rank)
        _check_positive_int("num_latents", self.num_latents)
        ds = self._dataset(data, frame_options)
        self.dataset_ = ds
        n_target = int((ds.frame["fidelity_index"] == len(ds.fidelities) - 1).sum())
        if n_target < 2:
            raise InputDataError(
                f"the target fidelity {ds.target!r} has {n_target} row(s); a GP needs at least "
                "2 target observations (check fidelities=, the last one is the target)"
            )
        X_all, Y_all, Yvar_all = ds.tensors()
        self.extractor_ = self._extractor(X_all, Y_all)
        rows = ds.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        self.train_rows_ = rows
        X, Y, Yvar = ds.tensors(rows)  # the same call as load(): bit-identical rebuilds
        self.spec_ = ARCHITECTURES[self.architecture](self)
        model = self.spec_.build(X, Y, Yvar, feature_map=self.feature_map_,
                                 observations=(X_all, Y_all))  # fmt: skip
        options = FitOptions(max_iter=self.max_iter, restarts=self.restarts,
                             max_fit_points=self.max_fit_points, seed=self.seed,
                             progress=self.progress)  # fmt: skip
        self.fit_reports_: list[FitReport] = self.spec_.fit(model, options)
        if self.finetune:
            model.feature_map = self._finetune(model.model, X)
        self.model_ = model
        return self

    def _finetune(self, model, raw: Tensor) -> FeatureMap:
        if self.extractor_ is None or self.architecture == "latent":
            raise InputDataError(
                "finetune needs deep features (deep_features=True or an extractor) and the "
                f"'single', 'ar1' or 'multitask' architecture; got deep_features="
                f"{self.deep_features!r}, architecture={self.architecture!r}"
            )
        if self.architecture == "single":
            raw = raw[raw[:, -1] == raw[:, -1].max()]
        options = {"seed": self.seed, "progress": self.progress}
        options.update(self.finetune if isinstance(self.finetune, dict) else {})
        self.extractor_, self.finetune_report_ = finetune_extractor(
            model, self.extractor_, raw, **options
        )
        self.extractor_.eval()
        self.feature_map_ = FeatureMap(extractor=self.extractor_)
        return self.feature_map_

    # -- saving --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save the fitted regressor to one file, without pickle (:mod:`mfgp.io`).

        The file holds the estimator's parameters, the model's spec, its state dict, the
        dataset's rows (compositions, fidelities, values, noise: what predictions condition
        on) and the featurizer preset; features are recomputed on load (the featurizer is
        deterministic, its version is checked). Written atomically.

        Example:
            >>> reg.save("gaps.mfgp"); MultiFidelityRegressor.load("gaps.mfgp")  # doctest: +SKIP
        """
        self._check_fitted()
        from mfgp.io import model_tensors, write_bundle
        from mfgp.models.specs import FeatureMapSpec

        ds = self.dataset_
        f = ds.frame
        params = self.get_params()
        if isinstance(params["deep_features"], FeatureExtractor):
            params["deep_features"] = True  # the extractor itself is in the feature map
        X, Y, Yvar = ds.tensors(self.train_rows_)
        tensors = {k: v for k, v in model_tensors(self.model_, self.feature_map_,
                                                  (X, Y, Yvar), None).items()
                   if k.startswith(("state.", "fmap."))}  # fmt: skip
        tensors.update({
            "data.composition_index": torch.as_tensor(ds.composition_index),
            "data.fidelity_index": torch.as_tensor(f["fidelity_index"].to_numpy()),
            "data.value": torch.as_tensor(f["value"].to_numpy(dtype=np.float64)),
            "data.noise": torch.as_tensor(f["noise"].to_numpy(dtype=np.float64)),
            "data.n_obs": torch.as_tensor(f["n_obs"].to_numpy(dtype=np.int64)),
            "train_rows": torch.as_tensor(np.asarray(self.train_rows_, dtype=np.int64)),
        })  # fmt: skip
        manifest = {
            "kind": type(self).__name__,
            "params": params,
            "spec": self.spec_.to_dict(),
            "feature_map": FeatureMapSpec.of(self.feature_map_).to_dict(),
            "featurizer": {"preset": ds.featurizer.preset, "impute_nan": ds.featurizer.impute_nan,
                           "version": ds.featurizer.version},  # fmt: skip
            "fidelities": list(ds.fidelities),
            "dtype": "float64",
            "fit_reports": [dataclasses.asdict(r) for r in self.fit_reports_],
        }
        members = {"dataset": {"compositions": [str(c) for c in ds.compositions],
                               "formula": f["formula"].astype(str).tolist(),
                               "first_row": [str(r) for r in f["first_row"]]}}  # fmt: skip
        return write_bundle(path, manifest, tensors, members)

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str | None = None
             ) -> MultiFidelityRegressor:  # fmt: skip
        """A regressor saved by :meth:`save`, ready to predict (bit-identical predictions).

        Raises:
            SerializationError: a truncated or corrupted file, one of another estimator, or a
                featurizer whose version differs from the one that wrote it.
            IncompatibleVersionError: written in a newer format.
            UnknownSpecError: its spec is not registered in this mfgp.
        """
        from mfgp.featurize.featurizer import CompositionFeaturizer
        from mfgp.io import read_bundle, rebuild_model

        manifest, tensors, members = read_bundle(path)
        if manifest.get("kind") != cls.__name__:
            raise SerializationError(
                f"{path} holds a {manifest.get('kind')!r}, not a {cls.__name__}; load it with "
                f"that class"
            )
        fz_info = manifest["featurizer"]
        fz = CompositionFeaturizer(fz_info["preset"], impute_nan=fz_info["impute_nan"])
        if fz.version != fz_info["version"]:
            raise SerializationError(
                f"{path} was fitted on featurizer {fz_info['version']!r}; this mfgp has "
                f"{fz.version!r}: refit the model"
            )
        data = members["dataset"]
        comps = np.array(data["compositions"], dtype=object)
        comp_index = tensors["data.composition_index"].numpy()
        fids = tuple(manifest["fidelities"])
        fid_index = tensors["data.fidelity_index"].numpy()
        frame = pd.DataFrame({
            "composition": comps[comp_index], "formula": data["formula"],
            "fidelity": [fids[i] for i in fid_index], "fidelity_index": fid_index,
            "value": tensors["data.value"].numpy(), "n_obs": tensors["data.n_obs"].numpy(),
            "noise": tensors["data.noise"].numpy(), "first_row": data["first_row"],
        })  # fmt: skip
        features = fz.transform(list(comps))
        ds = MultiFidelityDataset(frame, fids, comps, features, fz.feature_labels(), fz)
        est = cls(**manifest["params"])
        rows = tensors["train_rows"].numpy()
        X, Y, Yvar = ds.tensors(rows)
        X_all, Y_all, _ = ds.tensors()
        state = {k: v for k, v in tensors.items() if k.startswith(("state.", "fmap."))}
        state.update({"train.X": X, "train.Y": Y, "obs.X": X_all, "obs.Y": Y_all})
        if Yvar is not None:
            state["train.Yvar"] = Yvar
        spec, model, fmap = rebuild_model(manifest, state, device)
        est.dataset_, est.train_rows_, est.spec_, est.model_ = ds, rows, spec, model
        est.feature_map_ = fmap
        est.extractor_ = fmap.extractor
        est.fit_reports_ = [FitReport(**r) for r in manifest.get("fit_reports", [])]
        return est

    def _prediction_model(self, raw: Tensor) -> Model:
        """The fitted model, conditioned on the known rows of the asked compositions.

        The fit keeps a capped sample of each lower fidelity's rows; the rows of the
        compositions asked about that it left out are added here by a block update of the
        cached factor (hyperparameters unchanged), so a prediction always uses the computed
        values of its own compositions. The explicit-latent chain needs no update: its
        observed latents hold every lower-level row.
        """
        update = getattr(self.model_, "conditioned_on", None)
        if update is None:
            return self.model_
        rows = np.setdiff1d(self.dataset_.rows_at(raw), self.train_rows_)
        if self.architecture == "single":
            rows = rows[self.dataset_.frame["fidelity_index"].to_numpy()[rows]
                        == len(self.dataset_.fidelities) - 1]  # fmt: skip
        if rows.size == 0:
            return self.model_
        X, Y, Yvar = self.dataset_.tensors(rows, dtype=raw.dtype, device=raw.device)
        return update(X, Y, Yvar)

    # -- prediction ----------------------------------------------------------------------------
    def predict(
        self,
        X: Sequence[str] | pd.DataFrame | Tensor,
        return_std: bool = False,
        *,
        fidelity: str | None = None,
        observation_noise: bool = False,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """Predictive mean (and std) for formulas, a frame with a ``formula`` column, or tensors.

        As ``GaussianProcessRegressor.predict``: the mean, or ``(mean, std)`` with
        ``return_std=True``. Marginals only (:func:`mfgp.predict.predict_marginals`), on the
        model's device, in bounded memory; each row's value does not depend on the others.

        Args:
            X: formulas (a bare string is one formula); or a DataFrame with ``formula``; or raw
                contract tensors ``n x (d + 1)`` (as from ``dataset.inputs_for``).
            return_std: also return the standard deviation.
            fidelity: the fidelity to predict for formulas (default: the target).
            observation_noise: include the fidelity's observation noise (a prediction of a new
                measurement rather than of the underlying value).
            batch_size: at most this many rows per posterior call.
        """
        _check_positive_int("batch_size", batch_size)
        Z = self._raw_inputs(X, fidelity)
        model = self._prediction_model(Z)
        mean, var = predict_marginals(model, Z, observation_noise=observation_noise,
                                      batch_size=batch_size)  # fmt: skip
        mean = mean.cpu().numpy()
        if not return_std:
            return mean
        return mean, var.clamp_min(1e-12).sqrt().cpu().numpy()

    def score(self, X, y=None) -> float:
        """R^2 of the mean prediction on the target-fidelity rows of a frame (or dataset).

        scikit-learn's default score of a regressor, so ``cross_val_score`` and
        ``GridSearchCV`` work on a long-format frame; lower-fidelity rows of ``X`` are ignored.
        """
        self._check_fitted()
        ds = self.dataset_
        frame = X.frame if isinstance(X, MultiFidelityDataset) else X
        fid = frame["fidelity"].astype(str).to_numpy() if y is None else None
        if y is None:
            rows = frame[fid == ds.target]
            if rows.empty:
                raise InputDataError(f"score needs rows of the target fidelity {ds.target!r}")
            y = rows["value"].to_numpy(dtype=float)
            formulas = rows["formula"].tolist()
        else:
            formulas = frame["formula"].tolist()
            y = np.asarray(y, dtype=float)
        pred = self.predict(formulas)
        return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))

    def predictive(
        self, X, fidelity: str | None = None, observation_noise: bool = True
    ) -> GaussianPredictive:
        """The predictive distribution (for :mod:`mfgp.calibration` metrics and plots)."""
        mean, std = self.predict(X, True, fidelity=fidelity, observation_noise=observation_noise)
        return GaussianPredictive(mean, std)

    def predict_frame(
        self, formulas: Sequence[str], fidelity: str | None = None, level: float = 0.9
    ) -> pd.DataFrame:
        """A table of predictions with central intervals, one row per formula.

        Args:
            formulas: the compositions.
            fidelity: the fidelity to predict (default: the target).
            level: the central interval's probability, as a fraction (``0.9``) or a
                percentage (``90``); columns ``lower_90`` and ``upper_90``.
        """
        if isinstance(formulas, str):
            formulas = [formulas]
        level = _interval_level(level)
        mean, std = self.predict(formulas, True, fidelity=fidelity, observation_noise=True)
        lo, hi = GaussianPredictive(mean, std).interval(level)
        pct = f"{level * 100:g}".replace(".", "_")
        return pd.DataFrame(
            {
                "formula": list(formulas),
                "mean": mean,
                "std": std,
                f"lower_{pct}": lo,
                f"upper_{pct}": hi,
            }
        )


class MetalClassifier(_FormulaEstimator):
    """P(metal) for formulas: a variational GP classifier, single-task or multi-task.

    Fit on a long-format frame (or dataset) whose fidelities are *tasks* with 0/1 values
    (1 = metal), the last one the target, e.g. from :func:`mfgp.datasets.load_metallicity`:
    ``["pbe", "expt"]`` learns experimental metallicity together with the cheap PBE one. Values
    are labels after ``>= 0.5`` (duplicated compositions averaged first: the majority wins,
    ties count as metal).

    With ``latent``, the classifier is the explicit-latent architecture with a *different
    property* as the latent: a fitted regression (e.g. of PBE gaps) is queried at each
    composition and its prediction is one more input of the classifier. Training rows enter at
    the latent's value (its mean); a prediction integrates ``P(metal | x, z)`` over the latent's
    Gaussian ``z ~ N(m(x), s(x)^2)`` by quadrature, so a composition whose latent is uncertain
    (no PBE calculation nearby) gets a correspondingly softer probability. Where the latent was
    observed (a PBE gap of that composition is in the latent's training rows) that value is used
    as is, with ``s = 0`` (``latent_observed``; elsewhere ``s`` then includes the latent's
    observation noise).

    Args:
        multitask: ``True``: one coregionalised GP over all tasks
            (:class:`~mfgp.kernels.LCMKernel`); ``False``: the target task's rows only.
        fidelities: task names low to high (default: order of appearance).
        featurizer: composition featurizer preset.
        deep_features: ``False`` (standardised composition features), or a fitted
            :class:`~mfgp.nn.FeatureExtractor` (e.g. pretrained on PBE gaps).
        max_rows_per_task: cap on each lower task's rows (target rows are all kept).
        num_inducing: inducing points of the sparse GP.
        rank: task-covariance rank.
        epochs, batch_size, lr: Adam on the ELBO (:func:`mfgp.fit.fit_variational`).
        latent: ``None``, or a fitted :class:`MultiFidelityRegressor` with the same featurizer
            whose prediction of its target fidelity is an extra input (see above).
        latent_nodes: nodes ``K`` of the integral over the latent (equal-probability
            midpoints: error at most ``1 / (2K)`` where P(metal) is monotone in the latent).
        latent_observed: ``True``: the latent is *the value the lower-level calculation
            gives*: where the latent's training rows hold one for the composition it is used
            as is, elsewhere the regressor's predictive of a new observation (noise included)
            is integrated over. ``False``: the latent is the regressor's noise-free function,
            its posterior everywhere (training rows at its posterior mean).
        seed: seeds every random choice.
        progress: show progress bars.

    Example:
        >>> pbe = MultiFidelityRegressor("single").fit(pbe_gaps)  # doctest: +SKIP
        >>> clf = MetalClassifier(False, latent=pbe).fit(metal_labels)  # doctest: +SKIP
    """

    pretrain_options = None

    def __init__(
        self,
        multitask: bool = True,
        *,
        fidelities: Sequence[str] | None = None,
        featurizer: str = "magpie",
        deep_features: bool | FeatureExtractor = False,
        max_rows_per_task: int | None = 3000,
        num_inducing: int = 500,
        rank: int = 1,
        epochs: int = 30,
        batch_size: int = 1024,
        lr: float = 0.02,
        latent: MultiFidelityRegressor | None = None,
        latent_nodes: int = 64,
        latent_observed: bool = True,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.multitask = multitask
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.max_rows_per_task = max_rows_per_task
        self.num_inducing = num_inducing
        self.rank = rank
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.latent = latent
        self.latent_nodes = latent_nodes
        self.latent_observed = latent_observed
        self.seed = seed
        self.progress = progress

    def fit(
        self,
        data: pd.DataFrame | MultiFidelityDataset,
        candidates: Sequence[str] | None = None,
        **frame_options,
    ) -> MetalClassifier:
        """Fit on labelled rows; ``candidates`` as in :meth:`MultiFidelityRegressor.fit`."""
        if self.deep_features is True:
            raise InputDataError(
                "MetalClassifier takes deep_features=False or a fitted FeatureExtractor (pretrain "
                "one on a regression target, e.g. PBE gaps, with mfgp.nn.pretrain)"
            )
        if self.latent_nodes < 1:
            raise InputDataError(f"latent_nodes must be >= 1; got {self.latent_nodes}")
        ds = self._dataset(data, frame_options)
        self.dataset_ = ds
        if self.latent is not None:
            self._check_latent()
        X_all, Y_all, _ = ds.tensors()
        self.extractor_ = self._extractor(X_all, Y_all)
        if self.multitask:
            rows = ds.capped_rows(self.max_rows_per_task, self.seed, candidates)
        else:
            rows = np.flatnonzero(ds.frame["fidelity_index"].to_numpy() == len(ds.fidelities) - 1)
        X, Y = self._task_inputs(self._inputs(X_all[rows])), (Y_all[rows] >= 0.5).to(Y_all)
        if self.latent is not None:
            z, _ = self._latent_moments(X_all[rows])
            self._z_mean, self._z_std = z.mean(), z.std().clamp_min(1e-12)
            X = self._with_latent(X, z)
        self.model_ = GPClassifier(X, Y, num_inducing=self.num_inducing, rank=self.rank,
                                   seed=self.seed)  # fmt: skip
        self.fit_report_ = fit_variational(
            self.model_, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            seed=self.seed, progress=self.progress,
        )  # fmt: skip
        return self

    def predict_proba(
        self, X: Sequence[str] | pd.DataFrame | Tensor, task: str | None = None
    ) -> np.ndarray:
        """``P(metal)`` for formulas (or contract tensors), for ``task`` (default: the target)."""
        raw = self._raw_inputs(X, task)
        Z = self._task_inputs(self._inputs(raw))
        if self.latent is None:
            return self.model_.predict_proba(Z).cpu().numpy()
        mean, std = self._latent_moments(raw)
        # equal-probability nodes: the midpoints of K equal slices of the latent's Gaussian
        # (P(metal | z) can be almost a step in z, where Gauss-Hermite rules oscillate; this
        # rule's error on any monotone function is at most 1/(2K))
        K = self.latent_nodes
        u = (torch.arange(K, dtype=mean.dtype, device=mean.device) + 0.5) / K
        nodes = torch.distributions.Normal(0.0, 1.0).icdf(u)
        p = torch.zeros_like(mean)
        for node in nodes:
            p += self.model_.predict_proba(self._with_latent(Z, mean + node * std)) / K
        return p.clamp(0.0, 1.0).cpu().numpy()

    def _task_inputs(self, Z: Tensor) -> Tensor:
        if self.multitask:
            return Z
        Z = Z.clone()
        Z[:, -1] = 0.0
        return Z

    def _check_latent(self) -> None:
        latent = self.latent
        if not isinstance(latent, MultiFidelityRegressor) or not hasattr(latent, "model_"):
            raise InputDataError(
                f"latent must be a fitted MultiFidelityRegressor (e.g. of PBE gaps); got "
                f"{type(latent).__name__}: fit it first, or pass latent=None"
            )
        if list(latent.dataset_.feature_labels) != list(self.dataset_.feature_labels):
            raise InputDataError(
                f"the latent regressor uses featurizer {latent.dataset_.featurizer.preset!r} but "
                f"this classifier uses {self.dataset_.featurizer.preset!r}; fit both with the same "
                "featurizer"
            )

    def _latent_moments(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of the latent at raw contract inputs (which latent: ``latent_observed``)."""
        Xl = raw.clone()
        Xl[:, -1] = float(len(self.latent.dataset_.fidelities) - 1)
        mean, std = self.latent.predict(Xl, True, observation_noise=self.latent_observed)
        if self.latent_observed:
            seen = self.latent.dataset_.observed_at(Xl)
            known = ~np.isnan(seen)
            mean, std = np.where(known, seen, mean), np.where(known, 0.0, std)
        return torch.as_tensor(mean).to(raw), torch.as_tensor(std).to(raw)

    def _with_latent(self, Z: Tensor, z: Tensor) -> Tensor:
        """Insert the standardised latent as the last feature (before the task column)."""
        col = ((z - self._z_mean) / self._z_std).unsqueeze(-1)
        return torch.cat([Z[..., :-1], col, Z[..., -1:]], dim=-1)

    def predict(self, X, task: str | None = None, threshold: float = 0.5) -> np.ndarray:
        """Labels: 1 (metal) where ``P(metal) >= threshold``."""
        return (self.predict_proba(X, task) >= threshold).astype(np.int64)


def zero_gap_labels(dataset: MultiFidelityDataset) -> MultiFidelityDataset:
    """The same rows with value 1 where the gap is exactly 0 (a metal) and 0 elsewhere."""
    f = dataset.frame
    return dataset.with_frame(f.assign(value=(f["value"] == 0).astype(float)))


class HurdleRegressor(_FormulaEstimator):
    """Band gaps as a hurdle: ``P(gap = 0)`` from a classifier, the positive gap from a GP.

    The predictive distribution is a point mass at 0 with weight ``p = P(metal)`` plus, with
    weight ``1 - p``, a distribution on ``(0, inf)``: the multi-fidelity regression is fitted to
    ``g(gap)`` of the *nonzero* target gaps, with ``g`` the ``transform`` (lower fidelities enter
    as ``g(gap + offset)``, so their zeros stay finite), and its Gaussian predictive in ``g``
    space (observation noise included) is mapped back through ``g^-1``. ``"softplus"`` (the
    default, ``g(y) = log(exp(y) - 1)``) is log-like for small gaps and linear for large ones:
    a :class:`~mfgp.calibration.SoftplusNormalPredictive`; ``"log"`` gives a log-normal, whose
    upper tail is too long for wide-gap insulators (``docs/metals.md``). Means, medians,
    quantiles, intervals, samples, CRPS and coverage of the mixture are those of
    :class:`~mfgp.calibration.PointMassMixture`.

    The classifier learns ``gap == 0`` of the target, together with every lower fidelity's
    ``gap == 0`` when ``multitask`` is true (cheap PBE metallicity). With ``latent`` (the
    default) and a lower fidelity in the data, it also takes the lowest fidelity's *gap* at
    each composition as an input (see :class:`MetalClassifier`): a single-fidelity GP of that
    fidelity, conditioned on its rows at every target and candidate composition and on a
    seeded sample of the others, supplies it with its uncertainty.

    Args:
        architecture: the regression architecture (see :class:`MultiFidelityRegressor`).
        multitask: multi-task classifier (see :class:`MetalClassifier`); off by default: with
            the latent input it adds nothing on the band-gap benchmark (``docs/metals.md``).
        transform: ``"softplus"`` or ``"log"``: the positive part's scale (see above).
        offset: eV added to lower-fidelity gaps before the transform.
        deep_features: ``False`` or a fitted :class:`~mfgp.nn.FeatureExtractor` shared by both
            parts.
        regressor_options: keyword arguments of :class:`MultiFidelityRegressor` (they override
            the shared ones, e.g. ``deep_features`` for one part only).
        classifier_options: keyword arguments of :class:`MetalClassifier` (same).
        classifier: instead of a :class:`MetalClassifier`, any unfitted classifier with
            ``fit(labels_dataset, candidates)`` and ``predict_proba(X) -> P(metal)`` (a copy is
            fitted on the same 0/1 labels).
        latent: give the classifier the lowest fidelity's gap as an input; ``True``, ``False``
            or a dict of :class:`MultiFidelityRegressor` options for its GP (defaults
            ``max_rows_per_fidelity=1500``: the sample of rows at other compositions,
            ``max_fit_points=1000``, ``max_iter=50``). Ignored with a single fidelity or a
            custom ``classifier``.
        fidelities, featurizer, seed, progress: as in :class:`MultiFidelityRegressor`.

    Attributes:
        classifier_, regressor_: the fitted parts.
        latent_: the fitted latent :class:`MultiFidelityRegressor` of the classifier, or
            ``None``.
    """

    #: transform name -> (g, the predictive of g^-1 of a Gaussian)
    _TRANSFORMS = {
        "softplus": (softplus_inverse, SoftplusNormalPredictive),
        "log": (np.log, LogNormalPredictive),
    }

    #: options of the latent GP (overridden by a ``latent`` dict)
    latent_defaults = {"max_rows_per_fidelity": 1500, "max_fit_points": 1000, "max_iter": 50}

    pretrain_options = None

    def __init__(
        self,
        architecture: str = "ar1",
        *,
        multitask: bool = False,
        transform: str = "softplus",
        offset: float = 0.1,
        fidelities: Sequence[str] | None = None,
        featurizer: str = "magpie",
        deep_features: bool | FeatureExtractor = False,
        regressor_options: dict | None = None,
        classifier_options: dict | None = None,
        classifier: object | None = None,
        latent: bool | dict = True,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.architecture = architecture
        self.classifier = classifier
        self.latent = latent
        self.multitask = multitask
        self.transform = transform
        self.offset = offset
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.regressor_options = regressor_options
        self.classifier_options = classifier_options
        self.seed = seed
        self.progress = progress

    def fit(
        self,
        data: pd.DataFrame | MultiFidelityDataset,
        candidates: Sequence[str] | None = None,
        **frame_options,
    ) -> HurdleRegressor:
        """Fit both parts on a long-format frame of gaps (lower fidelities, then the target)."""
        if self.transform not in self._TRANSFORMS:
            raise InputDataError(
                f"unknown transform {self.transform!r}; choose {' or '.join(self._TRANSFORMS)}"
            )
        if self.offset <= 0:
            raise InputDataError(
                f"offset must be > 0 (the {self.transform} of lower-fidelity gaps); got "
                f"{self.offset}"
            )
        ds = self._dataset(data, frame_options)
        f = ds.frame
        negative = f["value"] < 0
        if negative.any():
            row = f[negative].iloc[0]
            raise InputDataError(
                f"band gaps must be >= 0; {row['composition']} ({row['fidelity']}) has "
                f"{row['value']:g}"
            )
        self.dataset_ = ds
        is_target = f["fidelity_index"].to_numpy() == len(ds.fidelities) - 1
        labels = zero_gap_labels(ds)
        common = {"featurizer": self.featurizer, "seed": self.seed, "progress": self.progress,
                  "deep_features": self.deep_features}  # fmt: skip
        self.latent_ = None
        if self.classifier is None:
            options = {**common, **(self.classifier_options or {})}
            if self.latent and len(ds.fidelities) > 1:
                self.latent_ = self._fit_latent(ds, candidates, common)
                options["latent"] = self.latent_
            clf = MetalClassifier(self.multitask, **options)
        else:
            clf = copy.deepcopy(self.classifier)
        self.classifier_ = clf.fit(labels, candidates)
        positive = ~is_target | (f["value"].to_numpy() > 0)
        if not (is_target & positive).any():
            raise InputDataError("no nonzero target gaps to fit the positive part on")
        g = self._TRANSFORMS[self.transform][0]
        v = f["value"].to_numpy()[positive]
        shifted = np.where(is_target[positive], v, v + self.offset)  # > 0 everywhere
        self.regressor_ = MultiFidelityRegressor(
            self.architecture, **{**common, **(self.regressor_options or {})}
        ).fit(ds.with_frame(f[positive].assign(value=g(shifted))), candidates)
        self.model_ = self.regressor_.model_
        return self

    def _fit_latent(self, ds: MultiFidelityDataset, candidates, common: dict):
        """A single-fidelity GP of the lowest fidelity's gaps, for the classifier's input."""
        options = {**self.latent_defaults, **(self.latent if isinstance(self.latent, dict) else {})}
        cap = options.pop("max_rows_per_fidelity")
        rows = ds.capped_rows(cap, self.seed, candidates)
        rows = rows[ds.frame["fidelity_index"].to_numpy()[rows] == 0]
        lowest = ds.with_frame(ds.frame.iloc[rows], ds.fidelities[:1])
        return MultiFidelityRegressor("single", **{**common, **options},
                                      max_rows_per_fidelity=None).fit(lowest)  # fmt: skip

    def predictive(self, X) -> PointMassMixture:
        """The hurdle predictive of a new measurement of the target gap."""
        self._check_fitted()
        p = self.classifier_.predict_proba(X)
        return PointMassMixture(p, self.nonmetal_predictive(X), atom=0.0)

    def nonmetal_predictive(self, X) -> SoftplusNormalPredictive | LogNormalPredictive:
        """The gap *given* a non-metal: the continuous part of the hurdle on its own.

        Use it when metallicity is known (e.g. the compound is known to be a semiconductor).
        """
        self._check_fitted()
        mu, sd = self.regressor_.predict(X, True, observation_noise=True)
        return self._TRANSFORMS[self.transform][1](mu, sd)

    def predict(
        self,
        X,
        return_std: bool = False,
        statistic: str = "mean",
        threshold: float = 0.5,
    ):
        """A point prediction of the gap (and, with ``return_std``, the hurdle predictive's std).

        The hurdle predictive always describes a new measurement (its positive part includes
        the observation noise), so there is no ``observation_noise`` switch.

        Args:
            X: formulas, a frame with ``formula``, or contract tensors.
            return_std: also return the standard deviation of the hurdle predictive.
            statistic: ``"mean"`` (minimises squared error), ``"median"`` (minimises absolute
                error: 0 wherever ``P(metal) >= 0.5``), ``"classify"`` (0 where
                ``P(metal) >= threshold``, else the non-metal median: a hard decision, with
                ``threshold`` trading errors on metals against errors on non-metals) or
                ``"nonmetal"`` (the non-metal median, ignoring the classifier).
            threshold: decision threshold of ``"classify"``.
        """
        pred = self.predictive(X)
        if statistic == "mean":
            point = pred.mean()
        elif statistic == "median":
            point = pred.median()
        elif statistic == "classify":
            point = np.where(pred.weight >= threshold, 0.0, pred.continuous.median())
        elif statistic == "nonmetal":
            point = pred.continuous.median()
        else:
            raise InputDataError(
                f"unknown statistic {statistic!r}; choose mean, median, classify or nonmetal"
            )
        return (point, pred.std()) if return_std else point

    def predict_proba(self, X) -> np.ndarray:
        """``P(gap = 0)``."""
        self._check_fitted()
        return self.classifier_.predict_proba(X)
