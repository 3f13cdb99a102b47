"""Saving and loading fitted models without pickle: a JSON manifest and safetensors, in one zip.

A saved model is one file (``.mfgp`` by convention), a zip archive of

* ``manifest.json``: the format and its version, the versions of mfgp, torch, gpytorch and
  botorch that wrote it, the model's spec (:mod:`mfgp.models.specs`), its feature map, and
  whatever the writer adds (an estimator's parameters, fidelity names, featurizer preset);
* ``tensors.safetensors``: the state dict and the training tensors;
* optional JSON members (e.g. the compositions of an estimator's dataset).

Loading rebuilds the model from its spec on the saved training tensors and loads the state
dict: nothing is unpickled, so a file from an untrusted source can at worst fail to load
(``torch.load`` is never called). The file is written to a temporary name beside the target
and moved over it only when complete, so an interrupted save leaves the previous file intact.

Example:
    >>> save_model("ar1.mfgp", model, spec, train=(X, Y, None))  # doctest: +SKIP
    >>> model = load_model("ar1.mfgp")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from mfgp._io import atomic_write
from mfgp.exceptions import IncompatibleVersionError, SerializationError

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "read_bundle", "save_model", "write_bundle"]

FORMAT = "mfgp.model"
#: bumped when a change makes older mfgp unable to read new files; loaders read <= this
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """The versions of mfgp and of the libraries whose state a saved model holds."""
    import botorch
    import gpytorch

    from mfgp import __version__

    return {"mfgp": __version__, "torch": torch.__version__, "gpytorch": gpytorch.__version__,
            "botorch": botorch.__version__}  # fmt: skip


def write_bundle(path: str | os.PathLike, manifest: dict, tensors: dict[str, Tensor],
                 members: dict[str, object] | None = None) -> Path:  # fmt: skip
    """Write a model file atomically: ``manifest`` (JSON), ``tensors`` (safetensors), members.

    Args:
        path: the file to (over)write.
        manifest: JSON-serializable; ``format``, ``format_version`` and ``versions`` are added.
        tensors: name -> tensor; each is copied to a contiguous CPU tensor.
        members: name -> JSON-serializable object, stored as ``<name>.json``.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(),
               **manifest}  # fmt: skip
    flat = {k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}
    with atomic_write(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(payload, indent=1, sort_keys=True))
        zf.writestr("tensors.safetensors", save(flat))
        for name, obj in (members or {}).items():
            zf.writestr(f"{name}.json", json.dumps(obj))
    return path


def read_bundle(path: str | os.PathLike) -> tuple[dict, dict[str, Tensor], dict[str, object]]:
    """Read a file written by :func:`write_bundle`: ``(manifest, tensors, members)``.

    Raises:
        SerializationError: the file is missing, truncated, corrupted or not an mfgp model.
        IncompatibleVersionError: it was written in a newer format version.
    """
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise SerializationError(f"no saved model at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise SerializationError(f"{path}: member {bad!r} is corrupted (CRC mismatch)")
            names = set(zf.namelist())
            for needed in ("manifest.json", "tensors.safetensors"):
                if needed not in names:
                    raise SerializationError(
                        f"{path} is not an mfgp model file: it has no {needed}"
                    )
            manifest = json.loads(zf.read("manifest.json"))
            if manifest.get("format") != FORMAT:
                raise SerializationError(
                    f"{path} holds {manifest.get('format')!r}, not an mfgp model ({FORMAT!r})"
                )
            version = manifest.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                written = manifest.get("versions", {}).get("mfgp", "?")
                raise IncompatibleVersionError(
                    f"{path} is format version {version!r} (written by mfgp {written}); this "
                    f"mfgp reads versions up to {FORMAT_VERSION}: upgrade mfgp to load it"
                )
            tensors = load(zf.read("tensors.safetensors"))
            members = {n[: -len(".json")]: json.loads(zf.read(n)) for n in names
                       if n.endswith(".json") and n != "manifest.json"}  # fmt: skip
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, OSError) as err:
        raise SerializationError(
            f"{path} is not a readable mfgp model (truncated or corrupted: {err}); save it again"
        ) from err
    except SerializationError:
        raise
    except Exception as err:  # safetensors raises its own errors on a damaged buffer
        raise SerializationError(f"{path}: the tensors cannot be read ({err})") from err
    return manifest, tensors, members


