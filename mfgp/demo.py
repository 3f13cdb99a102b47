"""``make demo`` / ``mfgp demo``: the main job end to end on shipped data.

Loads the band-gap ladder (MP PBE + experiment) and fits the model recommended for band gaps,
the hurdle (:class:`~mfgp.estimators.HurdleRegressor`: ``P(metal)`` from a GP classifier and
the gap of a non-metal from the PBE -> experiment AR1 on a positive scale), recalibrates it on
its own 3-fold cross-validation (its out-of-fold metrics are printed) and predicts five
well-known semiconductors and insulators with ``P(metal)`` and recalibrated 90% intervals,
never below 0 eV. Four of the five (Si, GaAs, ZnO, NaCl) have no experimental gap in the
Matbench set, so theirs are out-of-sample predictions from their PBE gaps; TiO2's experimental
gap (3.3 eV) is a training row. Each prediction conditions on the composition's own PBE row
(the fit is told about them with ``candidates=``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mfgp.calibration import evaluate
from mfgp.calibration.classification import brier_score
from mfgp.data import MultiFidelityDataset
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor

__all__ = ["WELL_KNOWN", "run_demo"]

#: the compositions the demo predicts, with their textbook gaps (eV)
WELL_KNOWN = {"Si": 1.12, "GaAs": 1.42, "ZnO": 3.37, "NaCl": 8.5, "TiO2": 3.0}


def run_demo(fast: bool = False, quiet: bool = False) -> int:
    """Run the demo; returns a process exit code.

    It costs four fits of the hurdle (one on all data, one per fold); ``fast`` caps the
    regression, the classifier's latent GP and its inducing points lower.
    """
    t0 = time.perf_counter()
    progress = not quiet
    ds = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
    print(f"{ds}  ({time.perf_counter() - t0:.1f} s to load and featurize)")
    print(ds.summary().round(3).to_string(), "\n")
    options = dict(
        max_rows_per_fidelity=1000 if fast else 1500,
        max_fit_points=800 if fast else 1200,
        max_iter=30 if fast else 50,
    )
    well_known = list(WELL_KNOWN)
    print("the hurdle: P(metal) from a GP classifier, the gap of a non-metal from the AR1 "
          f"(PBE -> experiment) on a softplus scale ({options})")  # fmt: skip
    # --fast: smaller parts for the classifier too (its latent PBE-gap GP and inducing points)
    small = dict(latent=dict(options), classifier_options={"num_inducing": 200}) if fast else {}
    gaps = HurdleRegressor(regressor_options=options, progress=progress, **small)
    gaps.fit(ds, candidates=well_known)
    print("3-fold cross-validation (3 refits), then an isotonic recalibration on its "
          "out-of-fold predictions")  # fmt: skip
    gaps.recalibrate(3, seed=0)
    cv = gaps.recalibration_cv_
    p = cv.predictions
    rows = []
    for k, pred in enumerate(cv.predictives):
        y = p.loc[p["fold"] == k, "observed"].to_numpy()
        s = evaluate(y, pred)
        rows.append({"fold": k, "n": len(y), "mae": s["mae"], "crps": s["crps"],
                     "coverage_90": s["coverage_90"],
                     "brier_metal": brier_score(y == 0, pred.weight),
                     "fit_seconds": cv.fit_seconds[k]})  # fmt: skip
    print(pd.DataFrame(rows).set_index("fold").round(3).to_string())
    y = p["observed"].to_numpy()
    raw = cv.predictive()
    nonzero = y > 0
    print(
        f"\nall {len(y)} compositions, out-of-fold: MAE {np.mean(np.abs(y - raw.mean())):.3f} eV "
        f"(of the median {np.mean(np.abs(y - raw.median())):.3f} eV); the {int(nonzero.sum())} "
        f"non-metals: MAE {np.mean(np.abs(y[nonzero] - raw.mean()[nonzero])):.3f} eV"
    )
    pred = gaps.predictive(well_known)  # recalibrated
    lower, upper = pred.interval(0.9)
    table = pd.DataFrame(
        {"formula": well_known, "p_metal": pred.weight, "mean": pred.mean(),
         "median": pred.median(), "lower_90": lower, "upper_90": upper,
         "textbook": [WELL_KNOWN[f] for f in well_known],
         "pbe": ds.observed_at(ds.inputs_for(well_known, "pbe"), "pbe")}
    )  # fmt: skip
    print("\nPredicted experimental band gaps (eV), recalibrated 90% intervals (never below 0):")
    print(table.round(2).to_string(index=False))
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    return 0
