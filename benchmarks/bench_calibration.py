"""Calibration of the recommended models, in distribution and out of it, and recalibration.

Datasets and rows (each model with the row caps of ``bench_architectures``: at most 1,500
rows per lower fidelity besides those of the training and held-out compositions, 1,000 rows for
the hyperparameters, 50 L-BFGS iterations):

* ``expt_gap``: the 4,604 experimental band gaps with the MP PBE gaps as the lower fidelity.
  ``hurdle`` is the recommended model (``HurdleRegressor()``: P(metal) and a softplus-normal
  AR1 of the nonzero gaps); ``ar1`` the Gaussian AR1 (``MultiFidelityRegressor("ar1")``);
  ``single`` the single-fidelity GP on the experimental gaps alone (the NLPD bar's reference).
* ``expt_form``: Kim 2017's experimental formation enthalpies with OQMD and MP as lower
  fidelities; ``ar1`` is the recommended model, ``latent`` the explicit-latent model
  (``MultiFidelityRegressor("latent")``), ``single`` the reference.

Fold kinds: ``random`` (5 folds) and ``chemsys`` (5 folds grouped by chemical system), both of
fold seed 1 (seed 0's folds are the development split of ``bench_architectures``, never
reported); ``family``: :func:`mfgp.data.element_family_folds`, one fold per element family with
at least 20 target compositions, holding out every composition that contains one of the
family's elements (no halide in training when the halogens are held out): the
out-of-distribution test. Family folds overlap, and each is scored alone.

Recalibration rows (``random`` and ``chemsys`` folds): ``+ variance scaling`` and ``+ isotonic``
for the Gaussian models; for the hurdle, ``+ isotonic (continuous part)`` (the isotonic map of
its continuous part, fitted on the non-metals' PIT values; P(metal) as the classifier gave it)
and ``+ isotonic`` (the same map, and P(metal) through the isotonic regression of the metal
indicator on it: ``IsotonicRecalibration()``'s default on a point-mass mixture), each
fitted for a fold on the out-of-fold predictions of the *other* folds of its kind and applied
to that fold (never on the points it is scored on). Not on ``family`` folds: the other folds'
predictions include this fold's compositions.

Aggregation, every row alike: each fold's metrics on its own predictions, then the mean over
folds. ``max |cov - nominal|`` is the largest distance of the mean coverages at 50, 68, 90 and
95% from nominal (the bar: 0.02 in distribution, 0.05 out of it). Held-out values are
measurements, so every predictive includes the target fidelity's noise. Finished cells
(with their out-of-fold predictions) are kept in ``results/bench_calibration.partial.jsonl``
(committed, so that a fresh clone resumes too)
and a rerun resumes; ``ONLY=expt_gap:family,...`` runs some (dataset:kind) pairs.

Writes ``results/bench_calibration.{json,md}`` and the figures of ``docs/calibration.md``.
Run: ``make bench-calibration`` (about 70 minutes on 2 cores for every cell).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import (  # noqa: E402
    RESULTS,
    append_partial,
    max_coverage_error,
    read_partial,
    write_results,
)
from mfgp.calibration import (  # noqa: E402
    GaussianPredictive,
    IsotonicRecalibration,
    PointMassMixture,
    Predictive,
    VarianceScaling,
    evaluate,
)
from mfgp.calibration.metrics import COVERAGE_LEVELS  # noqa: E402
from mfgp.calibration.plots import calibration_curve, parity_plot, pit_histogram  # noqa: E402
from mfgp.data import (  # noqa: E402
    Folds,
    MultiFidelityDataset,
    element_family_folds,
    element_family_names,
    grouped_kfold,
    kfold,
)
from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy  # noqa: E402
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor  # noqa: E402
from mfgp.hurdle import HurdleSpec  # noqa: E402

FIGURES = Path(__file__).parent.parent / "docs" / "figures"
PARTIAL = RESULTS / "bench_calibration.partial.jsonl"  # committed: the next run resumes
SEED = 1
OPTIONS = {"max_rows_per_fidelity": 1500, "max_fit_points": 1000, "max_iter": 50}
MODELS = {"expt_gap": ["hurdle", "ar1", "single"], "expt_form": ["ar1", "latent", "single"]}
RECOMMENDED = {"expt_gap": "hurdle", "expt_form": "ar1"}
KINDS = ["family", "random", "chemsys"]
ONLY = [tuple(p.split(":")) for p in os.environ.get("ONLY", "").split(",") if p]


def dataset(name: str) -> MultiFidelityDataset:
    if name == "expt_gap":
        return MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
    return MultiFidelityDataset.from_frame(load_formation_enthalpy(["oqmd", "mp", "expt"]))


def folds_of(ds: MultiFidelityDataset, kind: str) -> tuple[list, list[str]]:
    """The folds of a kind and a name for each."""
    if kind == "family":
        return element_family_folds(ds).test_compositions, element_family_names(ds)
    f = (kfold if kind == "random" else grouped_kfold)(ds, 5, SEED)
    return f.test_compositions, [str(k) for k in range(len(f))]


def model(name: str):
    if name == "hurdle":
        return HurdleRegressor(regressor_options=OPTIONS, progress=False)
    return MultiFidelityRegressor(name, progress=False, **OPTIONS)


def run_cell(ds: MultiFidelityDataset, held: tuple[str, ...], name: str) -> tuple[dict, dict]:
    """Fit on everything but the held-out target rows; metrics and out-of-fold predictions."""
    train, test = next(Folds((tuple(held),), "family", SEED).split(ds))
    t0 = time.perf_counter()
    est = model(name).fit(ds.subset(train), candidates=list(held))
    seconds = time.perf_counter() - t0
    X, Y, _ = ds.tensors(test)
    y = Y[:, 0].numpy()
    if name == "hurdle":
        # kept: P(metal) and the regression's Gaussian in softplus space, from which the
        # recalibration rows rebuild the predictive (est.spec_.predictive)
        mu, sd = est.regressor_.predict(X, True, observation_noise=True)
        p_zero = est.predict_proba(X)[:, 1]  # column 1: P(metal)
        pred = est.spec_.predictive(p_zero, mu, sd)
        kept = {"y": y.tolist(), "p_zero": np.asarray(p_zero).tolist(),
                "mean": np.asarray(mu).tolist(), "std": np.asarray(sd).tolist(),
                "transform": est.spec_.transform, "offset": est.spec_.offset}  # fmt: skip
    else:
        mu, sd = est.predict(X, True, observation_noise=True)
        pred = GaussianPredictive(mu, sd)
        kept = {"y": y.tolist(), "mean": np.asarray(mu).tolist(), "std": np.asarray(sd).tolist()}
    return {**evaluate(y, pred), "fit_seconds": seconds}, kept


def kept_predictive(cells: list[dict]) -> tuple[np.ndarray, Predictive]:
    """The observations and out-of-fold predictive of some cells, pooled."""
    y, mu, sd = (np.concatenate([c[k] for c in cells]) for k in ("y", "mean", "std"))
    if "p_zero" not in cells[0]:
        return y, GaussianPredictive(mu, sd)
    spec = HurdleSpec(cells[0]["transform"], cells[0]["offset"])
    return y, spec.predictive(np.concatenate([c["p_zero"] for c in cells]), mu, sd)


def scores(y: np.ndarray, pred: Predictive) -> dict:
    """``evaluate``, plus for a hurdle the MAE of its hard decision (``statistic="classify"``:
    0 where P(metal) >= 0.5, else the non-metal median)."""
    out = evaluate(y, pred)
    if isinstance(pred, PointMassMixture):
        out["mae_classify"] = float(np.mean(np.abs(pred.classify(0.5) - y)))
    return out


def recalibrated(cells: list[dict]) -> list[dict]:
    """Recalibration rows of the cells of one (dataset, kind, model), each fold's maps fitted
    on the other folds: variance scaling and isotonic for a Gaussian model; for the hurdle,
    the isotonic map of the continuous part alone, and with P(metal) recalibrated too."""
    out = []
    for c in cells:
        others = [o for o in cells if o["fold"] != c["fold"]]
        y_o, pred_o = kept_predictive(others)
        y, pred = kept_predictive([c])
        base = {k: c[k] for k in ("dataset", "folds", "fold", "fold_name")}
        if isinstance(pred, GaussianPredictive):
            scaled = VarianceScaling().fit(y_o, pred_o.mean(), pred_o.std())
            out.append({**base, "model": c["model"] + " + variance scaling",
                        **scores(y, scaled.transform(pred.mean(), pred.std()))})  # fmt: skip
        else:  # the continuous part's map alone, P(metal) as the classifier gave it
            iso = IsotonicRecalibration(mixture_weight=False).fit(y_o, pred_o)
            out.append({**base, "model": c["model"] + " + isotonic (continuous part)",
                        **scores(y, iso.transform(pred))})  # fmt: skip
        iso = IsotonicRecalibration().fit(y_o, pred_o)
        out.append({**base, "model": c["model"] + " + isotonic",
                    **scores(y, iso.transform(pred))})  # fmt: skip
    return out


def table(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(records)
    cols = ["mae", "nlpd", "crps", *(f"coverage_{round(q * 100)}" for q in COVERAGE_LEVELS)]
    rows = []
    for (dname, kind, m), g in df.groupby(["dataset", "folds", "model"], sort=False):
        row = {"dataset": dname, "folds": kind, "model": m, "folds_run": len(g)}
        row.update({c: round(float(g[c].mean()), 4) for c in cols})
        row["max |cov - nominal|"] = round(
            max_coverage_error({q: row[f"coverage_{round(q * 100)}"] for q in COVERAGE_LEVELS}), 4
        )
        row["recommended"] = m == RECOMMENDED[dname]
        if "mae_classify" in g and g["mae_classify"].notna().any():
            row["mae_classify"] = round(float(g["mae_classify"].mean()), 4)
        if "fit_seconds" in g and g["fit_seconds"].notna().any():
            row["fit_seconds"] = round(float(g["fit_seconds"].mean()), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def family_table(records: list[dict]) -> pd.DataFrame:
    """Per held-out family: n, MAE and 90% coverage of each model (no recalibration)."""
    df = pd.DataFrame([r for r in records if r["folds"] == "family" and "+" not in r["model"]])
    if df.empty:
        return df
    wide = df.pivot_table(index=["dataset", "fold_name", "n"], columns="model",
                          values=["mae", "coverage_90"], sort=False)  # fmt: skip
    wide.columns = [f"{m} {k}" for k, m in wide.columns]
    return wide.reset_index().round(3)


def figures(records: list[dict]) -> None:
    """Calibration curve, parity and PIT of the Gaussian AR1 on the random band-gap folds."""
    cells = [r for r in records if r.get("y") and r["dataset"] == "expt_gap"
             and r["folds"] == "random" and r["model"] == "ar1"]  # fmt: skip
    if len(cells) < 2:
        return
    y, mu, sd = (np.concatenate([c[k] for c in cells]) for k in ("y", "mean", "std"))
    FIGURES.mkdir(parents=True, exist_ok=True)
    raw = GaussianPredictive(mu, sd)
    fig, _ = parity_plot(y, pred=raw, units="eV", title="Gaussian AR1, out-of-fold (90% intervals)")
    fig.savefig(FIGURES / "calibration_parity.png", dpi=110)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    calibration_curve(y, pred=raw, ax=ax, label="raw GP (pooled folds)")
    ax.legend(fontsize="small")
    fig.savefig(FIGURES / "calibration_curve.png", dpi=110)
    fig, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
    pit_histogram(y, pred=raw, ax=ax)
    ax.set_title("raw GP")
    fig.savefig(FIGURES / "calibration_pit.png", dpi=110)
    plt.close("all")


def main() -> None:
    done = {(r["dataset"], r["folds"], r["fold"], r["model"]): r for r in read_partial(PARTIAL)
            if r.get("seed") == SEED}  # fmt: skip
    cells: list[dict] = []
    for dname in MODELS:
        ds = None
        for kind in KINDS:
            if ONLY and (dname, kind) not in ONLY:
                cells += [r for k, r in done.items() if k[:2] == (dname, kind)]
                continue
            ds = dataset(dname) if ds is None else ds
            tests, names = folds_of(ds, kind)
            for k, (held, fold_name) in enumerate(zip(tests, names)):
                for name in MODELS[dname]:
                    key = (dname, kind, k, name)
                    if name == "hurdle" and kind != "family" and "p_zero" not in done.get(key, {}):
                        done.pop(key, None)  # run before the predictives were kept: rerun
                    if key not in done:
                        metrics, kept = run_cell(ds, held, name)
                        cell = {"dataset": dname, "folds": kind, "fold": k, "fold_name": fold_name,
                                "model": name, "seed": SEED, "options": OPTIONS, **metrics,
                                **kept}  # fmt: skip
                        append_partial(PARTIAL, [cell])
                        done[key] = cell
                        print(f"{dname} {kind} {fold_name:<28} {name:<7} n {int(cell['n']):4d} "
                              f"mae {cell['mae']:.3f} nlpd {cell['nlpd']:.2f} "
                              f"cov50/90 {cell['coverage_50']:.3f}/{cell['coverage_90']:.3f} "
                              f"({cell['fit_seconds']:.0f} s)", flush=True)  # fmt: skip
                    cells.append(done[key])
    kept = ("y", "mean", "std", "p_zero", "transform", "offset")
    records = [{k: v for k, v in c.items() if k not in kept} for c in cells]
    for r, c in zip(records, cells):
        if c.get("p_zero"):  # the raw hurdle's hard decision, from its kept predictive
            r["mae_classify"] = scores(*kept_predictive([c]))["mae_classify"]
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        if c["folds"] != "family" and c.get("y"):
            groups.setdefault((c["dataset"], c["folds"], c["model"]), []).append(c)
    for g in groups.values():
        if len(g) > 1:
            records += recalibrated(g)
    summary = table(records)
    write_results("bench_calibration", records, table=summary,
                  sections={"Held-out element families": family_table(records)})  # fmt: skip
    figures(cells)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
