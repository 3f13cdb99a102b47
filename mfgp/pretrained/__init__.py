"""Ready-made models: fitted default estimators of the shipped targets, with model cards.

``mfgp.pretrained("expt_gap")`` returns a fitted estimator, loaded from a file shipped inside
the package (no refit, nothing downloaded), that predicts new formulas at once:

* ``"expt_gap"``: experimental band gaps, ``HurdleRegressor()`` with its defaults fitted on the
  shipped PBE + experimental gaps (``load_bandgap_ladder(["pbe", "expt"])``);
* ``"expt_formation_enthalpy"``: experimental formation enthalpies,
  ``MultiFidelityRegressor("ar1")`` with its defaults fitted on
  ``load_formation_enthalpy(["oqmd", "mp", "expt"])``.

Each model is two files in ``mfgp/pretrained/_models/``: ``<name>.mfgp`` (the estimator,
:mod:`mfgp.io`'s format, float64 as fitted) and its model card, ``<name>.json`` with a readable
rendering ``<name>.md``: the data (loader, fidelities, rows per level), the commit and the
library versions it was built with, the fit time, the file's size and SHA-256, cross-validated
metrics (cited from the committed benchmark results, or computed by the build), and reference
predictions recorded at build time (the tests check that a loaded model gives them back).
``python -m mfgp.pretrained.build`` (``make pretrained``) rebuilds them.

The module itself is callable: ``mfgp.pretrained(name)`` is :func:`load`.

Example:
    >>> import mfgp
    >>> gaps = mfgp.pretrained("expt_gap")  # doctest: +SKIP
    >>> gaps.predict(["Si", "GaAs", "ZnO"])  # doctest: +SKIP
    >>> mfgp.pretrained.available()  # doctest: +SKIP
    >>> print(mfgp.pretrained.card("expt_gap", markdown=True))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
import types
from functools import cache
from importlib import resources

import pandas as pd

from mfgp.exceptions import InputDataError, SerializationError

__all__ = ["CARD_FORMAT", "available", "card", "load", "render_card"]

CARD_FORMAT = "mfgp.pretrained-card"


def _dir():
    return resources.files("mfgp.pretrained") / "_models"


@cache
def _cards() -> dict[str, dict]:
    """Every shipped card, by name (read once: the package's files do not change)."""
    folder = _dir()
    if not folder.is_dir():  # a checkout whose models have not been built
        return {}
    cards = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            c = json.loads(entry.read_text(encoding="utf-8"))
            if c.get("format") == CARD_FORMAT:
                cards[c["name"]] = c
    return cards


def _card(name: str) -> dict:
    cards = _cards()
    if not isinstance(name, str) or name not in cards:
        shipped = sorted(cards) or "none (build them: make pretrained)"
        raise InputDataError(
            f"no pretrained model {name!r} in mfgp; available: {shipped} "
            "(mfgp.pretrained.available() lists them with their data and metrics)"
        )
    return cards[name]


def card(name: str, markdown: bool = False) -> dict | str:
    """The model card of a pretrained model: a dict (a copy), or its readable rendering.

    Args:
        name: a name from :func:`available`.
        markdown: return the card as the Markdown text shipped beside it (``<name>.md``).

    Raises:
        InputDataError: no model of that name (the message lists the shipped ones).
    """
    c = _card(name)
    if markdown:
        return (_dir() / f"{name}.md").read_text(encoding="utf-8")
    return json.loads(json.dumps(c))


def available() -> pd.DataFrame:
    """The shipped pretrained models, one row each: what they predict, from what, how well.

    Returns:
        A frame with ``name, estimator, property, unit, fidelities, rows, file_mb, cv_mae,
        cv_coverage_90, cv_source``, sorted by name. The ``cv_`` columns are the first
        cross-validation of the card's ``metrics`` (random folds; ``cv_source`` says where
        its numbers come from: the build, or a committed benchmark file and how its model
        differs).
    """
    rows = []
    for name, c in sorted(_cards().items()):
        cv = (c["metrics"].get("cross_validation") or [{}])[0]
        rows.append({
            "name": name, "estimator": c["estimator"]["call"], "property": c["property"],
            "unit": c["unit"], "fidelities": ", ".join(c["data"]["fidelities"]),
            "rows": sum(c["data"]["rows_per_fidelity"].values()),
            "file_mb": round(c["file"]["bytes"] / 1e6, 2),
            "cv_mae": cv.get("metrics", {}).get("mae"),
            "cv_coverage_90": cv.get("metrics", {}).get("coverage_90"),
            "cv_source": cv.get("source"),
        })  # fmt: skip
    columns = ["name", "estimator", "property", "unit", "fidelities", "rows", "file_mb",
               "cv_mae", "cv_coverage_90", "cv_source"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def load(name: str, device: str | None = None):
    """A pretrained model, fitted and ready to predict formulas (no refit).

    Args:
        name: a name from :func:`available` (``"expt_gap"``, ``"expt_formation_enthalpy"``).
        device: where the model predicts (default: the CPU), as in
            :func:`mfgp.load_estimator`.

    Returns:
        The fitted estimator the card names (a :class:`~mfgp.HurdleRegressor` or a
        :class:`~mfgp.MultiFidelityRegressor`): ``predict``, ``predictive``, ``save``,
        ``recalibrate`` and the rest work as on one you fitted.

    Raises:
        InputDataError: no model of that name (the message lists the shipped ones).
        SerializationError: the model's file is missing or damaged (reinstall mfgp, or
            rebuild with ``make pretrained``).

    Example:
        >>> gaps = mfgp.pretrained.load("expt_gap")  # doctest: +SKIP
        >>> gaps.predictive(["Si", "Cu"]).interval(0.9)  # doctest: +SKIP
    """
    from mfgp.estimators import load_estimator

    c = _card(name)
    ref = _dir() / c["file"]["name"]
    if not ref.is_file():
        raise SerializationError(
            f"pretrained model {name!r}: its file {c['file']['name']!r} is missing from this "
            "installation (the card is there); reinstall mfgp, or rebuild it with "
            "`make pretrained` in a checkout"
        )
    with resources.as_file(ref) as path:
        est = load_estimator(path, device)
    if type(est).__name__ != c["estimator"]["class"]:
        raise SerializationError(
            f"pretrained model {name!r}: {c['file']['name']} holds a {type(est).__name__}, its "
            f"card a {c['estimator']['class']}; rebuild both with `make pretrained`"
        )
    return est


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_card(c: dict) -> str:
    """The readable (Markdown) rendering of a model card dict, as shipped in ``<name>.md``."""
    d, f = c["data"], c["file"]
    lines = [
        f"# Pretrained model `{c['name']}`",
        "",
        c["description"],
        "",
        "```python",
        "import mfgp",
        f"model = mfgp.pretrained({c['name']!r})   # {c['estimator']['call']}, fitted",
        f"model.predict({c['reference']['formulas'][:3]!r})",
        "```",
        "",
        "## Model",
        "",
        f"- estimator: `{c['estimator']['call']}` (class `{c['estimator']['class']}`, "
        "every parameter at its default)",
        f"- property: {c['property']}, in {c['unit']}; target fidelity `{d['fidelities'][-1]}`",
        f"- file: `{f['name']}`, {f['bytes']:,} bytes, SHA-256 `{f['sha256'][:16]}...`",
        "",
        "## Data",
        "",
        f"- loader: `{d['loader']}`",
        f"- sources (the loader's `source` column): {', '.join(f'`{s}`' for s in d['sources'])}",
        "",
        "| fidelity | rows | compositions |",
        "|---|---:|---:|",
    ]
    for fid in d["fidelities"]:
        lines.append(f"| {fid} | {d['rows_per_fidelity'][fid]:,} | "
                     f"{d['compositions_per_fidelity'][fid]:,} |")  # fmt: skip
    b = c["build"]
    lines += [
        "",
        "## Build",
        "",
        f"- commit: `{b['commit']}`" + (f" (uncommitted changes in: "
                                        f"{', '.join(b['dirty_paths'])})"
                                        if b["dirty_paths"] else ""),  # fmt: skip
        f"- built: {b['created']} on {b['machine']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in b["versions"].items()),
        f"- fit time: {b['fit_seconds']:.0f} s ({b['threads']} torch threads; "
        + (f"load average {b['load_average'][0]:.1f} at the start, "
           f"{b['load_average'][1]:.1f} at the end)" if b.get("load_average")
           else "the machine may have been shared)"),
        f"- command: `{b['command']}`",
        "",
        "## Cross-validated metrics",
        "",
        "Out-of-fold predictions of held-out experimental values (the predictive of a new "
        "measurement); each held-out composition's lower-fidelity values stay visible, as they "
        "are for a new formula with a computed value. Mean over folds of each fold's metric.",
        "",
        "| source | folds | n folds | MAE | RMSE | NLPD | CRPS | 90% coverage | 50% coverage |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cv in c["metrics"]["cross_validation"]:
        m = cv["metrics"]
        lines.append(
            f"| {cv['source']} | {cv['folds']} | {cv['n_folds']} | {_fmt(m.get('mae'))} | "
            f"{_fmt(m.get('rmse'))} | {_fmt(m.get('nlpd'))} | {_fmt(m.get('crps'))} | "
            f"{_fmt(m.get('coverage_90'))} | {_fmt(m.get('coverage_50'))} |"
        )
    lines.append("")
    for cv in c["metrics"]["cross_validation"]:
        lines.append(f"- {cv['source']}: {cv['note']}")
    if c["metrics"].get("note"):
        lines += ["", c["metrics"]["note"]]
    r = c["reference"]
    cols = [k for k in r["columns"] if k != "formula"]
    lines += [
        "",
        "## Reference predictions",
        "",
        f"Recorded at build time ({r['what']}); `tests/test_pretrained.py` checks that the "
        "loaded model gives them back.",
        "",
        "| formula | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for i, formula in enumerate(r["formulas"]):
        lines.append(f"| {formula} | " + " | ".join(f"{r['values'][k][i]:.4f}" for k in cols)
                     + " |")  # fmt: skip
    lines += ["", "## Licence of the data", "", c["licence"], ""]
    return "\n".join(lines)


class _CallableModule(types.ModuleType):
    """This module, callable: ``mfgp.pretrained(name)`` is ``mfgp.pretrained.load(name)``."""

    def __call__(self, name: str, device: str | None = None):
        return load(name, device)


# only this module's own type changes (the documented ``mfgp.pretrained(name)`` form); no
# global state, no file read until a function is called
sys.modules[__name__].__class__ = _CallableModule
