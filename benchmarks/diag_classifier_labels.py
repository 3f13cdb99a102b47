"""When does the hurdle's classifier need the cheap PBE metallicity task? Development draws only.

The hurdle's classifier reads the PBE gap as an input (its latent). Single-task, it learns from
the target's labels alone: with the 3,000+ experimental labels of the shipped data the latent's
relevance is learnt and the multi-task PBE metallicity adds nothing (``docs/metals.md``). A
campaign starts from a few experiments. This script chose ``HurdleRegressor``'s
``multitask="auto"`` rule (multi-task below ``multitask_below`` = 200 target labels). This script measures, on development draws (seeds 100
and 101, never a reported fold or seed), the classifier's ROC-AUC and Brier score on 1,000
held-out experimental compositions against the number of experimental labels it is fitted on,
single-task (``multitask=False``) and multi-task (``True``, the PBE ``gap == 0`` labels of every
composition with a PBE gap as a second task), both with the PBE latent. The PBE rows are those of
the training and held-out compositions (the planner's setting: a candidate's PBE gap is known).

Run: ``python diag_classifier_labels.py`` (``SEEDS``, ``SIZES``); resumable
(results/diag_classifier_labels.partial.jsonl); writes results/diag_classifier_labels.{json,md}.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from _common import COMMIT, RESULTS, append_partial, read_partial, write_results
from sklearn.metrics import brier_score_loss, roc_auc_score

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor

SEEDS = [int(s) for s in os.environ.get("SEEDS", "100,101").split(",")]
SIZES = [int(s) for s in os.environ.get("SIZES", "20,50,100,200,800").split(",")]
TEST = 1000
PARTIAL = RESULTS / "diag_classifier_labels.partial.jsonl"


def world(seed: int, n: int):
    df = load_bandgap_ladder(["pbe", "expt"])
    ex = df[df.fidelity == "expt"].groupby("composition").agg(
        formula=("formula", "first"), value=("value", "mean")).reset_index()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ex))
    test, train = ex.iloc[order[:TEST]], ex.iloc[order[TEST:TEST + n]]
    comps = set(test.composition) | set(train.composition)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(comps)]
    data = pd.concat([pbe[["formula", "fidelity", "value"]],
                      train.assign(fidelity="expt")[["formula", "fidelity", "value"]]],
                     ignore_index=True)  # fmt: skip
    return data, test


def cell(seed: int, n: int, multitask: bool) -> dict:
    data, test = world(seed, n)
    t0 = time.perf_counter()
    est = HurdleRegressor(multitask=multitask, fidelities=["pbe", "expt"], progress=False,
                          seed=seed).fit(data)  # fmt: skip
    p = est.predict_proba(test.formula.tolist())[:, 1]
    y = (test.value.to_numpy() == 0).astype(int)
    return {"seed": seed, "labels": n, "multitask": multitask,
            "auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
            "seconds": round(time.perf_counter() - t0, 1), "commit": COMMIT}  # fmt: skip


def main() -> None:
    done = read_partial(PARTIAL)
    have = {(r["seed"], r["labels"], r["multitask"]) for r in done}
    for n in SIZES:
        for seed in SEEDS:
            for mt in (False, True):
                if (seed, n, mt) in have:
                    continue
                rec = cell(seed, n, mt)
                append_partial(PARTIAL, [rec])
                done.append(rec)
                print(f"labels {n:4d} seed {seed} multitask {mt!s:5}: AUC {rec['auc']:.3f} "
                      f"Brier {rec['brier']:.3f} ({rec['seconds']:.0f} s)", flush=True)
    frame = pd.DataFrame(done)
    table = frame.groupby(["labels", "multitask"]).agg(
        draws=("seed", "size"), auc=("auc", "mean"), auc_min=("auc", "min"),
        brier=("brier", "mean"), seconds=("seconds", "median")).reset_index()
    write_results("diag_classifier_labels", done,
                  columns=["seed", "labels", "multitask", "seconds"],
                  sections={"held-out experimental metallicity (1,000 compositions), mean over "
                            "development draws": table})  # fmt: skip
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
