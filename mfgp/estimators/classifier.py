"""The metal classifier: ``P(metal)`` for formulas from a variational GP classifier.

:class:`MetalClassifier` fits a sparse variational GP classifier (:class:`~mfgp.models.
GPClassifier`), single-task or multi-task, optionally with another property's prediction (a
fitted :class:`~mfgp.estimators.MultiFidelityRegressor`, e.g. of PBE gaps) as one more input;
:func:`zero_gap_labels` makes its labels from band gaps.

Example:
    >>> pbe = MultiFidelityRegressor("single").fit(pbe_gaps)  # doctest: +SKIP
    >>> clf = MetalClassifier(False, latent=pbe).fit(zero_gap_labels(gaps))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mfgp.data.dataset import MultiFidelityDataset
from mfgp.estimators._base import _check_positive_int, _dtype_name, _FormulaEstimator
from mfgp.estimators._serialization import Parts, _load_device, _nest, _unnest
from mfgp.estimators.regressor import MultiFidelityRegressor
from mfgp.exceptions import InputDataError, SerializationError
from mfgp.fit import FitReport
from mfgp.models.classifier import LatentInput, LatentInputClassifier
from mfgp.models.specs import ClassifierSpec, FitOptions
from mfgp.nn.extractor import FeatureExtractor

__all__ = ["MetalClassifier", "zero_gap_labels"]


class MetalClassifier(_FormulaEstimator):
    """P(metal) for formulas: a variational GP classifier, single-task or multi-task.

    Fit on a long-format frame (or dataset) whose fidelities are *tasks* with 0/1 values
    (1 = metal), the last one the target, e.g. from :func:`mfgp.datasets.load_metallicity`:
    ``["pbe", "expt"]`` learns experimental metallicity together with the cheap PBE one. Values
    are labels after ``>= 0.5`` (duplicated compositions averaged first: the majority wins,
    ties count as metal).

    With ``latent``, a *different property* is one more input of the classifier (its input
    property; the idea of the explicit-latent architecture): a fitted regression (e.g. of PBE
    gaps) is queried at each composition and its prediction is that input. Training rows enter at
    the latent's value (its mean); a prediction integrates ``P(metal | x, z)`` over the latent's
    Gaussian ``z ~ N(m(x), s(x)^2)`` by quadrature, so a composition whose latent is uncertain
    (no PBE calculation nearby) gets a correspondingly softer probability. Where the latent was
    observed (a PBE gap of that composition is in the latent's dataset: a row it was fitted on,
    or one its cap left out) that value is used as is, with ``s = 0`` (``latent_observed``;
    elsewhere ``s`` then includes the latent's observation noise).

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
            gives*: where the latent's dataset holds one for the composition it is used
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
            self._check_property_regressor()
        options = self._tensor_options
        X_all, Y_all, _ = ds.tensors(**options)
        self.extractor_ = self._extractor(X_all, Y_all)
        if self.multitask:
            rows = ds.capped_rows(self.max_rows_per_task, self.seed, candidates)
        else:
            rows = np.flatnonzero(ds.frame["fidelity_index"].to_numpy() == len(ds.fidelities) - 1)
        X, Y = self._task_inputs(self._inputs(X_all[rows])), (Y_all[rows] >= 0.5).to(Y_all)
        prop = None  # the input property (the prediction of ``self.latent``), if any
        if self.latent is not None:
            prop = self._property_input()
            keys = ds.frame["composition"].to_numpy()[rows]
            z, _ = self._property_moments(X_all[rows], keys, prop)
            prop.standardize(z)
            X = prop.augment(X, z)
        self.spec_ = spec
        classifier = spec.build(X, Y)
        self.fit_report_ = spec.fit(classifier, FitOptions(seed=self.seed,
                                                           progress=self.progress))[0]  # fmt: skip
        self.model_ = classifier if prop is None else LatentInputClassifier(
            classifier, prop, nodes=self.latent_nodes)  # fmt: skip
        self.classes_ = np.array([0, 1])
        return self

    def _property_input(self) -> LatentInput:
        """The input property's observed values (``latent``'s fitted target rows) and noise.

        The table serves the model on its own (raw tensors, no compositions); the estimator
        looks observed values up by composition over every row of ``latent``'s dataset
        (:meth:`_property_moments`).
        """
        lat = self.latent.dataset_
        top = np.flatnonzero(lat.frame["fidelity_index"].to_numpy() == len(lat.fidelities) - 1)
        top = np.intersect1d(top, self.latent.train_rows_)
        X_obs, Y_obs, _ = lat.tensors(top, **self._tensor_options)
        return LatentInput.from_observations(
            len(lat.fidelities) - 1, X_obs if self.latent_observed else None, Y_obs,
            observation_noise=self.latent_observed,
        )  # fmt: skip

    def _property_moments(self, raw: Tensor, keys: np.ndarray, prop: LatentInput
                          ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """The input property's mean and std at ``raw``, each row on its own rows only.

        With ``latent_observed``, a composition with a value in ``latent``'s dataset (a row
        its fit used or one its cap left out) gets that value, std 0; the others the
        latent's predictive, conditioned on their own rows.
        """
        mean = torch.as_tensor(self.latent._observed_target(keys), dtype=raw.dtype,
                               device=raw.device)  # fmt: skip
        todo = torch.isnan(mean) if self.latent_observed else torch.ones_like(mean, dtype=bool)
        std = torch.zeros_like(mean)
        if bool(todo.any()):
            sub = keys[todo.cpu().numpy()]

            def marginals(Xl: Tensor, noise: bool) -> tuple[Tensor, Tensor]:
                return self.latent._marginals(Xl, sub, observation_noise=noise)

            mean[todo], std[todo] = prop.moments(None, raw[todo], marginals=marginals)
        return mean, std

    def _p_metal(self, X: Sequence[str] | pd.DataFrame | Tensor,
                 task: str | None = None) -> np.ndarray:  # fmt: skip
        """``P(metal)``, ``n`` (the internal 1-D form of :meth:`predict_proba`'s column 1)."""
        raw, keys = self._asked(X, task)
        Z = self._task_inputs(self._inputs(raw))
        if isinstance(self.model_, LatentInputClassifier):
            mean, std = self._property_moments(raw, keys, self.model_.latent)
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

    def _check_property_regressor(self) -> None:
        """Check ``latent``, the input property's regressor: fitted, on the same features."""
        reg = self.latent
        if not isinstance(reg, MultiFidelityRegressor) or not hasattr(reg, "model_"):
            raise InputDataError(
                f"latent must be a fitted MultiFidelityRegressor (e.g. of PBE gaps); got "
                f"{type(reg).__name__}: fit it first, or pass latent=None"
            )
        if list(reg.dataset_.feature_labels) != list(self.dataset_.feature_labels):
            raise InputDataError(
                f"the latent regressor uses featurizer {reg.dataset_.featurizer.preset!r} but "
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
        from mfgp.io import _strip_prefix
        from mfgp.models.specs import FeatureMapSpec, spec_from_dict

        manifest, tensors, _ = parts
        device = _load_device(manifest, device)
        ds = cls._dataset_from_parts(parts, source)
        fmap = FeatureMapSpec(**manifest["feature_map"]).build(device=device)
        fmap.load_state_dict(_strip_prefix(tensors, "fmap."))
        fmap.to(device)
        spec = spec_from_dict(manifest["spec"])
        classifier = spec.build(tensors["train.X"].to(device), tensors["train.Y"].to(device))
        model = classifier
        head = manifest.get("latent_input")
        state = _strip_prefix(tensors, "state.")
        if head is not None:
            table = None
            if head["observed"]:
                table = (state["latent.obs_X"].to(device), state["latent.obs_z"].to(device))
            prop = LatentInput(head["latent_fidelity"], table,
                               observation_noise=head["observation_noise"])  # fmt: skip
            model = LatentInputClassifier(classifier, prop.to(device), nodes=head["nodes"])
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
