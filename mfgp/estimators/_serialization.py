"""Saving estimators: the parts of a file, the save / load methods, and their bytes.

An estimator's file (:mod:`mfgp.io`'s format: a JSON manifest, safetensors and JSON members, no
pickle) is built from *parts*, ``(manifest, tensors, members)``; an estimator made of other
estimators (a hurdle's classifier and regression, a classifier's input regressor) nests their
parts under a name (:func:`_nest` / :func:`_unnest`). The manifest's ``kind`` names the class
(:data:`_KINDS`), which :func:`load_estimator` reads. :func:`estimator_to_bytes` and
:func:`estimator_from_bytes` are the same file as bytes: what a campaign's checkpoint store
and a screen's Dask workers hold.

Example:
    >>> blob = estimator_to_bytes(reg)  # doctest: +SKIP
    >>> again = estimator_from_bytes(blob)  # the same predictions, bit for bit  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mfgp.data.dataset import MultiFidelityDataset, sharing_featurizers
from mfgp.exceptions import SerializationError
from mfgp.models.features import FeatureMap
from mfgp.nn.extractor import FeatureExtractor

if TYPE_CHECKING:
    from mfgp.estimators._base import _FormulaEstimator

__all__ = ["estimator_from_bytes", "estimator_to_bytes", "load_estimator"]

#: the ``kind`` a file's manifest names (the class's ``__name__`` when it was saved) -> the
#: module of :mod:`mfgp.estimators` that defines that class; files written before the package
#: was split (one ``estimators.py``) name the same classes and load the same way
_KINDS: dict[str, str] = {
    "MultiFidelityRegressor": "mfgp.estimators.regressor",
    "MetalClassifier": "mfgp.estimators.classifier",
    "HurdleRegressor": "mfgp.estimators.hurdle",
}

#: ``(manifest, tensors, members)``: what :func:`mfgp.io.write_bundle` writes
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


def _select_prefixed(tensors: dict[str, Tensor],
                     prefix: str | tuple[str, ...]) -> dict[str, Tensor]:  # fmt: skip
    """The entries whose keys start with ``prefix`` (one or a tuple), keys unchanged.

    Not :func:`mfgp.io._strip_prefix`, which also drops the prefix from the keys it keeps.
    """
    return {k: v for k, v in tensors.items() if k.startswith(prefix)}


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


class _Persistent:
    """``save`` and ``load`` of an estimator (a mixin of ``_FormulaEstimator``, in ``_base``).

    Each estimator writes its own parts (``_parts``) and rebuilds itself from them
    (``_from_parts``); this mixin holds what they share: the file, the parameters as JSON,
    the dataset's part.
    """

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
        with sharing_featurizers():  # its datasets featurize each composition once
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


def _estimator_class(kind: object, source) -> type:
    """The estimator class a manifest's ``kind`` names (see :data:`_KINDS`)."""
    if kind not in _KINDS:
        raise SerializationError(f"{source} holds {kind!r}, not one of {sorted(_KINDS)}")
    return getattr(importlib.import_module(_KINDS[kind]), kind)


def load_estimator(path: str | os.PathLike, device: torch.device | str | None = None):
    """Load whichever estimator ``path`` holds (the class is read from the file's manifest).

    Example:
        >>> reg = load_estimator("gaps.mfgp")  # doctest: +SKIP
    """
    from mfgp.io import read_bundle

    parts = read_bundle(path)  # once: the class comes from its manifest
    with sharing_featurizers():  # its datasets featurize each composition once
        return _estimator_class(parts[0].get("kind"), path)._from_parts(parts, device, path)


def estimator_to_bytes(estimator) -> bytes:
    """A fitted estimator as bytes: the file its ``save`` writes (no pickle).

    The one round trip of an estimator through bytes: a campaign's checkpoints
    (:class:`~mfgp.loop.Campaign`) and the model a screen sends to its Dask workers
    (:func:`mfgp.screen.screen`) are these bytes; :func:`estimator_from_bytes` reads them back.

    Example:
        >>> blob = estimator_to_bytes(reg)  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.mfgp"
        estimator.save(path)
        return path.read_bytes()


def estimator_from_bytes(blob: bytes, cls: type | None = None,
                         device: torch.device | str | None = None):  # fmt: skip
    """The estimator :func:`estimator_to_bytes` wrote, ready to predict (bit-identical).

    Args:
        blob: the bytes.
        cls: the estimator class they must hold (its ``load``: a file of another class is
            refused), or ``None``: whichever the manifest names (:func:`load_estimator`).
        device: as in :func:`load_estimator`.

    Raises:
        SerializationError: damaged bytes, or bytes of an estimator other than ``cls``.

    Example:
        >>> again = estimator_from_bytes(blob, MultiFidelityRegressor)  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.mfgp"
        path.write_bytes(blob)
        return load_estimator(path, device) if cls is None else cls.load(path, device)
