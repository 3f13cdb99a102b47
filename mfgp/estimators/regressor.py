"""The multi-fidelity regressor: a GP over the fidelities of a long-format frame of formulas.

:class:`MultiFidelityRegressor` builds a :class:`~mfgp.data.MultiFidelityDataset`, optionally
pretrains a frozen deep feature extractor (:mod:`mfgp.nn`), builds one of the architectures
of :mod:`mfgp.models` from its spec (:data:`ARCHITECTURES`) and fits it with
:func:`mfgp.fit.fit_gp`.

Example:
    >>> from mfgp.datasets import load_bandgap_ladder
    >>> df = load_bandgap_ladder(["pbe", "expt"])
    >>> reg = MultiFidelityRegressor("ar1").fit(df)  # doctest: +SKIP
    >>> mean, std = reg.predict(["Si", "GaAs"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from botorch.models.model import Model
from torch import Tensor

from mfgp.data.dataset import MultiFidelityDataset
from mfgp.distributions import GaussianPredictive
from mfgp.estimators._base import (
    _check_positive_int,
    _dtype_name,
    _FormulaEstimator,
    _interval_level,
    _torch_dtype,
)
from mfgp.estimators._recalibration import _Recalibrated
from mfgp.estimators._serialization import Parts, _load_device, _select_prefixed
from mfgp.exceptions import InputDataError
from mfgp.fit import FitReport
from mfgp.models.features import FeatureMap
from mfgp.models.specs import (
    AR1Spec,
    FitOptions,
    LatentChainSpec,
    ModelSpec,
    MultiTaskSpec,
    SingleSpec,
)
from mfgp.nn.extractor import FeatureExtractor
from mfgp.nn.finetune import finetune_extractor
from mfgp.predict import OwnRows, predict_marginals

if TYPE_CHECKING:
    from mfgp.calibration.recalibrate import RecalibratedPredictive

__all__ = ["ARCHITECTURES", "MultiFidelityRegressor"]


def _single_spec(est) -> ModelSpec:
    return SingleSpec()


def _ar1_spec(est) -> ModelSpec:
    return AR1Spec(rho=est.rho, training=est.training, composition_effect=est._effect_on())


def _multitask_spec(est) -> ModelSpec:
    return MultiTaskSpec(rank=est.rank, num_latents=est.num_latents)


def _latent_chain_spec(est) -> ModelSpec:
    return LatentChainSpec(observed=est.latent_observed, seed=est.seed)


#: architecture name -> the core spec an estimator's options describe (strings at the edge;
#: the assembly of each architecture is its spec in :mod:`mfgp.models.specs`)
ARCHITECTURES: dict[str, Callable] = {
    "single": _single_spec,
    "ar1": _ar1_spec,
    "multitask": _multitask_spec,
    "latent": _latent_chain_spec,
}


def _fit_rows(rows, ds: MultiFidelityDataset) -> np.ndarray:
    """``fit(rows=...)`` checked: sorted row positions of ``ds``, 2 or more of the target.

    Repeated positions count once; a boolean mask of ``ds``'s rows gives its positions.
    """
    arr = np.asarray(rows)
    if arr.dtype == bool and arr.shape == (ds.n,):
        arr = np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InputDataError(
            f"rows must be a 1-D sequence of integer row positions or a boolean mask of the "
            f"{ds.n} rows; got shape {arr.shape}, dtype {arr.dtype} (a mask of another length? "
            "np.flatnonzero(mask) gives its positions)"
        )
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= ds.n)]
    if bad.size:
        raise InputDataError(
            f"rows holds position {int(bad[0])}, outside the dataset's {ds.n} rows (0 to "
            f"{ds.n - 1})"
        )
    arr = np.unique(arr)
    n_target = int((ds.frame["fidelity_index"].to_numpy()[arr] == len(ds.fidelities) - 1).sum())
    if n_target < 2:
        raise InputDataError(
            f"rows holds {n_target} row(s) of the target fidelity {ds.target!r}; a GP needs at "
            "least 2"
        )
    return arr


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
        *,
        rows: Sequence[int] | np.ndarray | None = None,
        **frame_options,
    ) -> MultiFidelityRegressor:
        """Fit on a long-format frame (see :mod:`mfgp.datasets`) or a dataset; returns ``self``.

        Args:
            data: the observations.
            candidates: compositions you will ask predictions for; their lower-fidelity rows are
                always kept, however ``max_rows_per_fidelity`` caps the rest.
            rows: instead of ``max_rows_per_fidelity``'s sample, fit on these rows of the
                dataset only: positions in a :class:`MultiFidelityDataset`'s row order, or a
                boolean mask of its rows, at least 2 of the target (build the dataset first
                where the frame has repeated (composition, fidelity) rows: they are aggregated,
                which moves the positions; ``dataset_.frame`` shows them). The others stay in
                the dataset as rows the fit left out: a prediction at one of their compositions
                conditions on that composition's own rows (as for the rows the cap leaves
                out). Not with ``candidates``. A one-off choice, not a parameter: a refit
                (``recalibrate``, a clone, cross-validation) uses ``max_rows_per_fidelity``.
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
        if rows is not None and candidates is not None:
            raise InputDataError(
                "pass rows= or candidates=, not both: rows= chooses the fitted rows itself (add "
                "the candidates' rows to it)"
            )
        options = self._tensor_options
        ds = self._dataset(data, frame_options)
        n_target = int((ds.frame["fidelity_index"] == len(ds.fidelities) - 1).sum())
        if n_target < 2:
            raise InputDataError(
                f"the target fidelity {ds.target!r} has {n_target} row(s); a GP needs at least "
                "2 target observations (check fidelities=, the last one is the target)"
            )
        if rows is None:
            rows = ds.capped_rows(self.max_rows_per_fidelity, self.seed, candidates)
        else:
            rows = _fit_rows(rows, ds)
        # the data are checked: a refused fit leaves a fitted estimator as it was
        self.dataset_, self.recalibration_ = ds, None
        X_all, Y_all, _ = ds.tensors(**options)
        self.extractor_ = self._extractor(X_all, Y_all)
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
        }, _select_prefixed(state, ("state.", "fmap.")), {})  # fmt: skip
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
        state = _select_prefixed(tensors, ("state.", "fmap."))
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

    def _observed_target(self, keys: np.ndarray) -> np.ndarray:
        """Each key's mean observed value at the target fidelity (NaN where it has none).

        Over every target row of the dataset, those the fit left out included; keyed by
        reduced composition (a ``None`` key has none), never by feature values.
        """
        cached = getattr(self, "_target_means", None)
        if cached is None or cached[0] is not self.dataset_:  # once per dataset (screens ask often)
            f = self.dataset_.frame
            top = f[f["fidelity_index"].to_numpy() == len(self.dataset_.fidelities) - 1]
            cached = (self.dataset_, top.groupby("composition", sort=False)["value"].mean())
            self._target_means = cached
        return pd.Series(list(keys), dtype=object).map(cached[1]).to_numpy(dtype=float)

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
        fidelities and the noise-free function (``observation_noise=False``) stay Gaussian (the
        map was fitted on target values), as do the rows of raw tensors whose fidelity column is
        not the target's.
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
