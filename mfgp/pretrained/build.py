"""Build the shipped pretrained models: ``python -m mfgp.pretrained.build [name ...]``.

Reproduces ``mfgp/pretrained/_models/`` (``make pretrained``): for each model, the estimator
with its defaults (seed 0, float64, CPU) fitted on a shipped data set, saved with
:meth:`~mfgp.estimators.MultiFidelityRegressor.save`, and its model card (``<name>.json`` and
``<name>.md``): the data, the commit and versions, the fit time, the file's size and SHA-256,
reference predictions of a few formulas, and cross-validated metrics.

The metrics: the committed benchmark rows nearest to each model (``benchmarks/results/``, the
file, the rows selected and how that benchmark's model differs from the shipped one are in the
card), and, with ``--cv K``, a K-fold cross-validation of the exact shipped estimator on its own
data, run here (random folds over the target compositions, fold seed 1 as the benchmarks';
each fold is a full fit: minutes per fold for the hurdle on 2 cores, so by default only the
enthalpy model's runs). A card built without one says so.

Run from a checkout (it reads the git commit and ``benchmarks/results/``)::

    python -m mfgp.pretrained.build                   # both models, each with its own --cv
    python -m mfgp.pretrained.build expt_gap --cv 5    # one, cross-validated (5 more fits)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mfgp._io import atomic_write
from mfgp.pretrained import CARD_FORMAT, render_card

__all__ = ["RECIPES", "Recipe", "build", "main"]

OUT = Path(__file__).parent / "_models"
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
#: fold seed of the cross-validations (seed 0's folds are the benchmarks' development split)
CV_SEED = 1
METRICS = ("mae", "rmse", "nlpd", "crps", "coverage_50", "coverage_90", "coverage_95")


@dataclass(frozen=True)
class Recipe:
    """How one pretrained model is built and described.

    Attributes:
        name: the model's name (``mfgp.pretrained(name)``).
        estimator_class, args: the estimator, ``mfgp.<estimator_class>(*args)`` (every other
            parameter at its default).
        loader, fidelities: the shipped loader and the fidelities it is given, low to high.
        property, unit, description, licence: for the card.
        formulas: the reference formulas whose predictions the card records.
        benchmarks: ``(file, selector, note)`` or ``(file, selector, note, exact)``:
            committed per-fold benchmark records (in ``benchmarks/results/``) whose mean over
            folds the card cites, with how that benchmark's model differs from the shipped one
            (``exact``: it is the shipped estimator, every parameter at its default, and the
            note says how it was run).
        cv_folds: folds of the build's own cross-validation of the exact model (``0``: none;
            ``--cv`` overrides it).
    """

    name: str
    estimator_class: str
    args: tuple
    loader: str
    fidelities: tuple[str, ...]
    property: str
    unit: str
    description: str
    licence: str
    formulas: tuple[str, ...]
    benchmarks: tuple[tuple, ...] = field(default_factory=tuple)  # (file, selector, note[, exact])
    cv_folds: int = 0

    @property
    def call(self) -> str:
        """The estimator as a user writes it: ``'MultiFidelityRegressor("ar1")'``."""
        args = ", ".join(json.dumps(a) for a in self.args)
        return f"{self.estimator_class}({args})"

    def estimator(self):
        """A new unfitted estimator: ``mfgp.<estimator_class>(*args)``."""
        import mfgp

        return getattr(mfgp, self.estimator_class)(*self.args)

    def frame(self):
        """The training frame: the shipped loader called with the recipe's fidelities."""
        from mfgp import datasets

        return getattr(datasets, self.loader)(list(self.fidelities))


_CAPS = ("at most 1,500 rows per lower fidelity besides those of the target and held-out "
         "compositions, 1,000 rows for the hyperparameters and 50 L-BFGS iterations, where the "
         "shipped model has the defaults (3,000, 1,500, 100)")  # fmt: skip

