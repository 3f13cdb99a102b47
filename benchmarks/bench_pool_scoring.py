"""Scoring a 5,000-candidate pool with q = 4: mfgp's pool selection against BoTorch's
``optimize_acqf_discrete`` with qLogNEI, on the same fitted model, in one run.

The model: the AR1 GP of the shipped band gaps (PBE capped at 3,000 rows + every experimental
gap of a random half of the compositions), the pool 5,000 other compositions at the
experimental fidelity. Each method runs ``REPEATS`` times; medians are reported.

Run: ``make bench-pool-scoring`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from _common import write_results

from mfgp.acquisition import LearnMap, UpperConfidenceBound, WindowHits, select_batch
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor

REPEATS = 3
N_POOL = 5000
Q = 4


def main() -> None:
    df = load_bandgap_ladder(["pbe", "expt"])
    comps = df.composition.drop_duplicates().sample(frac=1.0, random_state=0).tolist()
    expt = df[df.fidelity == "expt"]
    train_comps = set(expt.composition.drop_duplicates().sample(frac=0.5, random_state=0))
    pool_comps = [c for c in comps if c not in train_comps][:N_POOL]
    train = df[(df.fidelity == "pbe") | df.composition.isin(train_comps)]
    reg = MultiFidelityRegressor("ar1", max_rows_per_fidelity=3000, progress=False).fit(train)
    pool = df.drop_duplicates("composition").set_index("composition").loc[pool_comps, "formula"]
    C = reg.dataset_.inputs_for(pool.tolist())
    X_all, _, _ = reg.dataset_.tensors()
    baseline = X_all[X_all[:, -1] == 1]
    R = C[torch.randperm(C.shape[0], generator=torch.Generator().manual_seed(0))[:256]]
    model = reg.model_
    records = []

    def timed(name, fn):
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            rows = fn()
            times.append(time.perf_counter() - t0)
        records.append({"method": name, "candidates": int(C.shape[0]), "q": Q,
                        "median_s": statistics.median(times), "times_s": times,
                        "rows": [int(r) for r in rows]})  # fmt: skip
        print(records[-1]["method"], f"{records[-1]['median_s']:.2f} s", flush=True)

    timed("mfgp ucb", lambda: select_batch(model, C, UpperConfidenceBound(), q=Q).rows)
    timed("mfgp window 1.1-1.7", lambda: select_batch(model, C, WindowHits(), q=Q).rows)
    timed("mfgp learn (256 reference rows)",
          lambda: select_batch(model, C, LearnMap(), q=Q, R=R).rows)

    def botorch_logei():
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.optim import optimize_acqf_discrete

        acqf = qLogNoisyExpectedImprovement(model, baseline, prune_baseline=False)
        with torch.no_grad():
            X, _ = optimize_acqf_discrete(acqf, Q, C, max_batch_size=512, unique=True)
        return [int(np.flatnonzero((C == x).all(-1))[0]) for x in X]

    timed("botorch optimize_acqf_discrete qLogNEI", botorch_logei)
    base = next(r for r in records if r["method"].startswith("botorch"))["median_s"]
    for r in records:
        r["ratio_vs_botorch"] = r["median_s"] / base
    write_results("bench_pool_scoring", records,
                  ["method", "candidates", "q", "median_s", "ratio_vs_botorch"])  # fmt: skip


if __name__ == "__main__":
    main()
