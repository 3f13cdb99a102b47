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

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
import copy
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from botorch.models.model import Model
from sklearn.base import BaseEstimator
from torch import Tensor

from mfgp._progress import logger
from mfgp.calibration.predictive import (
    GaussianPredictive,
    LogNormalPredictive,
    PointMassMixture,
    SoftplusNormalPredictive,
)
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.exceptions import InputDataError, NotFittedError, SerializationError
from mfgp.fit import FitReport
from mfgp.hurdle import HurdleSpec
from mfgp.models.classifier import LatentInput, LatentInputClassifier
from mfgp.models.features import FeatureMap
from mfgp.models.specs import (
    AR1Spec,
    ClassifierSpec,
    FitOptions,
    LatentChainSpec,
    ModelSpec,
    MultiTaskSpec,
    SingleSpec,
)
from mfgp.nn.extractor import FeatureExtractor, pretrain
from mfgp.nn.finetune import finetune_extractor
from mfgp.predict import OwnRows, predict_marginals

if TYPE_CHECKING:
    from mfgp.calibration.recalibrate import RecalibratedPredictive

__all__ = [
    "zero_gap_labels",
    "ARCHITECTURES",
    "HurdleRegressor",
    "MetalClassifier",
    "MultiFidelityRegressor",
    "load_estimator",
]


def _single_spec(est) -> ModelSpec:
    return SingleSpec()


def _ar1_spec(est) -> ModelSpec:
    return AR1Spec(rho=est.rho, training=est.training, composition_effect=est._effect_on())


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


def _load_device(manifest: dict, device) -> torch.device | None:
    """The device to load onto: the one asked for, else the saved one if this machine has it."""
    if device is not None:
        return torch.device(device)
    saved = (manifest.get("params") or {}).get("device")
    if saved is None:
        return None
    saved = torch.device(saved)
    if saved.type == "cuda" and not torch.cuda.is_available():
        return None
    return saved


def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputDataError(
            f"{name} must be a positive integer{' or None' if allow_none else ''}; got {value!r}"
        )