RECIPES: dict[str, Recipe] = {
    "expt_gap": Recipe(
        name="expt_gap",
        estimator_class="HurdleRegressor",
        args=(),
        loader="load_bandgap_ladder",
        fidelities=("pbe", "expt"),
        property="band gap (experimental)",
        unit="eV",
        description=(
            "Experimental band gaps of inorganic compounds from their composition: the hurdle "
            "model (P(metal) from a GP classifier that takes the PBE gap as a latent input, "
            "plus the gap of a non-metal from a softplus-scale AR1 of PBE and experiment), "
            "fitted with its defaults on every shipped PBE and experimental gap. Predictions "
            "and intervals are never below 0 eV; a formula with a PBE value in the shipped "
            "table is predicted from it too. Not recalibrated (`model.recalibrate(5)` "
            "refits on the same data to do that)."
        ),
        licence=(
            "Matbench `expt_gap` (Zhuo et al. 2018; Dunn et al. 2020; CrabNet copy, MIT); "
            "Materials Project 2018 PBE gaps (Jain et al. 2013, CC-BY 4.0; automatminer copy, "
            "BSD-3). See mfgp/datasets/_data/ATTRIBUTION.md."
        ),
        formulas=("Si", "GaAs", "ZnO", "Cu", "TiO2"),
        benchmarks=(
            ("diag_own_pbe.json",
             {"dataset": "expt_gap", "folds": "random", "path": "own PBE", "subset": "all"},
             "`HurdleRegressor()` refitted in each fold on the other folds' rows, the "
             "held-out compositions' PBE rows included but not passed as candidates (as this "
             "model meets a formula after its fit); run at the commit in the file's records, "
             "before this build", True),
            ("diag_own_pbe.json",
             {"dataset": "expt_gap", "folds": "chemsys", "path": "own PBE", "subset": "all"},
             "as above, folds grouped by chemical system", True),
            ("bench_calibration.json",
             {"dataset": "expt_gap", "folds": "random", "model": "hurdle"},
             "the benchmark's `HurdleRegressor(regressor_options=...)` gives the regression "
             + _CAPS + " (classifier and latent GP at their defaults, as shipped); run at "
             "the commits in the file's records, before this build"),
            ("bench_calibration.json",
             {"dataset": "expt_gap", "folds": "chemsys", "model": "hurdle"},
             "as above, folds grouped by chemical system"),
        ),
        # each fold is a full hurdle fit (about 4 minutes alone on 2 cores): off by default,
        # `--cv 5` runs it
        cv_folds=0,
    ),
    "expt_formation_enthalpy": Recipe(
        name="expt_formation_enthalpy",
        estimator_class="MultiFidelityRegressor",
        args=("ar1",),
        loader="load_formation_enthalpy",
        fidelities=("oqmd", "mp", "expt"),
        property="formation enthalpy (experimental)",
        unit="eV/atom",
        description=(
            "Experimental formation enthalpies from the composition: the AR1 difference GP "
            "(OQMD -> MP -> experiment, fitted level by level) with its defaults, on the "
            "shipped Kim et al. 2017 table. The experimental compounds are mostly "
            "intermetallics: a composition far from every training row (an ionic compound "
            "such as NaCl) gets the prior mean and a wide interval."
        ),
        licence=(
            "Kim, Meschel, Nash, Chen 2017 (Sci. Data 4, 170162; CC-BY), automatminer copy "
            "(BSD-3). See mfgp/datasets/_data/ATTRIBUTION.md."
        ),
        formulas=("TiAl", "NiAl", "TiNi", "Al2Ni3", "NaCl"),
        benchmarks=(
            ("bench_calibration.json",
             {"dataset": "expt_form", "folds": "random", "model": "ar1"},
             "the benchmark's model has " + _CAPS + "; on this data only the 50 "
             "iterations bind (each level has fewer than 1,500 rows); run at the commits in "
             "the file's records, before this build"),
            ("bench_calibration.json",
             {"dataset": "expt_form", "folds": "chemsys", "model": "ar1"},
             "as above, folds grouped by chemical system"),
        ),
        cv_folds=5,  # seconds per fold
    ),
}  # fmt: skip


def _say(message: str) -> None:
    print(f"[pretrained] {message}", flush=True)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=30, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip("\n")  # porcelain lines start with a space: keep it


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return float("nan")


def _source_state() -> dict:
    """The commit and the uncommitted paths under ``mfgp/``: read before the fit starts."""
    status = _git("status", "--porcelain", "--", "mfgp") or ""
    dirty = sorted(line[3:] for line in status.splitlines()
                   if not line[3:].startswith("mfgp/pretrained/_models/"))  # fmt: skip
    return {"commit": (_git("rev-parse", "HEAD") or "").strip()
            or "unknown (not built from a git checkout)", "dirty_paths": dirty}  # fmt: skip


def _build_info(source: dict, fit_seconds: float, load: tuple[float, float]) -> dict:
    """The commit, uncommitted changes under ``mfgp/``, versions, machine, time.

    ``source``: :func:`_source_state` when the build started. ``load``: the 1-minute load
    average when the fit started and when it ended (a fit time on a shared machine means
    little without it).
    """
    import torch

    from mfgp.io import versions

    return {
        **source,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "threads": torch.get_num_threads(),
        "versions": {**versions(), "numpy": np.__version__},
        "fit_seconds": round(fit_seconds, 1),
        "load_average": [round(x, 2) for x in load],
        "command": "python -m mfgp.pretrained.build " + " ".join(sys.argv[1:]),
    }


