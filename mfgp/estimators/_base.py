"""What the estimators share: the dataset, the feature space, the inputs of new formulas.

:class:`_FormulaEstimator` is the base of every estimator of :mod:`mfgp.estimators` (its
``save`` and ``load`` come from :mod:`._serialization`); beside it the small checks and
conversions of their options (dtypes, positive integers, interval levels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from mfgp.data.dataset import MultiFidelityDataset
from mfgp.estimators._serialization import _Persistent
from mfgp.exceptions import InputDataError, NotFittedError
from mfgp.models.features import FeatureMap
from mfgp.nn.extractor import FeatureExtractor, pretrain


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


class _FormulaEstimator(_Persistent, BaseEstimator):
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
