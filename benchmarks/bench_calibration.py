"""Calibration of the AR1 band-gap model on real data, and what recalibration does to it.

3-fold CV (seeded) of the AR1 GP (MP PBE -> experimental gaps, all 4,604 compositions). The
recalibrators are fitted on the out-of-fold predictions of the *other* folds and applied to
each fold in turn (never on the points they are scored on). Writes
results/bench_calibration.{json,md} and the figures of docs/calibration.md.

Run: make bench-calibration (about 2 minutes on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from _common import write_results  # noqa: E402
from mfgp.calibration import (  # noqa: E402
    GaussianPredictive,
    IsotonicRecalibration,
    VarianceScaling,
    cross_validate,
    evaluate,
)
from mfgp.calibration.plots import calibration_curve, parity_plot, pit_histogram  # noqa: E402
from mfgp.data import MultiFidelityDataset, kfold  # noqa: E402
from mfgp.datasets import load_bandgap_ladder  # noqa: E402
from mfgp.estimators import MultiFidelityRegressor  # noqa: E402

FIGURES = Path(__file__).parent.parent / "docs" / "figures"


def main() -> None:
    ds = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
    folds = kfold(ds, n_splits=3, seed=0)
    model = MultiFidelityRegressor(
        "ar1", max_rows_per_fidelity=1500, max_fit_points=1200, max_iter=50, progress=False
    )
    cv = cross_validate(model, ds, folds, progress=True)
    p = cv.predictions
    y, mu, sd, fold = (
        p["observed"].to_numpy(),
        p["mean"].to_numpy(),
        p["std"].to_numpy(),
        p["fold"].to_numpy(),
    )
    preds = {"raw": GaussianPredictive(mu, sd)}
    scaled_sd = np.empty_like(sd)
    iso_parts = {}
    for k in np.unique(fold):
        tr, te = fold != k, fold == k
        scaled_sd[te] = VarianceScaling().fit(y[tr], mu[tr], sd[tr]).transform_std(sd[te])
        iso_parts[k] = (
            IsotonicRecalibration()
            .fit(y[tr], GaussianPredictive(mu[tr], sd[tr]))
            .transform(GaussianPredictive(mu[te], sd[te]))
        )
    preds["variance scaling"] = GaussianPredictive(mu, scaled_sd)
    records = []
    for name, pred in preds.items():
        records.append(
            {
                "dataset": "expt_gap",
                "model": "ar1",
                "recalibration": name,
                "subset": "all",
                **evaluate(y, pred),
            }
        )
    # isotonic: score fold by fold (each fold has its own map), then pool
    iso_scores = [evaluate(y[fold == k], iso_parts[k]) for k in iso_parts]
    weights = np.array([s["n"] for s in iso_scores])
    pooled = {
        key: float(np.average([s[key] for s in iso_scores], weights=weights))
        for key in iso_scores[0]
    }
    pooled["n"] = float(weights.sum())
    records.append(
        {
            "dataset": "expt_gap",
            "model": "ar1",
            "recalibration": "isotonic",
            "subset": "all",
            **pooled,
        }
    )
    for r in records:
        r["fit_seconds"] = float(np.mean(cv.fit_seconds))
    cols = [
        "recalibration",
        "n",
        "mae",
        "rmse",
        "nlpd",
        "crps",
        "coverage_50",
        "coverage_90",
        "coverage_95",
        "miscalibration_area",
        "ence",
    ]
    write_results("bench_calibration", records, cols)

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, ax = parity_plot(
        y, pred=preds["variance scaling"], units="eV", title="AR1, out-of-fold (90% intervals)"
    )
    fig.savefig(FIGURES / "calibration_parity.png", dpi=110)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    calibration_curve(y, pred=preds["raw"], ax=ax, label="raw GP")
    calibration_curve(y, pred=preds["variance scaling"], ax=ax, label="variance scaling")
    levels = np.linspace(0.01, 0.99, 50)
    iso_cov = sum(iso_parts[k].covered(y[fold == k], levels).sum(1) for k in iso_parts) / y.size
    ax.plot(levels, iso_cov, lw=2, label="isotonic")
    ax.legend(fontsize="small")
    fig.savefig(FIGURES / "calibration_curve.png", dpi=110)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), layout="constrained")
    pit_histogram(y, pred=preds["raw"], ax=axes[0])
    axes[0].set_title("raw GP")
    pit_histogram(y, pred=preds["variance scaling"], ax=axes[1])
    axes[1].set_title("variance scaling")
    fig.savefig(FIGURES / "calibration_pit.png", dpi=110)
    for r in records:
        print(
            f"{r['recalibration']:<18} mae {r['mae']:.3f} nlpd {r['nlpd']:.3f} crps {r['crps']:.3f} cov90 {r['coverage_90']:.3f} miscal {r['miscalibration_area']:.3f}"
        )


if __name__ == "__main__":
    main()