def _data_info(recipe: Recipe, frame) -> dict:
    counts = frame.groupby("fidelity").size()
    comps = frame.groupby("fidelity")["composition"].nunique()
    fids = list(recipe.fidelities)
    return {
        "loader": f"mfgp.datasets.{recipe.loader}({fids!r})",
        "fidelities": fids,
        "rows_per_fidelity": {f: int(counts.get(f, 0)) for f in fids},
        "compositions_per_fidelity": {f: int(comps.get(f, 0)) for f in fids},
        "sources": sorted(frame["source"].astype(str).unique().tolist()),
    }


def reference_predictions(est, formulas) -> dict:
    """The predictions the card records: the predictive of a new measurement per formula.

    Columns: ``mean, std, lower_90, upper_90`` and, for a hurdle, ``p_metal``.
    """
    formulas = list(formulas)
    pred = est.predictive(formulas)
    lower, upper = pred.interval(0.9)
    values = {"mean": pred.mean(), "std": pred.std(), "lower_90": lower, "upper_90": upper}
    if hasattr(pred, "weight"):
        values["p_metal"] = pred.weight
    values = {k: [float(x) for x in np.asarray(v, dtype=np.float64)] for k, v in values.items()}
    return {"formulas": formulas, "columns": ["formula", *values],
            "what": "the predictive of a new measurement at the target fidelity: "
                    "model.predictive(formulas); mean, std, 90% central interval"
                    + (", P(metal) = the point mass at 0" if "p_metal" in values else ""),
            "values": values}  # fmt: skip


def _cited(recipe: Recipe) -> list[dict]:
    """The committed benchmark rows of a recipe: mean over folds of each per-fold metric."""
    out = []
    for file, selector, note, *exact in recipe.benchmarks:
        exact = bool(exact and exact[0])
        path = RESULTS / file
        if not path.is_file():
            _say(f"{recipe.name}: {path} not found (not a checkout?); not cited")
            continue
        records = [r for r in json.loads(path.read_text())["records"]
                   if all(r.get(k) == v for k, v in selector.items())]  # fmt: skip
        if not records:
            raise SystemExit(f"{path}: no record matches {selector}; update the recipe")
        calls = {r.get("estimator") for r in records}
        if exact and calls != {recipe.call}:
            raise SystemExit(
                f"{path}: the records of {selector} ran {sorted(map(str, calls))}, not the "
                f"shipped {recipe.call}; they cannot be cited as it"
            )
        metrics = {m: float(np.mean([r[m] for r in records])) for m in METRICS
                   if all(m in r for r in records)}  # fmt: skip
        out.append({
            "source": f"benchmarks/results/{file}",
            "selector": selector,
            "folds": f"{selector['folds']}, {len(records)}-fold, fold seed "
                     f"{records[0].get('seed')}",
            "n_folds": len(records),
            "n_points": int(sum(r["n"] for r in records)),
            "commits": sorted({r["commit"] for r in records}),
            "exact_model": exact,
            "note": ("the shipped estimator: " if exact else "not the shipped model: ") + note
                    + ".",
            "metrics": metrics,
        })  # fmt: skip
    return out


def cross_validation(recipe: Recipe, folds: int) -> dict:
    """K-fold CV of the recipe's exact estimator on its own data (random folds, seed 1)."""
    from mfgp.calibration import cross_validate, evaluate
    from mfgp.data import MultiFidelityDataset, kfold

    ds = MultiFidelityDataset.from_frame(recipe.frame())
    tic = time.perf_counter()
    cv = cross_validate(recipe.estimator(), ds, kfold(ds, folds, CV_SEED))
    seconds = time.perf_counter() - tic
    per_fold = []
    for k, part in cv.predictions.groupby("fold", sort=True):
        per_fold.append(evaluate(part["observed"].to_numpy(), cv.predictives[int(k)]))
    metrics = {m: float(np.mean([p[m] for p in per_fold])) for m in METRICS}
    return {
        "source": f"this build (--cv {folds})",
        "selector": None,
        "folds": f"random, {folds}-fold, fold seed {CV_SEED}",
        "n_folds": folds,
        "n_points": int(len(cv.predictions)),
        "commits": None,
        "exact_model": True,
        "note": (f"the shipped estimator ({recipe.call}) refitted in each fold on the other "
                 f"folds' rows, {seconds:.0f} s in all; the held-out compositions are passed "
                 "as candidates (mfgp.calibration.cross_validate)."),
        "metrics": metrics,
    }  # fmt: skip


