"""The hurdle regressor: band gaps as ``P(gap = 0)`` from a classifier and a GP of the rest.

:class:`HurdleRegressor` fits a :class:`~mfgp.estimators.MetalClassifier` (by default with the
lowest fidelity's gap as one of its inputs) and a :class:`~mfgp.estimators.
MultiFidelityRegressor` of the transformed nonzero gaps; :class:`~mfgp.hurdle.HurdleSpec`
splits the data and combines the two into a point-mass mixture (:mod:`mfgp.distributions`).

Example:
    >>> gaps = HurdleRegressor().fit(load_bandgap_ladder(["pbe", "expt"]))  # doctest: +SKIP
    >>> gaps.predictive(["GaAs", "Cu"]).interval(0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mfgp._progress import stage
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.distributions import LogNormalPredictive, PointMassMixture, SoftplusNormalPredictive
from mfgp.estimators._base import _FormulaEstimator, _interval_level
from mfgp.estimators._recalibration import _Recalibrated
from mfgp.estimators._serialization import Parts, _load_device, _nest, _unnest
from mfgp.estimators.classifier import MetalClassifier, _metal_probability
from mfgp.estimators.regressor import MultiFidelityRegressor
from mfgp.exceptions import InputDataError, SerializationError
from mfgp.hurdle import HurdleSpec
from mfgp.nn.extractor import FeatureExtractor

if TYPE_CHECKING:
    from mfgp.calibration.recalibrate import RecalibratedPredictive

__all__ = ["HurdleRegressor"]


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
    each composition as an input (see :class:`MetalClassifier`): a composition's own value
    where the data hold one (asked at fit time or after), elsewhere a single-fidelity GP of that
    fidelity, fitted on its rows at every target and candidate composition and on a seeded
    sample of the others, supplies it with its uncertainty.

    Args:
        architecture: the regression architecture (see :class:`MultiFidelityRegressor`).
        multitask: multi-task classifier (see :class:`MetalClassifier`): the lower
            fidelities' ``gap == 0`` labels (cheap PBE metallicity) as tasks beside the
            target's. ``"auto"`` (the default): on while the target has fewer than
            :attr:`multitask_below` labelled compositions and a lower fidelity is in the data.
            With few experiments the single-task classifier cannot learn how much the PBE
            gap (its latent input) says: on development draws with 20-100 experimental labels
            its ROC-AUC was 0.80-0.91 and its Brier score 0.12-0.19, the multi-task one's
            0.96 and 0.07-0.09; from 200 labels on they are level, and with the shipped data's
            3,000+ the single-task one is as good and faster (``docs/metals.md``,
            ``benchmarks/diag_classifier_labels.py``). The choice made is
            ``multitask_``.
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
        multitask_: whether the classifier is multi-task (``multitask`` resolved; ``None``
            with a custom ``classifier``).
    """

    #: a campaign's objectives that need a Gaussian target cannot use it (a point mass at 0)
    gaussian_predictive = False

    #: ``multitask="auto"`` uses the multi-task classifier below this many target compositions
    #: (chosen on development draws: ``benchmarks/diag_classifier_labels.py``). A class
    #: setting: clones, campaign refits and saved files use the class's value, so change it
    #: on the class (``HurdleRegressor.multitask_below = 500``), or pass ``multitask=True``.
    multitask_below = 200

    #: options of the latent GP (overridden by a ``latent`` dict)
    latent_defaults = {"max_rows_per_fidelity": 1500, "max_fit_points": 1000, "max_iter": 50}

    pretrain_options = None

    def __init__(
        self,
        architecture: str = "ar1",
        *,
        multitask: bool | str = "auto",
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
        self.latent_, self.multitask_ = None, None
        multitask = self._multitask_on(ds)  # checked even where a custom classifier ignores it
        if self.classifier is None:
            options = {**common, **({} if self.experts is None else {"experts": self.experts}),
                       **(self.classifier_options or {})}  # fmt: skip
            if self.latent and len(ds.fidelities) > 1:
                with stage(f"hurdle: the classifier's {ds.fidelities[0]} gap input"):
                    self.latent_ = self._fit_gap_input(ds, candidates, {**common, **mixed})
                options["latent"] = self.latent_
            clf = MetalClassifier(multitask, **options)
        else:
            self.multitask_ = None
            clf = copy.deepcopy(self.classifier)
        with stage("hurdle: classifier (P(metal))"):
            self.classifier_ = clf.fit(ds.with_frame(f.assign(value=labels, noise=np.nan)),
                                       candidates)  # fmt: skip
        with stage("hurdle: regression (gap of a non-metal)"):
            self.regressor_ = MultiFidelityRegressor(
                self.architecture, **{**common, **mixed, **(self.regressor_options or {})}
            ).fit(ds.with_frame(f[positive].assign(value=g, noise=g_noise)), candidates)
        self.model_ = self.regressor_.model_
        self.classes_ = np.array([0, 1])
        return self

    def _multitask_on(self, ds: MultiFidelityDataset) -> bool:
        """``multitask`` resolved on the data (``"auto"``: few target labels): ``multitask_``."""
        choice = self.multitask
        if isinstance(choice, str) and choice == "auto":
            f = ds.frame
            target = f["fidelity_index"].to_numpy() == len(ds.fidelities) - 1
            labelled = f.loc[target, "composition"].nunique()
            choice = bool((~target).any()) and labelled < self.multitask_below
        elif isinstance(choice, str) or choice not in (0, 1):  # True, False (1, 0)
            raise InputDataError(f"multitask must be 'auto', True or False; got {choice!r}")
        self.multitask_ = bool(choice)
        return self.multitask_

    def _fit_gap_input(self, ds: MultiFidelityDataset, candidates, common: dict):
        """A single-fidelity GP of the lowest fidelity's gaps, for the classifier's input.

        Its dataset holds every lowest-fidelity row; it is fitted on those of the target and
        candidate compositions and a seeded sample of ``max_rows_per_fidelity`` others. A
        composition outside the fitted rows with a value of its own (a formula of the shipped
        PBE table asked later) still gets that value as the classifier's input. With
        ``deep_features=True`` its extractor is pretrained on every one of those rows, as
        the regression's is on its own dataset.
        """
        options = {**self.latent_defaults, **(self.latent if isinstance(self.latent, dict) else {})}
        cap = options.pop("max_rows_per_fidelity")
        rows = ds.capped_rows(cap, self.seed, candidates)
        lowest = ds.frame["fidelity_index"].to_numpy() == 0
        fitted = np.isin(np.flatnonzero(lowest), rows)  # the fitted rows, in lowest's order
        gaps = ds.with_frame(ds.frame[lowest], ds.fidelities[:1])
        return MultiFidelityRegressor("single", **{**common, **options}, max_rows_per_fidelity=None
                                      ).fit(gaps, rows=np.flatnonzero(fitted))  # fmt: skip

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

    def predict_frame(self, formulas: Sequence[str], level: float = 0.9) -> pd.DataFrame:
        """A table of predictions, one row per formula: what a notebook shows.

        Columns ``formula, p_metal, mean, std, lower_<p>, upper_<p>`` (``p``: percent) of
        :meth:`predictive` (a new measurement of the target gap; recalibrated after
        :meth:`recalibrate`). A lower bound is 0 eV wherever the interval reaches the point
        mass at 0, never below.

        Args:
            formulas: the compositions.
            level: the central interval's probability, as a fraction (``0.9``) or a
                percentage (``90``).

        Returns:
            A frame with one row per formula, in the order given.

        Example:
            The ready-made band-gap model:

            >>> mfgp.pretrained("expt_gap").predict_frame(["GaAs", "Cu"]).round(2)  # doctest: +SKIP
              formula  p_metal  mean   std  lower_90  upper_90
            0    GaAs     0.20  0.79  0.46       0.0      1.42
            1      Cu     0.85  0.21  0.65       0.0      1.69
        """
        if isinstance(formulas, str):
            formulas = [formulas]
        level = _interval_level(level)
        table = self.predictive(list(formulas)).table(level)
        p_metal = table.pop("p_zero")
        return pd.DataFrame({"formula": list(formulas), "p_metal": p_metal, **table})

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
        est.multitask_ = bool(classifier.multitask)
        est.classes_ = np.array([0, 1])
        est._recalibration_from_parts(parts)
        return est
