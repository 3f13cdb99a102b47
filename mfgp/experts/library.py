"""The shipped library of pretrained source models: listing, loading, model cards.

Each source model is two files in ``mfgp/experts/_library/``: ``<name>.safetensors`` (float32
weights) and ``<name>.json`` (its model card: the data it saw, the split, validation metrics,
the featurizer preset and version, the architecture, the training time, the data licence).
``index.json`` names, for each source, the architecture kept (the lower validation MAE), so
``load("mp_e_form")`` is the better of ``mp_e_form-set`` and ``mp_e_form-mlp``.

Nothing is downloaded: the files are package data. ``python -m mfgp.experts.train`` rebuilds
them from the shipped data sets (:mod:`mfgp.experts.train`).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pandas as pd

from mfgp.exceptions import InputDataError
from mfgp.nn.experts import Expert, ExpertStack

__all__ = ["available", "card", "load", "load_stack", "resolve"]

CARD_FORMAT = "mfgp.expert-card"


def _dir():
    return resources.files("mfgp.experts") / "_library"


@cache
def _index() -> dict:
    try:
        return json.loads((_dir() / "index.json").read_text())
    except FileNotFoundError:  # a checkout whose library has not been trained
        return {"default": {}, "models": []}


def resolve(name: str) -> str:
    """The shipped model a name means: a source (``"mp_e_form"``) or a model (``"mp_e_form-mlp"``).

    Raises:
        InputDataError: no such source or model (the message lists what is shipped).
    """
    index = _index()
    if name in index["models"]:
        return name
    if name in index["default"]:
        return index["default"][name]
    if name in index.get("features", {}):
        return index["features"][name]
    raise InputDataError(
        f"no source model {name!r} in mfgp's library; available: "
        f"{sorted(index['default'])} (or a named architecture: {sorted(index['models'])})"
    )


@cache
def _card(model: str) -> dict:
    return json.loads((_dir() / f"{model}.json").read_text())


def card(name: str) -> dict:
    """The model card of a source model (a copy): data, split, metrics, featurizer, licence."""
    return json.loads(json.dumps(_card(resolve(name))))


def available(all_architectures: bool = False) -> pd.DataFrame:
    """The shipped source models, one row each: what they predict, from what, and how well.

    Args:
        all_architectures: list every trained model, not only each source's kept architecture.

    Returns:
        A frame with ``name, source, property, unit, arch, n_train, n_val, val_mae, val_rmse,
        train_seconds, default``, sorted by name.
    """
    index = _index()
    kept = set(index["default"].values()) | set(index.get("features", {}).values())
    rows = []
    for model in index["models"]:
        if not all_architectures and model not in kept:
            continue
        c = _card(model)
        rows.append({
            "name": c["source"] if model in kept and not all_architectures else model,
            "source": c["source"], "property": c["property"], "unit": c["unit"],
            "arch": c["arch"], "n_train": c["split"]["n_train"], "n_val": c["split"]["n_val"],
            "val_mae": c["metrics"]["val_mae"], "val_rmse": c["metrics"]["val_rmse"],
            "train_seconds": c["train_seconds"], "default": model in kept,
        })  # fmt: skip
    columns = ["name", "source", "property", "unit", "arch", "n_train", "n_val", "val_mae",
               "val_rmse", "train_seconds", "default"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values("name", ignore_index=True)


def load(name: str) -> Expert:
    """A shipped source model, frozen: ``load("mp_e_form")(X)`` -> learned features.

    ``X`` is the raw output of ``CompositionFeaturizer("extended")``; ``expert.predict(X)`` is
    the network's own prediction of its source property (in standardised units of the card's
    ``target_mean`` / ``target_std``).

    Example:
        >>> from mfgp import experts
        >>> e = experts.load("mp_pbe_gap")  # doctest: +SKIP
        >>> e.config["out_dim"]  # doctest: +SKIP
        16
    """
    from safetensors.torch import load

    model = resolve(name)
    c = _card(model)
    if c.get("format") != CARD_FORMAT:
        raise InputDataError(f"{model}.json is not an mfgp expert card")
    expert = Expert.from_config(c["expert"])
    state = load((_dir() / f"{model}.safetensors").read_bytes())
    expert.load_state_dict(state)
    expert.eval()
    expert.requires_grad_(False)
    return expert


def load_stack(names="all", mixture: str = "additive") -> ExpertStack:
    """Several source models side by side (:class:`~mfgp.experts.ExpertStack`).

    Args:
        names: ``"all"``: every source's kept model, and for the ``"additive"`` and
            ``"concat"`` mixtures also the ``"magpie"`` block (the standardised hand-made
            features, which carry the target once it has many labels; a ``"gated"`` mixture
            needs equally wide experts, so it gates the learned sources only). ``"sources"``:
            the learned sources only. Or a sequence of names for :func:`load`.
        mixture: ``"additive"``, ``"gated"`` or ``"concat"`` (see :class:`ExpertStack`).
    """
    index = _index()
    if isinstance(names, str):
        if names in ("all", "sources"):
            extra = list(index.get("features", {})) if names == "all" and mixture != "gated" else []
            names = sorted(index["default"]) + extra
        else:
            names = [names]
    names = list(names)
    if not names:
        raise InputDataError("no source models to stack: the library is empty or names=[]")
    return ExpertStack([load(n) for n in names], mixture=mixture)