def build(recipe: Recipe, out: Path = OUT, cv_folds: int | None = None) -> dict:
    """Fit, save and describe one pretrained model; returns its card (also written to ``out``).

    Args:
        recipe: what to build.
        out: the folder of the ``.mfgp``, ``.json`` and ``.md`` files.
        cv_folds: with ``K >= 2``, also cross-validate the exact estimator (K more fits);
            ``None``: the recipe's ``cv_folds``.
    """
    if cv_folds is None:
        cv_folds = recipe.cv_folds
    source = _source_state()
    _say(f"{recipe.name}: loading {recipe.loader}({list(recipe.fidelities)})")
    frame = recipe.frame()
    data = _data_info(recipe, frame)
    _say(f"{recipe.name}: rows {data['rows_per_fidelity']}; fitting {recipe.call}")
    est = recipe.estimator()
    load = [_load_average()]
    tic = time.perf_counter()
    est.fit(frame)
    fit_seconds = time.perf_counter() - tic
    load.append(_load_average())
    _say(f"{recipe.name}: fitted in {fit_seconds:.0f} s; saving")
    path = out / f"{recipe.name}.mfgp"
    est.save(path)
    blob = path.read_bytes()
    _say(f"{recipe.name}: {path.name} {len(blob) / 1e6:.2f} MB; reference predictions of "
         f"the reloaded file")  # fmt: skip
    from mfgp.estimators import load_estimator

    reloaded = load_estimator(path)
    reference = reference_predictions(reloaded, recipe.formulas)
    direct = reference_predictions(est, recipe.formulas)["values"]
    for key, values in reference["values"].items():  # the file gives the fitted model back
        if not np.allclose(values, direct[key], rtol=1e-9, atol=1e-12):
            raise SystemExit(f"{recipe.name}: {key} of the reloaded file {values} differs from "
                             f"the fitted model's {direct[key]}")  # fmt: skip
    cross = _cited(recipe)
    if cv_folds >= 2:
        _say(f"{recipe.name}: {cv_folds}-fold cross-validation of the exact model")
        cross.insert(0, cross_validation(recipe, cv_folds))
    card = {
        "format": CARD_FORMAT, "version": 1, "name": recipe.name,
        "description": recipe.description, "property": recipe.property, "unit": recipe.unit,
        "estimator": {"call": recipe.call, "class": type(est).__name__,
                      "params": est._params_for_saving()},
        "data": data,
        "file": {"name": path.name, "bytes": len(blob),
                 "sha256": hashlib.sha256(blob).hexdigest(), "dtype": "float64"},
        "build": _build_info(source, fit_seconds, tuple(load)),
        "metrics": {
            "cross_validation": cross,
            "note": None if cv_folds >= 2 else (
                "The shipped estimator's cross-validation above is a committed benchmark's, "
                "run before this build, at the commit its records name; "
                "`python -m mfgp.pretrained.build " + recipe.name + " --cv 5` runs one in the "
                "build itself." if any(row["exact_model"] for row in cross) else
                "No cross-validation of the exact shipped model was run for this card "
                "(`python -m mfgp.pretrained.build " + recipe.name + " --cv 5` runs one); "
                "the rows above are the nearest committed benchmark results."),
        },
        "reference": reference,
        "licence": recipe.licence,
    }  # fmt: skip
    with atomic_write(out / f"{recipe.name}.json") as fh:
        json.dump(card, fh, indent=1)
        fh.write("\n")
    with atomic_write(out / f"{recipe.name}.md") as fh:
        fh.write(render_card(card))
    _say(f"{recipe.name}: card written ({recipe.name}.json, {recipe.name}.md)")
    return card


def main(argv: list[str] | None = None) -> None:
    """Command line: build the named models (default: all) into the package's folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(RECIPES),
                        help=f"models to build (default all: {', '.join(RECIPES)})")
    parser.add_argument("--cv", type=int, default=None, metavar="K",
                        help="cross-validate each exact model with K folds (K more fits), 0 for "
                             "none; default: each model's own (" + ", ".join(
                                 f"{n} {r.cv_folds}" for n, r in RECIPES.items()) + ")")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(RECIPES)}")
    if args.cv is not None and (args.cv == 1 or args.cv < 0):
        parser.error(f"--cv takes 0 (off) or a number of folds >= 2; got {args.cv}")
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in args.names:
        card = build(RECIPES[name], args.out, args.cv)
        total += card["file"]["bytes"]
    shipped = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    _say(f"done: {len(args.names)} model(s), {total / 1e6:.2f} MB of model files; "
         f"{shipped / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
