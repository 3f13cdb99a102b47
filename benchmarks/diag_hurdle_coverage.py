"""Where the hurdle's in-distribution coverage error comes from: the metals or the non-metals.

Reads the kept folds of ``bench_metals`` (fold seed 1, ``results/.bench_metals.partial.jsonl``:
per fold, the hurdle's records on all compositions and on the nonzero gaps, and the
out-of-fold P(metal) of its classifier, ``gp_latent/magpie``). A metal's gap is 0, the atom of
the hurdle's predictive, which spans ``[0, w]`` of the CDF with ``w = P(metal)``; its expected
randomised-PIT coverage of the central ``q`` interval is ``|[0, w] & [(1-q)/2, (1+q)/2]| / w``
(:meth:`mfgp.distributions.Predictive.covered`), a function of ``w`` alone. So the
coverage of the metals is computed here from the kept probabilities, and that of the
non-metals is the ``nonzero`` record. A check: their weighted sum is the ``all`` record.

Also: how the metals' ``w`` are spread (an under-confident classifier, ``w`` of 0.6-0.9 on
metals, over-covers them at 50 and 68%) and the classifier's calibration in bins.

Writes ``results/diag_hurdle_coverage.{json,md}``. Run after ``make bench-metals``:
``cd benchmarks && python diag_hurdle_coverage.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import RESULTS, max_coverage_error, read_partial, write_results
from mfgp.calibration import PointMassMixture, SoftplusNormalPredictive
from mfgp.calibration.metrics import COVERAGE_LEVELS

SEED = 1
HURDLE, CLASSIFIER = "hurdle_ar1/magpie", "gp_latent/magpie"


def atom_coverage(w: np.ndarray, level: float) -> np.ndarray:
    """Coverage of observations at the atom (a zero gap) of hurdle predictives with P(metal)
    ``w``, by the package's own rule (:meth:`Predictive.covered`). The continuous part lies on
    ``(0, inf)``, so at 0 only ``w`` matters; any such part gives the same answer."""
    off_atom = SoftplusNormalPredictive(np.zeros_like(w), np.ones_like(w))
    return PointMassMixture(w, off_atom).covered(np.zeros_like(w), np.array([level]))[0]


def main() -> None:
    items = [i for i in read_partial(RESULTS / ".bench_metals.partial.jsonl")
             if i.get("seed", 0) == SEED]  # fmt: skip
    folds = sorted({(i["folds"], i["fold"]) for i in items})
    records = []
    for kind, k in folds:
        here = [i for i in items if (i["folds"], i["fold"]) == (kind, k)]
        probs = [i for i in here if i["item"] == "probs" and i["model"] == CLASSIFIER]
        recs = {i["subset"]: i for i in here if i["item"] == "record" and i["model"] == HURDLE}
        if not probs or set(recs) != {"all", "nonzero"}:
            continue
        metal = np.asarray(probs[0]["metal"]) == 1
        w = np.asarray(probs[0]["p"])
        row = {"folds": kind, "fold": k, "n_metals": int(metal.sum()),
               "n_nonmetals": int((~metal).sum()),
               "mean_p_metal_on_metals": float(w[metal].mean()),
               "share_metals_p_0.5_to_0.9": float(np.mean((w[metal] >= 0.5) & (w[metal] < 0.9))),
               "mean_p_metal_on_nonmetals": float(w[~metal].mean())}  # fmt: skip
        for q in COVERAGE_LEVELS:
            c = f"coverage_{round(100 * q)}"
            cm = float(atom_coverage(w[metal], q).mean())
            cn = recs["nonzero"][c]
            row[f"{c}_metals"] = cm
            row[f"{c}_nonmetals"] = cn
            row[f"{c}_all"] = recs["all"][c]
            # the check: metals and non-metals make up the record on all compositions
            row[f"{c}_recombined"] = (cm * metal.sum() + cn * (~metal).sum()) / metal.size
        records.append(row)
    df = pd.DataFrame(records)
    if df.empty:
        raise SystemExit("no kept bench_metals fold of seed 1 with the hurdle's rows: run it first")
    rows = []
    for kind, g in df.groupby("folds", sort=False):
        for part in ("metals", "nonmetals", "all"):
            r = {"folds": kind, "compositions": part, "folds_run": len(g)}
            for q in COVERAGE_LEVELS:
                c = f"coverage_{round(100 * q)}"
                r[c] = round(float(g[f"{c}_{part}"].mean()), 3)
            means = {q: r[f"coverage_{round(100 * q)}"] for q in COVERAGE_LEVELS}
            r["max_coverage_error"] = round(max_coverage_error(means), 3)
            rows.append(r)
    table = pd.DataFrame(rows)
    classifier = df.groupby("folds", sort=False)[
        ["mean_p_metal_on_metals", "share_metals_p_0.5_to_0.9", "mean_p_metal_on_nonmetals"]
    ].mean().round(3).reset_index()  # fmt: skip
    gap = max(
        abs(
            df[f"coverage_{round(100 * q)}_recombined"] - df[f"coverage_{round(100 * q)}_all"]
        ).max()
        for q in COVERAGE_LEVELS
    )
    write_results("diag_hurdle_coverage", records, table=table,
                  sections={"The hurdle's classifier on the held-out compositions": classifier})  # fmt: skip
    print(table.to_string(index=False))
    print(classifier.to_string(index=False))
    print(f"largest |recombined - all| over folds and levels: {gap:.2e}")


if __name__ == "__main__":
    main()