def _strip_prefix(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries whose keys start with ``prefix``, under their keys without it.

    ``_strip_prefix({"fmap.w": t, "state.b": u}, "fmap.") == {"w": t}``: a part of a state
    dict as the module that owns it names its entries.
    """
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


def model_tensors(model: torch.nn.Module, feature_map: torch.nn.Module | None,
                  train: tuple, observations: tuple | None) -> dict[str, Tensor]:  # fmt: skip
    """The tensors that rebuild a model: state, feature map, training rows, observations."""
    X, Y, Yvar = train
    out = {f"state.{k}": v for k, v in model.state_dict().items()}
    if feature_map is not None:
        out.update({f"fmap.{k}": v for k, v in feature_map.state_dict().items()})
    out["train.X"], out["train.Y"] = X, Y
    if Yvar is not None:
        out["train.Yvar"] = Yvar
    if observations is not None:
        out["obs.X"], out["obs.Y"] = observations
    return out


def rebuild_model(manifest: dict, tensors: dict[str, Tensor],
                  device: torch.device | str | None = None):  # fmt: skip
    """The model a manifest and its tensors describe (see :func:`load_model`)."""
    from mfgp.models.specs import FeatureMapSpec, spec_from_dict

    spec = spec_from_dict(manifest["spec"])
    fmap = None
    if manifest.get("feature_map") is not None:
        fmap = FeatureMapSpec(**manifest["feature_map"]).build(device=device)
        fmap.load_state_dict(_strip_prefix(tensors, "fmap."))
        fmap.to(device)
    def move(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(device)

    X, Y = move(tensors["train.X"]), move(tensors["train.Y"])
    Yvar = move(tensors.get("train.Yvar"))
    obs = None
    if "obs.X" in tensors:
        obs = (move(tensors["obs.X"]), move(tensors["obs.Y"]))
    model = spec.build(X, Y, Yvar, feature_map=fmap, observations=obs)
    try:
        model.load_state_dict(_strip_prefix(tensors, "state."))
    except RuntimeError as err:
        raise SerializationError(
            f"the saved state does not fit a {type(model).__name__} built from spec "
            f"{manifest['spec']} ({err}); the file was written by an incompatible mfgp "
            f"({manifest.get('versions', {}).get('mfgp', '?')})"
        ) from err
    model.eval()
    return spec, model, fmap


def save_model(path: str | os.PathLike, model: torch.nn.Module, spec, *,
               train: tuple[Tensor, Tensor, Tensor | None],
               feature_map: torch.nn.Module | None = None,
               observations: tuple[Tensor, Tensor] | None = None,
               manifest: dict | None = None) -> Path:  # fmt: skip
    """Save a fitted core model built by ``spec.build(*train, ...)``.

    Args:
        path: the file to write (``.mfgp`` by convention).
        model: the fitted model.
        spec: its :class:`~mfgp.models.specs.ModelSpec`.
        train: ``(X, Y, Yvar)``, the raw training tensors ``spec.build`` was given.
        feature_map: the :class:`~mfgp.models.FeatureMap` it was given, if any.
        observations: the observations it was given, if any.
        manifest: extra JSON entries.

    Returns:
        The path written.
    """
    from mfgp.models.specs import FeatureMapSpec

    entries = {"kind": "model", "spec": spec.to_dict(),
               "feature_map": None if feature_map is None else
               FeatureMapSpec.of(feature_map).to_dict(),
               "dtype": str(train[0].dtype).removeprefix("torch."), **(manifest or {})}  # fmt: skip
    return write_bundle(path, entries, model_tensors(model, feature_map, train, observations))


def load_model(path: str | os.PathLike, device: torch.device | str | None = None):
    """Load a model saved by :func:`save_model`, in eval mode, on ``device`` (default CPU).

    Raises:
        SerializationError: truncated or corrupted file, a state that does not fit its spec,
            or a file of an estimator (load that with :func:`mfgp.load_estimator`).
        IncompatibleVersionError: written in a newer format.
        UnknownSpecError: its spec is not registered in this mfgp.
    """
    manifest, tensors, _ = read_bundle(path)
    kind = manifest.get("kind")
    if kind not in (None, "model"):  # files of the first format have no kind
        raise SerializationError(
            f"{path} holds a {kind} (an estimator saved with .save()), not a core model; load "
            f"it with mfgp.load_estimator({str(path)!r}) or {kind}.load(...); its model is "
            "then the estimator's model_"
        )
    return rebuild_model(manifest, tensors, device)[1]