_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _torch_dtype(dtype) -> torch.dtype:
    """``"float64"``, ``"float32"`` or the torch dtype -> the torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise InputDataError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


Parts = tuple[dict, dict[str, Tensor], dict[str, object]]


def _nest(name: str, parts: Parts, into: Parts) -> None:
    """Put a part's ``(manifest, tensors, members)`` into its owner's, under ``name``."""
    manifest, tensors, members = parts
    into[0].setdefault("parts", {})[name] = manifest
    into[1].update({f"{name}/{k}": v for k, v in tensors.items()})
    into[2].update({f"{name}.{k}": v for k, v in members.items()})


def _unnest(name: str, parts: Parts) -> Parts:
    """The part :func:`_nest` stored under ``name``."""
    manifest, tensors, members = parts
    if name not in manifest.get("parts", {}):
        raise SerializationError(f"the file has no part {name!r}: it is incomplete; save it again")
    t, m = f"{name}/", f"{name}."
    return (manifest["parts"][name],
            {k[len(t):]: v for k, v in tensors.items() if k.startswith(t)},
            {k[len(m):]: v for k, v in members.items() if k.startswith(m)})  # fmt: skip


def _prefixed(tensors: dict[str, Tensor], prefix: str | tuple[str, ...]) -> dict[str, Tensor]:
    return {k: v for k, v in tensors.items() if k.startswith(prefix)}


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

    device: str | None
    dtype: str

    @property
    def _tensor_options(self) -> dict:
        """``dtype`` and ``device`` of every tensor this estimator makes."""
        device = getattr(self, "device", None)
        return {"dtype": _torch_dtype(getattr(self, "dtype", "float64")),
                "device": None if device is None else torch.device(device)}  # fmt: skip

    def _featurizer_preset(self) -> str:
        """The featurizer preset the data need: ``"extended"`` under a mixture of experts."""
        if getattr(self, "experts", None) is None:
            return self.featurizer
        if self.featurizer not in ("magpie", "extended"):
            raise InputDataError(
                f"the source models read the 'extended' featurizer preset; featurizer="
                f"{self.featurizer!r} cannot be used with experts= (leave the default)"
            )
        return "extended"

    def _dataset(self, data, frame_options: dict) -> MultiFidelityDataset:
        preset = self._featurizer_preset()
        if isinstance(data, MultiFidelityDataset):
            if getattr(self, "experts", None) is not None and data.featurizer.preset != preset:
                raise InputDataError(
                    f"the source models read the 'extended' featurizer preset; this dataset was "
                    f"featurized with {data.featurizer.preset!r}: build it with "
                    "featurizer='extended' or pass the frame"
                )
            return data
        return MultiFidelityDataset.from_frame(
            data, self.fidelities, featurizer=preset, **frame_options
        )

    def _extractor(self, X: Tensor, Y: Tensor) -> FeatureExtractor | None:
        """The extractor (pretrained here if asked) and ``feature_map_``, the model's input map."""
        experts = getattr(self, "experts", None)
        if experts is not None:
            from mfgp.experts import load_stack

            if self.deep_features is not False:
                raise InputDataError(
                    "experts= and deep_features= are two input spaces; pass one of them "
                    f"(got experts={experts!r}, deep_features={self.deep_features!r})"
                )
            stack = load_stack(experts, getattr(self, "mixture", "concat"))  # classifier: concat
            stack.to(X.device)
            self.feature_map_ = FeatureMap(extractor=stack)
            return stack
        if isinstance(self.deep_features, FeatureExtractor):
            extractor = self.deep_features
        elif not self.deep_features:
            self.feature_map_ = FeatureMap.standardize(X)
            return None
        else:
            low = X[:, -1] == 0
            options = {"seed": self.seed, "progress": self.progress,
                       **(self.pretrain_options or {})}  # fmt: skip
            extractor, self.pretrain_report_ = pretrain(X[low, :-1].cpu(), Y[low, 0].cpu(),
                                                        **options)  # fmt: skip
        extractor.to(X.device)
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
        options = self._tensor_options
        if isinstance(X, Tensor):
            return X.to(**options)
        if isinstance(X, str):
            X = [X]  # one formula, not its characters
        formulas = X["formula"].tolist() if isinstance(X, pd.DataFrame) else list(X)
        return self.dataset_.inputs_for(formulas, fidelity, **options)

    def _asked(self, X, fidelity: str | None) -> tuple[Tensor, np.ndarray]:
        """``(raw, keys)``: raw contract tensors and each row's reduced composition.

        The keys of formulas are their reduced compositions (what rows are matched by); raw
        tensors carry no formula, so their rows are matched to the training compositions by
        features (:meth:`MultiFidelityDataset.compositions_at`, to the precision of their
        dtype; ``None`` where none matches).
        """
        from mfgp.featurize import reduced_composition

        raw = self._raw_inputs(X, fidelity)
        if isinstance(X, Tensor):
            return raw, self.dataset_.compositions_at(raw)
        if isinstance(X, str):
            X = [X]
        formulas = X["formula"].tolist() if isinstance(X, pd.DataFrame) else list(X)
        return raw, np.array(reduced_composition(formulas), dtype=object)

    # -- saving (the format: :mod:`mfgp.io`) ---------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save the fitted estimator to one file, without pickle (:mod:`mfgp.io`).

        The file holds the estimator's parameters, each model's spec and state dict, the
        dataset's rows (compositions, fidelities, values, noise: what predictions condition
        on) and the featurizer preset and version; features are recomputed on load (the
        featurizer is deterministic, its version is checked). Written atomically: an
        interrupted save leaves the previous file intact.

        Example:
            >>> reg.save("gaps.mfgp"); MultiFidelityRegressor.load("gaps.mfgp")  # doctest: +SKIP
        """
        self._check_fitted()
        from mfgp.io import write_bundle

        return write_bundle(path, *self._parts())

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str | None = None):
        """An estimator saved by :meth:`save`, ready to predict (bit-identical predictions).

        Args:
            path: the file.
            device: where to put the models (default: the device it was saved from, when
                this machine has it, else the CPU).

        Raises:
            SerializationError: a truncated or corrupted file, one of another estimator, or a
                featurizer whose version differs from the one that wrote it.
            IncompatibleVersionError: written in a newer format.
            UnknownSpecError: a spec that is not registered in this mfgp.
        """
        from mfgp.io import read_bundle

        manifest, tensors, members = read_bundle(path)
        if manifest.get("kind") != cls.__name__:
            raise SerializationError(
                f"{path} holds a {manifest.get('kind')!r}, not a {cls.__name__}; load it with "
                f"that class"
            )
        return cls._from_parts((manifest, tensors, members), device, path)

    def _params_for_saving(self, saved_apart: tuple[str, ...] = ()) -> dict:
        """``get_params()`` as JSON; an extractor given as ``deep_features`` is in the model.

        ``saved_apart``: parameters saved as parts of their own (stored as ``None`` here).
        """
        import json

        params = {**self.get_params(deep=False), **dict.fromkeys(saved_apart)}
        if isinstance(params.get("deep_features"), FeatureExtractor):
            params["deep_features"] = "extractor"
        for key, value in params.items():
            try:
                json.dumps(value)
            except TypeError as err:
                raise SerializationError(
                    f"parameter {key}={value!r} of {type(self).__name__} cannot be saved without "
                    "pickle; use one of the documented values"
                ) from err
        return params

    @classmethod
    def _init_from_saved(cls, params: dict, feature_map: FeatureMap | None,
                         device) -> _FormulaEstimator:  # fmt: skip
        params = dict(params)
        if params.get("deep_features") == "extractor":
            params["deep_features"] = feature_map.extractor
        if "device" in params:
            params["device"] = None if device is None else str(device)
        return cls(**params)

    def _dataset_parts(self, into: Parts) -> None:
        manifest, tensors, member = self.dataset_.to_parts()
        into[0]["dataset"] = manifest
        into[1].update({f"data.{k}": v for k, v in tensors.items()})
        into[2]["dataset"] = member

    @staticmethod
    def _dataset_from_parts(parts: Parts, source) -> MultiFidelityDataset:
        manifest, tensors, members = parts
        info = manifest.get("dataset")
        if info is None:  # files of the first format: the same entries at the top level
            info = {"fidelities": manifest["fidelities"], "featurizer": manifest["featurizer"]}
        data = {k[len("data."):]: v for k, v in tensors.items() if k.startswith("data.")}
        return MultiFidelityDataset.from_parts(info, data, members["dataset"], source)

    def _parts(self) -> Parts:
        raise NotImplementedError

    @classmethod
    def _from_parts(cls, parts: Parts, device, source) -> _FormulaEstimator:
        raise NotImplementedError


class _Recalibrated:
    """Recalibration of a regressor's predictive on its own cross-validation (a mixin).

    :meth:`recalibrate` fits an :class:`~mfgp.calibration.IsotonicRecalibration` on the
    out-of-fold predictive distributions of the target values and keeps it as
    ``recalibration_``; the estimator's predictive distribution of a new target measurement is
    mapped through it from then on, ``save`` stores it and a new ``fit`` drops it.
    """

    recalibration_ = None

    def recalibrate(self, folds=5, *, seed: int = 0, grouped: bool = False,
                    progress: bool | None = None):  # fmt: skip
        """Recalibrate the predictive distribution on this estimator's own cross-validation.

        Each fold refits an unfitted copy of the estimator (the same parameters) on the data
        it was fitted on less the fold's target compositions (their lower-fidelity rows stay:
        a new composition usually has its DFT value) and predicts the held-out target values;
        the isotonic map of those out-of-fold predictives (:class:`~mfgp.calibration.
        IsotonicRecalibration`, for a hurdle both the gap's distribution and ``P(metal)``)
        then repairs the shape of every later predictive distribution: intervals, quantiles,
        the log score. This estimator's own fit is left as it is. It costs one fit of the
        estimator per fold.

        Args:
            folds: the number of folds (seeded K-fold over the target compositions) or the
                folds themselves (:func:`mfgp.data.kfold`, :func:`mfgp.data.grouped_kfold`).
            seed: the folds' seed (when ``folds`` is a number).
            grouped: fold by chemical system (:func:`mfgp.data.grouped_kfold`) when ``folds``
                is a number: intervals for compositions in unseen chemical systems.
            progress: a bar over the folds (default: the estimator's ``progress``).

        Returns:
            ``self``, with ``recalibration_`` (the map) and ``recalibration_cv_`` (the
            :class:`~mfgp.calibration.CVResult` it was fitted on).

        Raises:
            InputDataError: too few target compositions for ``folds``.

        Example:
            >>> gaps = HurdleRegressor().fit(df).recalibrate(5)  # doctest: +SKIP
            >>> gaps.predictive(["GaAs"]).interval(0.9)  # recalibrated  # doctest: +SKIP
        """
        self._check_fitted()
        from sklearn.base import clone

        from mfgp.calibration import IsotonicRecalibration, cross_validate
        from mfgp.data.splits import Folds, grouped_kfold, kfold

        ds = self.dataset_
        if not isinstance(folds, Folds):
            _check_positive_int("folds", folds)
            folds = (grouped_kfold if grouped else kfold)(ds, folds, seed=seed)
        show = self.progress if progress is None else progress
        template = clone(self)
        if not show:
            template.set_params(progress=False)
        cv = cross_validate(template, ds, folds, progress=show)
        iso = IsotonicRecalibration().fit(cv.predictions["observed"].to_numpy(), cv.predictive())
        self.recalibration_, self.recalibration_cv_ = iso, cv
        logger.info("recalibrated on %d out-of-fold target values (%d folds)",
                    len(cv.predictions), len(cv.fit_seconds))  # fmt: skip
        return self

    def _recalibrated(self, pred, where: np.ndarray | None = None):
        """``pred`` mapped by ``recalibration_``, at the rows ``where`` is true (default: all)."""
        if self.recalibration_ is None or (where is not None and not np.any(where)):
            return pred
        if where is not None and np.all(where):
            where = None
        return self.recalibration_.transform(pred, where=where)

    def _at_target(self, X, fidelity: str | None) -> np.ndarray | None:
        """Which asked rows are of the target fidelity (``None``: all of them).

        Formulas are asked at one fidelity; raw tensors say theirs in the last column (a row
        of a lower fidelity there is not a target measurement, whatever ``fidelity`` says).
        """
        fids = self.dataset_.fidelities
        if isinstance(X, Tensor):
            return (X[..., -1].round().long() == len(fids) - 1).reshape(-1).cpu().numpy()
        return None if fidelity is None or fidelity == fids[-1] else np.zeros(0, dtype=bool)

    def _recalibration_parts(self, into: Parts) -> None:
        if self.recalibration_ is not None:
            into[2]["recalibration"] = self.recalibration_.to_dict()
            cv = getattr(self, "recalibration_cv_", None)
            if cv is not None:
                into[2]["recalibration_cv"] = _cv_to_json(cv)

    def _recalibration_from_parts(self, parts: Parts) -> None:
        from mfgp.calibration import IsotonicRecalibration

        saved = parts[2].get("recalibration")
        self.recalibration_ = None if saved is None else IsotonicRecalibration.from_dict(saved)
        cv = parts[2].get("recalibration_cv")
        if cv is not None:
            self.recalibration_cv_ = _cv_from_json(cv)


def _predictive_to_json(pred) -> dict | None:
    """A predictive of the out-of-fold rows as JSON (``None``: a kind not stored)."""
    kinds = {GaussianPredictive: ("gaussian", "_mean", "_std"),
             LogNormalPredictive: ("lognormal", "mu", "sigma"),
             SoftplusNormalPredictive: ("softplus", "mu", "sigma")}  # fmt: skip
    if isinstance(pred, PointMassMixture):
        inner = _predictive_to_json(pred.continuous)
        return None if inner is None else {"kind": "mixture", "weight": pred.weight.tolist(),
                                           "atom": pred.atom, "continuous": inner}  # fmt: skip
    if type(pred) not in kinds:
        return None
    kind, a, b = kinds[type(pred)]
    return {"kind": kind, "a": getattr(pred, a).tolist(), "b": getattr(pred, b).tolist()}


def _predictive_from_json(d: dict):
    if d["kind"] == "mixture":
        return PointMassMixture(np.asarray(d["weight"]), _predictive_from_json(d["continuous"]),
                                d["atom"])  # fmt: skip
    cls = {"gaussian": GaussianPredictive, "lognormal": LogNormalPredictive,
           "softplus": SoftplusNormalPredictive}[d["kind"]]  # fmt: skip
    return cls(np.asarray(d["a"]), np.asarray(d["b"]))


def _cv_to_json(cv) -> dict:
    """``recalibration_cv_`` (a :class:`~mfgp.calibration.CVResult`) as JSON, for ``save``."""
    p = cv.predictions
    preds = None
    if cv.predictives is not None:
        preds = [_predictive_to_json(q) for q in cv.predictives]
        preds = None if any(q is None for q in preds) else preds
    return {"columns": list(p.columns),
            "data": {c: p[c].tolist() for c in p.columns},
            "fit_seconds": [float(t) for t in cv.fit_seconds], "predictives": preds}  # fmt: skip


def _cv_from_json(d: dict):
    from mfgp.calibration.cv import CVResult

    frame = pd.DataFrame({c: d["data"][c] for c in d["columns"]}, columns=d["columns"])
    preds = d.get("predictives")
    return CVResult(frame, list(d["fit_seconds"]),
                    None if preds is None else [_predictive_from_json(q) for q in preds])


class MultiFidelityRegressor(_Recalibrated, _FormulaEstimator):
    """Fit a multi-fidelity GP to a long-format frame of formulas and predict new formulas.

    Args:
        architecture: ``"ar1"`` (difference), ``"multitask"`` (LCM), ``"latent"`` (explicit
            latent chain: it predicts the target fidelity only and refuses a lower one with an
            :class:`~mfgp.exceptions.InputDataError`) or ``"single"`` (target fidelity only).
        fidelities: fidelity names low to high (default: order of appearance in the frame).
        featurizer: a composition featurizer preset.
        deep_features: ``False`` (GP on standardised composition features), ``True`` (pretrain a
            frozen extractor on the lowest fidelity: all its rows, not only the capped ones), or
            a :class:`~mfgp.nn.FeatureExtractor` to use as is.
        pretrain_options: keyword arguments for :func:`mfgp.nn.pretrain`.
        experts: a mixture of pretrained source models as the input space: ``"all"`` (every
            source shipped in :mod:`mfgp.experts`), a list of their names, or ``None`` (off).
            The data are featurized with the ``"extended"`` preset the experts read.
        mixture: how the experts combine (with ``experts``): ``"additive"`` (a kernel per
            expert, weights by marginal likelihood), ``"gated"`` (a softmax gate over the
            experts' features) or ``"concat"`` (one ARD kernel). :meth:`source_weights` reads
            the learned weights.
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
        composition_effect: (``"ar1"``) each lower level's per-composition effect, shared
            with the levels above (:class:`~mfgp.kernels.effect.CompositionEffect`): a
            composition's own computed value (its polymorph, its ground state) then moves its
            prediction above, by the share of its deviation the fit attributes to the
            composition rather than to noise (fitted with the level above: 0 where the lower
            level's composition effect does not help it). ``False`` (the default, chosen on
            the development fold: the effect lowered the Gaussian AR1's band-gap MAE from
            0.339 to 0.320 eV but raised its NLPD from 0.78 to 0.83, changed nothing for the
            hurdle and the enthalpy ladder, and took 1.9 to 3.8 times as long to fit on a
            shared machine; ``docs/models.md``),
            ``True``, or ``"auto"``: on for the ``"ar1"`` with two or more fidelities and no
            fine-tuning.
        seed: seeds every random choice.
        progress: show progress bars.
        device: where the model lives and predicts (``"cpu"``, ``"cuda"``, ``"cuda:1"``;
            default: the CPU); every tensor is made there, never moved through NumPy inside a
            posterior call.
        dtype: ``"float64"`` (the default: GP solves need it) or ``"float32"``.

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
        experts: str | Sequence[str] | None = None,
        mixture: str = "additive",
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
        composition_effect: bool | str = False,
        seed: int = 0,
        progress: bool = True,
        device: str | None = None,
        dtype: str = "float64",
    ) -> None:
        self.architecture = architecture
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.pretrain_options = pretrain_options
        self.experts = experts
        self.mixture = mixture
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
        self.composition_effect = composition_effect
        self.seed = seed
        self.progress = progress
        self.device = device
        self.dtype = dtype

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

        Known noise: a column ``noise`` of the frame (or the one named by ``noise_col=``) holds
        each row's measurement-noise *variance*, in the value's units squared (eV^2 for gaps
        in eV), for every row or none; the GP then uses those variances instead of learning a
        noise per fidelity. ``noise_col=None`` ignores such a column.
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
        self._effect_on(check_only=True)  # the option, for every architecture
        if self.rho != "constant" and self.architecture != "ar1":
            raise InputDataError(
                f"rho={self.rho!r} applies to the 'ar1' architecture, not {self.architecture!r}"
            )
        _check_positive_int("max_rows_per_fidelity", self.max_rows_per_fidelity, True)
        _check_positive_int("max_fit_points", self.max_fit_points, True)
        _check_positive_int("max_iter", self.max_iter)
        _check_positive_int("rank", self.rank)
        _check_positive_int("num_latents", self.num_latents)
        if self.finetune and (not self.deep_features or self.architecture == "latent"):
            raise InputDataError(
                "finetune needs deep features (deep_features=True or an extractor) and the "
                f"'single', 'ar1' or 'multitask' architecture; got deep_features="
                f"{self.deep_features!r}, architecture={self.architecture!r}"
            )
        options = self._tensor_options
        ds = self._dataset(data, frame_options)
        self.dataset_, self.recalibration_ = ds, None
        n_target = int((ds.frame["fidelity_index"] == len(ds.fidelities) - 1).sum())
        if n_target < 2:
            raise InputDataError(
                f"the target fidelity {ds.target!r} has {n_target} row(s); a GP needs at least "
                "2 target observations (check fidelities=, the last one is the target)"
            )
        X_all, Y_all, _ = ds.tensors(**options)
        self.extractor_ = self._extractor(X_all, Y_all)
        rows = ds.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        self.train_rows_ = rows
        X, Y, Yvar = ds.tensors(rows, **options)  # the same call as load(): bit-identical
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

    def _effect_on(self, check_only: bool = False) -> bool:
        """Whether the AR1 gets the composition effect (``composition_effect``, resolved).

        ``check_only``: check the option before the data are read (returns ``False``).
        """
        effect = self.composition_effect
        if isinstance(effect, (bool, np.bool_)):
            effect = bool(effect)
        elif effect != "auto":
            raise InputDataError(
                f"composition_effect must be 'auto', True or False; got {effect!r}"
            )
        if effect is True and self.architecture != "ar1":
            raise InputDataError(
                f"composition_effect=True is part of the 'ar1' architecture, not "
                f"{self.architecture!r}; use architecture='ar1' or composition_effect=False"
            )
        if effect is True and self.finetune:
            raise InputDataError(
                "composition_effect=True cannot be fine-tuned (finetune= trains the extractor "
                "on the features alone); pass composition_effect=False or finetune=False"
            )
        if check_only:
            return False
        if effect == "auto":
            return not self.finetune and len(self.dataset_.fidelities) > 1
        return bool(effect)

    def _finetune(self, model, raw: Tensor) -> FeatureMap:
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
    def _parts(self) -> Parts:
        from mfgp.io import model_tensors
        from mfgp.models.specs import FeatureMapSpec

        X, Y, Yvar = self.dataset_.tensors(self.train_rows_)
        state = model_tensors(self.model_, self.feature_map_, (X, Y, Yvar), None)
        parts: Parts = ({
            "kind": type(self).__name__,
            "params": self._params_for_saving(),
            "spec": self.spec_.to_dict(),
            "feature_map": FeatureMapSpec.of(self.feature_map_).to_dict(),
            "dtype": _dtype_name(X.dtype if self.dtype is None else _torch_dtype(self.dtype)),
            "fit_reports": [dataclasses.asdict(r) for r in self.fit_reports_],
            "reports": {name: dataclasses.asdict(getattr(self, f"{name}_report_"))
                        for name in ("pretrain", "finetune")
                        if getattr(self, f"{name}_report_", None) is not None},
        }, _prefixed(state, ("state.", "fmap.")), {})  # fmt: skip
        parts[1]["train_rows"] = torch.as_tensor(np.asarray(self.train_rows_, dtype=np.int64))
        self._dataset_parts(parts)
        self._recalibration_parts(parts)
        return parts

    @classmethod
    def _from_parts(cls, parts: Parts, device, source) -> MultiFidelityRegressor:
        from mfgp.io import rebuild_model

        manifest, tensors, _ = parts
        ds = cls._dataset_from_parts(parts, source)
        device = _load_device(manifest, device)
        dtype = _torch_dtype(manifest.get("dtype", "float64"))
        rows = tensors["train_rows"].numpy()
        X, Y, Yvar = ds.tensors(rows, dtype=dtype)
        X_all, Y_all, _ = ds.tensors(dtype=dtype)
        state = _prefixed(tensors, ("state.", "fmap."))
        state.update({"train.X": X, "train.Y": Y, "obs.X": X_all, "obs.Y": Y_all})
        if Yvar is not None:
            state["train.Yvar"] = Yvar
        spec, model, fmap = rebuild_model(manifest, state, device)
        est = cls._init_from_saved(manifest["params"], fmap, device)
        est.dataset_, est.train_rows_, est.spec_, est.model_ = ds, rows, spec, model
        est.feature_map_ = fmap
        est.extractor_ = fmap.extractor
        est.fit_reports_ = [FitReport(**r) for r in manifest.get("fit_reports", [])]
        reports = manifest.get("reports", {})
        if "pretrain" in reports:
            from mfgp.nn.extractor import PretrainReport

            est.pretrain_report_ = PretrainReport(**reports["pretrain"])
        if "finetune" in reports:
            from mfgp.nn.finetune import FinetuneReport

            est.finetune_report_ = FinetuneReport(**reports["finetune"])
        est._recalibration_from_parts(parts)
        return est

    def _left_out(self) -> np.ndarray:
        """Mask of the dataset's rows that the fit left out and a prediction may condition on."""
        ds = self.dataset_
        mask = np.ones(ds.n, dtype=bool)
        mask[self.train_rows_] = False
        if self.architecture == "single":  # its model reads the target's rows only
            mask &= ds.frame["fidelity_index"].to_numpy() == len(ds.fidelities) - 1
        return mask

    def _own_rows(self, keys: np.ndarray, device: torch.device, dtype: torch.dtype
                  ) -> OwnRows | None:  # fmt: skip
        """The left-out rows of each asked composition, keyed per composition (or ``None``).

        The fit keeps a capped sample of each lower fidelity's rows; a prediction at a
        composition also conditions on that composition's rows it left out, and on no other
        composition's, so it is the same whatever else is asked in the same call. The
        explicit-latent chain needs none: its observed latents hold every lower-level row.
        """
        if getattr(self.model_, "conditioned_on", None) is None:
            return None
        ds, left = self.dataset_, self._left_out()
        table = ds.rows_by_composition
        owners, rows, owner_of = {}, [], []
        for key in dict.fromkeys(k for k in keys if k is not None):
            extra = table.get(key)
            extra = extra[left[extra]] if extra is not None else extra
            if extra is not None and extra.size:
                owners[key] = len(owners)
                rows.append(extra)
                owner_of.append(np.full(extra.size, owners[key], dtype=np.int64))
        if not owners:
            return None
        rows = np.concatenate(rows)
        X, Y, Yvar = ds.tensors(rows, dtype=dtype, device=device)
        query = torch.as_tensor(np.array([owners.get(k, -1) for k in keys], dtype=np.int64),
                                device=device)  # fmt: skip
        return OwnRows(query, X, Y, Yvar, torch.as_tensor(np.concatenate(owner_of),
                                                          device=device))  # fmt: skip

    def _check_level(self, raw: Tensor) -> None:
        """``"latent"`` answers at the target only: refuse a lower fidelity, naming the fix."""
        if self.architecture != "latent":
            return
        fids = self.dataset_.fidelities
        low = raw[..., -1].round().long() != len(fids) - 1
        if bool(low.any()):
            level = fids[int(raw[..., -1].reshape(-1)[low.reshape(-1)][0].round())]
            raise InputDataError(
                f"architecture 'latent' predicts the target fidelity {fids[-1]!r} only; asked "
                f"for {level!r}. Fit MultiFidelityRegressor('single') on the {level!r} rows, or "
                "use architecture 'ar1' or 'multitask', which answer at every fidelity"
            )

    def _marginals(self, raw: Tensor, keys: np.ndarray, *, observation_noise: bool = False,
                   batch_size: int = 4096) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Marginal mean and variance at ``raw``; each row conditioned on its own left-out rows."""
        own = self._own_rows(keys, raw.device, raw.dtype)
        return predict_marginals(self.model_, raw, observation_noise=observation_noise,
                                 batch_size=batch_size, own_rows=own)  # fmt: skip

    def _prediction_model(self, raw: Tensor, keys: np.ndarray | None = None) -> Model:
        """The fitted model conditioned on the left-out rows of *all* the asked compositions.

        For a joint prediction over several compositions (:meth:`predict_combination`): the
        model conditions on the union of those compositions' left-out rows, by a block update
        of the cached factor (hyperparameters unchanged). Marginal predictions use
        :meth:`_marginals` instead (each row its own composition's rows only). ``keys``: the
        rows' reduced compositions (default: matched by features, see :meth:`_asked`).
        """
        update = getattr(self.model_, "conditioned_on", None)
        if update is None:
            return self.model_
        if keys is None:
            keys = self.dataset_.compositions_at(raw)
        rows = self.dataset_.rows_of([k for k in keys if k is not None])
        rows = rows[self._left_out()[rows]]
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
        model's device, in bounded memory; each row's value does not depend on the others:
        a composition's prediction conditions on the fitted rows and on that composition's own
        rows the fit left out (``max_rows_per_fidelity``), never on another asked
        composition's, so it is the same asked alone or in a batch of any size. Rows are keyed
        by reduced composition; raw tensors carry no formula and are matched to the data's
        compositions by their features (to the precision of their dtype).

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
        Z, keys = self._asked(X, fidelity)
        self._check_level(Z)
        mean, var = self._marginals(Z, keys, observation_noise=observation_noise,
                                    batch_size=batch_size)  # fmt: skip
        mean = mean.cpu().numpy()
        if not return_std:
            return mean
        return mean, var.clamp_min(1e-12).sqrt().cpu().numpy()

    def predict_combination(
        self,
        X: Sequence[str] | pd.DataFrame | Tensor,
        weights: Sequence[float] | np.ndarray,
        *,
        fidelity: str | Sequence[str] | None = None,
        observation_noise: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and std of ``sum_i w_i f(x_i)`` under the joint posterior (covariances included).

        A reaction energy, or the difference between two fidelities at one composition, is a
        linear map of the joint posterior (:func:`mfgp.models.linear_combination`): its
        variance ``w^T Sigma w`` is smaller than ``sum_i w_i^2 sigma_i^2`` where the terms'
        errors are positively correlated (they cancel, Hutchinson et al. 2017).

        The joint posterior conditions on the fitted rows and on the left-out rows of *every*
        term's composition (the union: one joint model for all terms), so a term's
        contribution can depend on the other terms of the same call; the combination is a
        function of the terms asked, not of how they are batched (one call, one model).
        :meth:`predict` conditions each composition on its own rows only.

        Args:
            X: the ``q`` terms: formulas, a frame with ``formula``, or raw contract tensors.
            weights: ``q`` weights (one combination) or ``k x q`` (``k`` combinations).
            fidelity: the fidelity of every term (default: the target), or one per term.
            observation_noise: include each term's observation noise (a combination of new
                measurements).

        Returns:
            ``(mean, std, std_independent)``, each of shape ``k`` (floats for one combination):
            ``std_independent`` ignores the covariances (what adding the terms' own
            uncertainties would give).
        """
        from mfgp.models.composite import linear_combination

        if isinstance(X, str):
            X = [X]
        if fidelity is None or isinstance(fidelity, str) or isinstance(X, Tensor):
            Z, keys = self._asked(X, fidelity if not isinstance(X, Tensor) else None)
        else:
            formulas = X["formula"].tolist() if isinstance(X, pd.DataFrame) else list(X)
            if len(fidelity) != len(formulas):
                raise InputDataError(
                    f"fidelity has {len(fidelity)} entries for {len(formulas)} terms; give one "
                    "per term, or one string for all"
                )
            asked = [self._asked([f], fid) for f, fid in zip(formulas, fidelity)]
            Z = torch.cat([a[0] for a in asked])
            keys = np.concatenate([a[1] for a in asked])
        W = torch.as_tensor(np.asarray(weights, dtype=float), dtype=Z.dtype, device=Z.device)
        if W.shape[-1] != Z.shape[0] or W.dim() > 2:
            raise InputDataError(
                f"weights of shape {tuple(W.shape)} for {Z.shape[0]} terms; give q = "
                f"{Z.shape[0]} weights, or k x {Z.shape[0]}"
            )
        self._check_level(Z)
        model = self._prediction_model(Z, keys)
        with torch.no_grad():  # one joint posterior: its diagonal gives the independent std
            mean, var, independent = linear_combination(
                model, Z, W, observation_noise=observation_noise, independent=True
            )
        out = tuple(t.clamp_min(0).sqrt().cpu().numpy() if i else t.cpu().numpy()
                    for i, t in enumerate((mean, var, independent)))  # fmt: skip
        return tuple(float(v) for v in out) if W.dim() == 1 else out

    def reaction_energy(
        self, reactions: str | Sequence[str], *, fidelity: str | None = None, level: float = 0.9
    ) -> pd.DataFrame:
        """Reaction energies from a regressor of formation enthalpies (eV/atom), with intervals.

        Each reaction (``"Li2O + SiO2 -> Li2SiO3"``; balanced by pymatgen when no
        coefficients are given) becomes ``sum_i c_i N_i H_f(x_i)``
        (:func:`mfgp.data.reactions.parse_reaction`; elements are exactly 0), predicted with
        :meth:`predict_combination`. Each reaction conditions on its own compounds' left-out
        rows only (see :meth:`predict_combination`): reactions whose compounds have none share
        one joint call, the others are predicted one by one, so a reaction's row is the same
        whatever other reactions are asked with it.

        Returns:
            One row per reaction: ``reaction`` (as given), ``equation`` (balanced), ``mean``,
            ``std`` (eV per reaction as written, covariances included), ``std_independent``
            (without them), ``lower_<level>`` and ``upper_<level>``.
        """
        from mfgp.data.reactions import parse_reaction

        if isinstance(reactions, str):
            reactions = [reactions]
        level = _interval_level(level)
        parsed = [parse_reaction(r) for r in reactions]
        formulas = list(dict.fromkeys(f for r in parsed for f in r.formulas))
        W = np.zeros((len(parsed), max(len(formulas), 1)))
        for k, r in enumerate(parsed):
            for f, w in zip(r.formulas, r.weights):
                W[k, formulas.index(f)] += w
        mean, std, indep = (np.zeros(len(parsed)) for _ in range(3))  # elements only: 0
        if formulas:
            from mfgp.featurize import reduced_composition

            left = self._left_out() if hasattr(self.model_, "conditioned_on") else None
            keys = reduced_composition(formulas)
            own = np.array([left is not None and bool(left[self.dataset_.rows_of([k])].any())
                            for k in keys])  # fmt: skip
            alone = [k for k in range(len(parsed)) if own[W[k] != 0].any()]
            shared = [k for k in range(len(parsed)) if k not in alone]
            for ks, cols in [(shared, ~own)] + [([k], W[k] != 0) for k in alone]:
                if not ks or not cols.any():
                    continue
                terms = [f for f, c in zip(formulas, cols) if c]
                out = self.predict_combination(terms, W[np.ix_(ks, cols)], fidelity=fidelity)
                mean[ks], std[ks], indep[ks] = out
        bounds = {k: v for k, v in GaussianPredictive(mean, np.maximum(std, 1e-300)).table(level)
                  .items() if k.startswith(("lower_", "upper_"))}  # fmt: skip
        return pd.DataFrame({"reaction": list(reactions), "equation": [r.equation for r in parsed],
                             "mean": mean, "std": std, "std_independent": indep,
                             **bounds})  # fmt: skip

    def source_weights(self) -> pd.DataFrame:
        """The learned weight of each source model (a mixture of experts: ``experts=``).

        One row per source and kernel component, tidy (:func:`mfgp.experts.source_weights`):
        for ``"ar1"`` the component of fidelity ``t`` is its discrepancy ``delta_t`` (so the
        target's row says which sources explain what the level below does not), for
        ``"single"`` and ``"latent"`` the target's (``"latent"``: the lowest level's) kernel,
        for ``"multitask"`` each latent process. Plot with :func:`mfgp.experts.plot_source_weights`.

        Raises:
            InputDataError: not fitted with ``experts=``, or ``mixture="concat"``.
        """
        from mfgp.experts.mixture import source_weights

        self._check_fitted()
        if self.experts is None:
            raise InputDataError(
                "source weights belong to a mixture of experts: fit with experts='all' (or a "
                "list of names from mfgp.experts.available())"
            )
        fids = list(self.dataset_.fidelities)
        names = {"ar1": fids, "single": [fids[-1]], "latent": fids,
                 "multitask": [f"latent {q}" for q in range(self.num_latents)]}  # fmt: skip
        return source_weights(self.model_, names[self.architecture])

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
        self, X, fidelity: str | None = None, observation_noise: bool = True,
        recalibrated: bool = True,
    ) -> GaussianPredictive | RecalibratedPredictive:  # fmt: skip
        """The predictive distribution (for :mod:`mfgp.calibration` metrics and plots).

        After :meth:`recalibrate`, that of a new target measurement (the target fidelity,
        ``observation_noise=True``) is the recalibrated one unless ``recalibrated=False``; other
        fidelities and the latent function stay Gaussian (the map was fitted on target values),
        as do the rows of raw tensors whose fidelity column is not the target's.
        """
        mean, std = self.predict(X, True, fidelity=fidelity, observation_noise=observation_noise)
        pred = GaussianPredictive(mean, std)
        if not (recalibrated and observation_noise):
            return pred
        return self._recalibrated(pred, self._at_target(X, fidelity))

    def surrogate(self):
        """What a campaign or a screen calls: a :class:`~mfgp.surrogates.GaussianSurrogate`."""
        from mfgp.surrogates import GaussianSurrogate

        return GaussianSurrogate(self)

    def predict_frame(
        self, formulas: Sequence[str], fidelity: str | None = None, level: float = 0.9
    ) -> pd.DataFrame:
        """A table of predictions with central intervals, one row per formula.

        The intervals are those of :meth:`predictive` (recalibrated after :meth:`recalibrate`).

        Args:
            formulas: the compositions.
            fidelity: the fidelity to predict (default: the target).
            level: the central interval's probability, as a fraction (``0.9``) or a
                percentage (``90``); columns ``lower_90`` and ``upper_90``.
        """
        if isinstance(formulas, str):
            formulas = [formulas]
        level = _interval_level(level)
        pred = self.predictive(formulas, fidelity=fidelity, observation_noise=True)
        return pd.DataFrame({"formula": list(formulas), **pred.table(level)})


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
        experts: shipped source models as the input space (``"all"`` or a list of names from
            :func:`mfgp.experts.available`); the classifier's ARD kernel sees their
            concatenated features. The data are featurized with the ``"extended"`` preset.
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
        device, dtype: as in :class:`MultiFidelityRegressor`.

    Attributes:
        dataset_: the training rows.
        spec_: the :class:`~mfgp.models.specs.ClassifierSpec`.
        model_: the fitted :class:`~mfgp.models.GPClassifier`, or with ``latent`` a
            :class:`~mfgp.models.LatentInputClassifier` (the quadrature over the latent is its).
        classes_: ``[0, 1]`` (1 = metal), the columns of :meth:`predict_proba`.

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
        experts: str | Sequence[str] | None = None,
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
        device: str | None = None,
        dtype: str = "float64",
    ) -> None:
        self.multitask = multitask
        self.fidelities = fidelities
        self.featurizer = featurizer
        self.deep_features = deep_features
        self.experts = experts
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
        self.device = device
        self.dtype = dtype

    def fit(
        self,
        data: pd.DataFrame | MultiFidelityDataset,
        candidates: Sequence[str] | None = None,
        **frame_options,
    ) -> MetalClassifier:
        """Fit on labelled rows; ``candidates`` as in :meth:`MultiFidelityRegressor.fit`.

        Raises:
            InputDataError: the rows carry known noise variances (a ``noise`` column): 0/1
                labels have none; drop the column or pass ``noise_col=None``.
        """
        if self.deep_features is True:
            raise InputDataError(
                "MetalClassifier takes deep_features=False or a fitted FeatureExtractor (pretrain "
                "one on a regression target, e.g. PBE gaps, with mfgp.nn.pretrain)"
            )
        _check_positive_int("latent_nodes", self.latent_nodes)
        _check_positive_int("num_inducing", self.num_inducing)
        _check_positive_int("max_rows_per_task", self.max_rows_per_task, True)
        spec = ClassifierSpec(num_inducing=self.num_inducing, rank=self.rank, epochs=self.epochs,
                              batch_size=self.batch_size, lr=self.lr, seed=self.seed)  # fmt: skip
        ds = self._dataset(data, frame_options)
        if ds.frame["noise"].notna().any():
            raise InputDataError(
                "MetalClassifier fits 0/1 labels, which have no noise variance, but the rows "
                "carry known noise (a 'noise' column); drop the column or pass noise_col=None"
            )
        self.dataset_ = ds
        if self.latent is not None:
            self._check_latent()
        options = self._tensor_options
        X_all, Y_all, _ = ds.tensors(**options)
        self.extractor_ = self._extractor(X_all, Y_all)
        if self.multitask:
            rows = ds.capped_rows(self.max_rows_per_task, self.seed, candidates)
        else:
            rows = np.flatnonzero(ds.frame["fidelity_index"].to_numpy() == len(ds.fidelities) - 1)
        X, Y = self._task_inputs(self._inputs(X_all[rows])), (Y_all[rows] >= 0.5).to(Y_all)
        latent = None
        if self.latent is not None:
            latent = self._latent_input()
            keys = ds.frame["composition"].to_numpy()[rows]
            z, _ = self._latent_moments(X_all[rows], keys, latent)
            latent.standardize(z)
            X = latent.augment(X, z)
        self.spec_ = spec
        classifier = spec.build(X, Y)
        self.fit_report_ = spec.fit(classifier, FitOptions(seed=self.seed,
                                                           progress=self.progress))[0]  # fmt: skip
        self.model_ = classifier if latent is None else LatentInputClassifier(
            classifier, latent, nodes=self.latent_nodes)  # fmt: skip
        self.classes_ = np.array([0, 1])
        return self

    def _latent_input(self) -> LatentInput:
        """The latent's observed values (every target row of the latent regressor) and noise."""
        lat = self.latent.dataset_
        top = np.flatnonzero(lat.frame["fidelity_index"].to_numpy() == len(lat.fidelities) - 1)
        X_obs, Y_obs, _ = lat.tensors(top, **self._tensor_options)
        return LatentInput.from_observations(
            len(lat.fidelities) - 1, X_obs if self.latent_observed else None, Y_obs,
            observation_noise=self.latent_observed,
        )  # fmt: skip

    def _latent_moments(self, raw: Tensor, keys: np.ndarray, latent: LatentInput
                        ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """The latent's mean and std at ``raw``, each row conditioned on its own rows only."""
        def marginals(Xl: Tensor, noise: bool) -> tuple[Tensor, Tensor]:
            return self.latent._marginals(Xl, keys, observation_noise=noise)

        return latent.moments(None, raw, marginals=marginals)

    def _p_metal(self, X: Sequence[str] | pd.DataFrame | Tensor,
                 task: str | None = None) -> np.ndarray:  # fmt: skip
        """``P(metal)``, ``n`` (the internal 1-D form of :meth:`predict_proba`'s column 1)."""
        raw, keys = self._asked(X, task)
        Z = self._task_inputs(self._inputs(raw))
        if isinstance(self.model_, LatentInputClassifier):
            mean, std = self._latent_moments(raw, keys, self.model_.latent)
            p = self.model_.quadrature(Z, mean, std)
        else:
            p = self.model_.predict_proba(Z)
        return p.cpu().numpy()

    def predict_proba(
        self, X: Sequence[str] | pd.DataFrame | Tensor, task: str | None = None
    ) -> np.ndarray:
        """Class probabilities for formulas (or contract tensors), for ``task`` (default: target).

        scikit-learn's convention: ``n x 2``, one column per entry of ``classes_``
        (``[0, 1]``): column 0 is ``P(not a metal)``, column 1 is ``P(metal)``.

        Example:
            >>> p_metal = clf.predict_proba(["Cu", "NaCl"])[:, 1]  # doctest: +SKIP
        """
        p = self._p_metal(X, task)
        return np.stack([1.0 - p, p], axis=1)

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

    def predict(self, X, task: str | None = None, threshold: float = 0.5) -> np.ndarray:
        """Labels: 1 (metal) where ``P(metal) >= threshold``."""
        return (self._p_metal(X, task) >= threshold).astype(np.int64)

    # -- saving --------------------------------------------------------------------------------
    def _parts(self) -> Parts:
        from mfgp.models.specs import FeatureMapSpec

        params = self._params_for_saving(saved_apart=("latent",))
        latent = self.latent
        classifier = getattr(self.model_, "classifier", self.model_)
        state = {f"state.{k}": v for k, v in self.model_.state_dict().items()}
        state.update({f"fmap.{k}": v for k, v in self.feature_map_.state_dict().items()})
        state["train.X"] = classifier.train_inputs[0]
        state["train.Y"] = classifier.train_targets.unsqueeze(-1)
        head = None
        if isinstance(self.model_, LatentInputClassifier):
            head = {"latent_fidelity": self.model_.latent.latent_fidelity,
                    "observation_noise": self.model_.latent.observation_noise,
                    "observed": self.model_.latent.obs_X is not None,
                    "nodes": self.model_.nodes}  # fmt: skip
        parts: Parts = ({
            "kind": type(self).__name__, "params": params, "spec": self.spec_.to_dict(),
            "feature_map": FeatureMapSpec.of(self.feature_map_).to_dict(),
            "dtype": _dtype_name(state["train.X"].dtype), "latent_input": head,
            "fit_reports": [dataclasses.asdict(self.fit_report_)],
        }, state, {})  # fmt: skip
        self._dataset_parts(parts)
        if latent is not None:
            _nest("latent", latent._parts(), parts)
        return parts

    @classmethod
    def _from_parts(cls, parts: Parts, device, source) -> MetalClassifier:
        from mfgp.io import _prefixed as strip
        from mfgp.models.specs import FeatureMapSpec, spec_from_dict

        manifest, tensors, _ = parts
        device = _load_device(manifest, device)
        ds = cls._dataset_from_parts(parts, source)
        fmap = FeatureMapSpec(**manifest["feature_map"]).build(device=device)
        fmap.load_state_dict(strip(tensors, "fmap."))
        fmap.to(device)
        spec = spec_from_dict(manifest["spec"])
        classifier = spec.build(tensors["train.X"].to(device), tensors["train.Y"].to(device))
        model = classifier
        head = manifest.get("latent_input")
        state = strip(tensors, "state.")
        if head is not None:
            table = None
            if head["observed"]:
                table = (state["latent.obs_X"].to(device), state["latent.obs_z"].to(device))
            latent = LatentInput(head["latent_fidelity"], table,
                                 observation_noise=head["observation_noise"])  # fmt: skip
            model = LatentInputClassifier(classifier, latent.to(device), nodes=head["nodes"])
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise SerializationError(
                f"{source}: the saved classifier does not fit its spec {manifest['spec']} "
                f"({err}); it was written by an incompatible mfgp"
            ) from err
        model.eval()
        est = cls._init_from_saved(manifest["params"], fmap, device)
        if "latent" in manifest.get("parts", {}):
            est.latent = MultiFidelityRegressor._from_parts(_unnest("latent", parts), device,
                                                            source)  # fmt: skip
        est.dataset_, est.spec_, est.model_, est.feature_map_ = ds, spec, model, fmap
        est.extractor_ = fmap.extractor
        est.fit_report_ = FitReport(**manifest["fit_reports"][0])
        est.classes_ = np.array([0, 1])
        return est


def _metal_probability(classifier, X) -> np.ndarray:
    """``P(metal)``, ``n``, of a fitted classifier: mfgp's own, or any with ``predict_proba``.

    A scikit-learn-shaped ``n x k`` answer gives the column of class 1 in its ``classes_``
    (the last column without them); a 1-D answer is taken as ``P(metal)``.
    """
    own = getattr(classifier, "_p_metal", None)
    if own is not None:
        return np.asarray(own(X), dtype=np.float64)
    p = np.asarray(classifier.predict_proba(X), dtype=np.float64)
    if p.ndim == 1:
        return p
    classes = list(getattr(classifier, "classes_", range(p.shape[1])))
    return p[:, classes.index(1) if 1 in classes else -1]


def zero_gap_labels(dataset: MultiFidelityDataset) -> MultiFidelityDataset:
    """The same rows with value 1 where the gap is exactly 0 (a metal) and 0 elsewhere."""
    f = dataset.frame
    return dataset.with_frame(f.assign(value=(f["value"] == 0).astype(float)))


class HurdleRegressor(_Recalibrated, _FormulaEstimator):
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
        experts: shipped source models as the input space of every part (``"all"`` or a list
            of names from :func:`mfgp.experts.available`; ``None``: off). The regression and the
            classifier's latent GP combine them by ``mixture``, the classifier by one ARD kernel
            (``"concat"``); the data are featurized with the ``"extended"`` preset.
        mixture: how the regression combines the experts (see :class:`MultiFidelityRegressor`).
        regressor_options: keyword arguments of :class:`MultiFidelityRegressor` (they override
            the shared ones, e.g. ``deep_features`` for one part only).
        classifier_options: keyword arguments of :class:`MetalClassifier` (same).
        classifier: instead of a :class:`MetalClassifier`, any unfitted classifier with
            ``fit(labels_dataset, candidates)`` and ``predict_proba(X)`` (``n x 2`` in the
            order of its ``classes_``, as scikit-learn's, or a 1-D ``P(metal)``; a copy is
            fitted on the same 0/1 labels).
        latent: give the classifier the lowest fidelity's gap as an input; ``True``, ``False``
            or a dict of :class:`MultiFidelityRegressor` options for its GP (defaults
            ``max_rows_per_fidelity=1500``: the sample of rows at other compositions,
            ``max_fit_points=1000``, ``max_iter=50``). Ignored with a single fidelity or a
            custom ``classifier``.
        fidelities, featurizer, seed, progress, device, dtype: as in
            :class:`MultiFidelityRegressor`.

    Attributes:
        spec_: the :class:`~mfgp.hurdle.HurdleSpec` (how the data are split and the parts'
            predictions combined).
        classifier_, regressor_: the fitted parts.
        latent_: the fitted latent :class:`MultiFidelityRegressor` of the classifier, or
            ``None``.
        classes_: ``[0, 1]`` (1 = a zero gap, a metal), the columns of :meth:`predict_proba`.
    """

    #: a campaign's objectives that need a Gaussian target cannot use it (a point mass at 0)
    gaussian_predictive = False

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
        experts: str | Sequence[str] | None = None,
        mixture: str = "additive",
        regressor_options: dict | None = None,
        classifier_options: dict | None = None,
        classifier: object | None = None,
        latent: bool | dict = True,
        seed: int = 0,
        progress: bool = True,
        device: str | None = None,
        dtype: str = "float64",
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
        self.experts = experts
        self.mixture = mixture
        self.regressor_options = regressor_options
        self.classifier_options = classifier_options
        self.seed = seed
        self.progress = progress
        self.device = device
        self.dtype = dtype

    def fit(
        self,
        data: pd.DataFrame | MultiFidelityDataset,
        candidates: Sequence[str] | None = None,
        **frame_options,
    ) -> HurdleRegressor:
        """Fit both parts on a long-format frame of gaps (lower fidelities, then the target).

        Known noise (a ``noise`` column: variances in eV^2, see
        :meth:`MultiFidelityRegressor.fit`) reaches the regression on ``g`` of the gaps by the
        delta method, ``g'(y)^2 var`` (``y`` the gap, plus ``offset`` below the target), and
        the classifier's latent GP of the lowest fidelity's gaps as given; the classifier's
        0/1 labels have none.
        """
        spec = HurdleSpec(self.transform, self.offset)
        ds = self._dataset(data, frame_options)
        f = ds.frame
        negative = f["value"] < 0
        if negative.any():
            row = f[negative].iloc[0]
            raise InputDataError(
                f"band gaps must be >= 0; {row['composition']} ({row['fidelity']}) has "
                f"{row['value']:g}"
            )
        is_target = f["fidelity_index"].to_numpy() == len(ds.fidelities) - 1
        labels, positive, g = spec.split(f["value"].to_numpy(), is_target)
        n_positive = int((positive & is_target).sum())
        if n_positive < 2:
            raise InputDataError(
                f"the hurdle's positive part needs at least 2 nonzero {ds.target!r} values; "
                f"the data have {n_positive} (and {int((is_target & ~positive).sum())} zeros): "
                "measure more non-metals first (e.g. those with the largest lower-fidelity "
                "gaps), or use MultiFidelityRegressor until then"
            )
        g_noise = spec.noise(f["value"].to_numpy(), is_target, f["noise"].to_numpy())[positive]
        self.dataset_, self.spec_, self.recalibration_ = ds, spec, None
        common = {"featurizer": self._featurizer_preset(), "seed": self.seed,
                  "progress": self.progress, "deep_features": self.deep_features,
                  "device": self.device, "dtype": self.dtype}  # fmt: skip
        mixed = {} if self.experts is None else {"experts": self.experts, "mixture": self.mixture}
        self.latent_ = None
        if self.classifier is None:
            options = {**common, **({} if self.experts is None else {"experts": self.experts}),
                       **(self.classifier_options or {})}  # fmt: skip
            if self.latent and len(ds.fidelities) > 1:
                self.latent_ = self._fit_latent(ds, candidates, {**common, **mixed})
                options["latent"] = self.latent_
            clf = MetalClassifier(self.multitask, **options)
        else:
            clf = copy.deepcopy(self.classifier)
        self.classifier_ = clf.fit(ds.with_frame(f.assign(value=labels, noise=np.nan)),
                                   candidates)  # fmt: skip
        self.regressor_ = MultiFidelityRegressor(
            self.architecture, **{**common, **mixed, **(self.regressor_options or {})}
        ).fit(ds.with_frame(f[positive].assign(value=g, noise=g_noise)), candidates)
        self.model_ = self.regressor_.model_
        self.classes_ = np.array([0, 1])
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

    def predictive(self, X, recalibrated: bool = True) -> PointMassMixture:
        """The hurdle predictive of a new measurement of the target gap.

        After :meth:`recalibrate`, both parts are recalibrated (``P(metal)`` and the non-metal
        gap's distribution) unless ``recalibrated=False``.
        """
        self._check_fitted()
        mu, sd = self.regressor_.predict(X, True, observation_noise=True)
        pred = self.spec_.predictive(_metal_probability(self.classifier_, X), mu, sd)
        return self._recalibrated(pred, self._at_target(X, None)) if recalibrated else pred

    def surrogate(self):
        """What a campaign or a screen calls: a :class:`~mfgp.surrogates.HurdleSurrogate`."""
        from mfgp.surrogates import HurdleSurrogate

        return HurdleSurrogate(self)

    def nonmetal_predictive(
        self, X, recalibrated: bool = True
    ) -> SoftplusNormalPredictive | LogNormalPredictive | RecalibratedPredictive:
        """The gap *given* a non-metal: the continuous part of the hurdle on its own.

        Use it when metallicity is known (e.g. the compound is known to be a semiconductor).
        After :meth:`recalibrate` it is mapped by the map fitted on the non-metals.
        """
        self._check_fitted()
        mu, sd = self.regressor_.predict(X, True, observation_noise=True)
        pred = self.spec_.continuous(mu, sd)
        return self._recalibrated(pred, self._at_target(X, None)) if recalibrated else pred

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
            point = pred.classify(threshold)
        elif statistic == "nonmetal":
            point = pred.continuous.median()
        else:
            raise InputDataError(
                f"unknown statistic {statistic!r}; choose mean, median, classify or nonmetal"
            )
        return (point, pred.std()) if return_std else point

    def _p_metal(self, X) -> np.ndarray:
        """``P(gap = 0)``, ``n``: column 1 of :meth:`predict_proba` (recalibrated too)."""
        self._check_fitted()
        if self.recalibration_ is not None and self.recalibration_.weight_maps_:
            return self.predictive(X).weight
        return _metal_probability(self.classifier_, X)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of a nonzero and a zero gap, ``n x 2`` (scikit-learn's convention).

        Columns follow ``classes_`` (``[0, 1]``, 1 = metal): column 0 is ``P(gap > 0)``,
        column 1 is ``P(gap = 0)`` (``P(metal)``); both recalibrated after :meth:`recalibrate`.

        Example:
            >>> p_metal = hurdle.predict_proba(["Cu", "NaCl"])[:, 1]  # doctest: +SKIP
        """
        p = self._p_metal(X)
        return np.stack([1.0 - p, p], axis=1)

    # -- saving --------------------------------------------------------------------------------
    def _parts(self) -> Parts:
        if self.classifier is not None:
            raise SerializationError(
                f"a HurdleRegressor with a custom classifier ({type(self.classifier).__name__}) "
                "cannot be saved without pickle; use the default MetalClassifier "
                "(classifier=None, options in classifier_options)"
            )
        parts: Parts = ({"kind": type(self).__name__, "params": self._params_for_saving(),
                         "hurdle": self.spec_.to_dict()}, {}, {})  # fmt: skip
        self._dataset_parts(parts)
        _nest("classifier", self.classifier_._parts(), parts)
        _nest("regressor", self.regressor_._parts(), parts)
        self._recalibration_parts(parts)
        return parts

    @classmethod
    def _from_parts(cls, parts: Parts, device, source) -> HurdleRegressor:
        manifest = parts[0]
        device = _load_device(manifest, device)
        classifier = MetalClassifier._from_parts(_unnest("classifier", parts), device, source)
        regressor = MultiFidelityRegressor._from_parts(_unnest("regressor", parts), device,
                                                       source)  # fmt: skip
        est = cls._init_from_saved(manifest["params"], regressor.feature_map_, device)
        est.dataset_ = cls._dataset_from_parts(parts, source)
        est.spec_ = HurdleSpec(**manifest["hurdle"])
        est.classifier_, est.regressor_, est.model_ = classifier, regressor, regressor.model_
        est.latent_ = classifier.latent
        est.classes_ = np.array([0, 1])
        est._recalibration_from_parts(parts)
        return est


def load_estimator(path: str | os.PathLike, device: torch.device | str | None = None):
    """Load whichever estimator ``path`` holds (the class is read from the file's manifest).

    Example:
        >>> reg = load_estimator("gaps.mfgp")  # doctest: +SKIP
    """
    from mfgp.io import read_bundle

    parts = read_bundle(path)  # once: the class comes from its manifest
    kinds = {c.__name__: c for c in (MultiFidelityRegressor, MetalClassifier, HurdleRegressor)}
    kind = parts[0].get("kind")
    if kind not in kinds:
        raise SerializationError(f"{path} holds {kind!r}, not one of {sorted(kinds)}")
    return kinds[kind]._from_parts(parts, device, path)
