"""Why does the random forest find more window hits than the hurdle? Development seeds only.

``bench_planner`` reported the hurdle's window planner (``mfgp``, then with a single-task
classifier) at 12.0 hits after 50 experiments against the random forest's 14.3 on seeds 0-9.
Its GPs refit every 25 experiments (conditioned in between; the hurdle's classifier is *not*
updated between refits), the forest every batch of 5. This script separates that on
development seeds (100 onwards, never the reported ones): the single-task hurdle as the
benchmark ran it, the same refitted every batch, the forest, and the hurdle with the
multi-task classifier (``multitask=True``, what ``"auto"`` chooses with these few
experiments), on the same worlds (``bench_planner._world``).

Run: ``python diag_planner_refit.py`` (``SEEDS``, ``FIRST_SEED``, ``STRATEGIES`` separated by ``;``); cells are
kept in results/diag_planner_refit.partial.jsonl (resumable); writes
results/diag_planner_refit.{json,md}.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import COMMIT, RESULTS, append_partial, read_partial, write_results

import bench_planner as bp

from mfgp.estimators import HurdleRegressor

SEEDS = int(os.environ.get("SEEDS", 8))
FIRST_SEED = int(os.environ.get("FIRST_SEED", 100))
PARTIAL = RESULTS / "diag_planner_refit.partial.jsonl"
#: strategy -> (bench_planner strategy, refit_every, HurdleRegressor options of "mfgp")
#: (the refit variants ran single-task, the default when they ran at fd6ff2e: pinned)
VARIANTS = {"mfgp, refit 25": ("mfgp", 25, {"multitask": False}),
            "mfgp, refit 5": ("mfgp", 5, {"multitask": False}),
            "random forest": ("random forest", 25, {}),
            "mfgp, multitask classifier": ("mfgp", 25, {"multitask": True})}  # fmt: skip
ONLY = [s for s in os.environ.get("STRATEGIES", "").split(";") if s]


def run(name: str, seed: int, tmp: Path) -> dict:
    strategy, refit, options = VARIANTS[name]
    bp.REFIT = refit
    bp.HurdleRegressor = functools.partial(HurdleRegressor, **options)
    t0 = time.perf_counter()
    sub = tmp / name.replace(", ", "-").replace(" ", "_")
    sub.mkdir(exist_ok=True)
    rec = bp.run_cell(strategy, seed, sub)
    rec.update(strategy=name, refit_every=refit, commit=COMMIT,
               seconds=round(time.perf_counter() - t0, 1))  # fmt: skip
    return rec


def main() -> None:
    done = read_partial(PARTIAL)
    have = {(r["strategy"], r["seed"]) for r in done}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(FIRST_SEED, FIRST_SEED + SEEDS):
            for name in ONLY or VARIANTS:
                if (name, seed) in have:
                    continue
                rec = run(name, seed, Path(tmp))
                append_partial(PARTIAL, [rec])
                done.append(rec)
                print(f"seed {seed} {name:>16}: hits at 25/50 "
                      f"{rec['hits'][24] if rec['hits'] else '-'}/"
                      f"{rec['hits'][-1] if rec['hits'] else '-'} ({rec['seconds']:.0f} s)",
                      flush=True)  # fmt: skip
    rows = []
    for name in VARIANTS:
        H = [r["hits"] for r in done if r["strategy"] == name and len(r["hits"]) == bp.BUDGET]
        if not H:
            continue
        H = np.asarray(H, dtype=float)
        rows.append({"strategy": name, "seeds": len(H), "hits_25_mean": H[:, 24].mean(),
                     "hits_50_mean": H[:, -1].mean(), "hits_50_min": H[:, -1].min(),
                     "hits_50_max": H[:, -1].max(),
                     "median_seconds": float(np.median([r["seconds"] for r in done
                                                        if r["strategy"] == name]))})
    table = pd.DataFrame(rows)
    write_results("diag_planner_refit", done, columns=["strategy", "seed", "seconds"],
                  sections={"development seeds: window hits after 25 / 50 experiments": table})
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
