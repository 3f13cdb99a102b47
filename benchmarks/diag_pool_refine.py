"""How many fast-scored rows of each fidelity pool selection must rescore exactly (dev pool).

With fast variances (:mod:`mfgp.fastvar`) :func:`mfgp.acquisition.select_batch` scores the
first round over the whole pool with low-rank variances, keeps the best ``refine`` rows of
each fidelity and chooses the batch among them with exact variances. This script chooses the
default ``refine`` (:data:`mfgp.acquisition.select.DEFAULT_POOL_REFINE`) on a *development*
split: ``bench_pool_scoring``'s large model and pool, but drawn with another seed (``SEED=1``:
another random half of the experimental compositions in the fit, another pool of 5,000), never
the split its table reports (seed 0). For each objective and ``refine`` it records whether the
batch is the exact selection's (``variances="exact"``) and how many of its rows are, with the
time of each call, for each rank of the cache that ranks the first round (``RANKS``: the
leading columns of the rank-512 cache; the default :data:`~mfgp.acquisition.select.
DEFAULT_POOL_RANK` is chosen here too). Two settings: the pool at the experimental fidelity
(``ucb``, ``window``, ``std``, ``greedy``, ``learn``, ``kg``) and, for the information objectives, the first 2,500
pool compositions at both fidelities (PBE cost 1, experiment 5), where the best rows of each
fidelity are kept.

Writes results/diag_pool_refine.{json,md}. Run: ``python diag_pool_refine.py`` (about 5 minutes
on 2 cores, alone).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import torch
from _common import write_results
from bench_pool_scoring import N_POOL, setting

SEED = int(os.environ.get("SEED", 1))
REFINES = [16, 32, 64, 128, 256, 512]
#: ranks of the low-rank cache that ranks the first round (the leading columns of the rank-512
#: cache: ``mfgp.fastvar.truncated``)
RANKS = [int(r) for r in os.environ.get("RANKS", "512,256,128").split(",")]
Q = 4


def main() -> None:
    from mfgp.acquisition import (
        GreedyMean,
        KnowledgeGradient,
        LearnMap,
        UpperConfidenceBound,
        Uncertainty,
        WindowHits,
        select_batch,
    )
    from mfgp.fastvar import estimated_error, fast_variances

    from mfgp.datasets import load_bandgap_ladder

    t0 = time.perf_counter()
    reg, formulas = setting(load_bandgap_ladder(["pbe", "expt"]), None, 3000, seed=SEED)
    print(f"fitted in {time.perf_counter() - t0:.0f} s", flush=True)
    model = reg.model_
    C = reg.dataset_.inputs_for(formulas)
    g = torch.Generator().manual_seed(SEED)
    R = C[torch.randperm(C.shape[0], generator=g)[:256]]
    half = formulas[: N_POOL // 2]
    C_mf = torch.cat([reg.dataset_.inputs_for(half, "pbe"), reg.dataset_.inputs_for(half)])
    mf = {"R": R, "cost": torch.cat([torch.ones(len(half)), torch.full((len(half),), 5.0)]),
          "is_target": torch.cat([torch.zeros(len(half)), torch.ones(len(half))]).bool(),
          "groups": np.tile(np.arange(len(half)), 2)}  # fmt: skip
    model.posterior(C[:2])
    t0 = time.perf_counter()
    error = estimated_error(model)
    cache_s = time.perf_counter() - t0
    print(f"training rows {len(reg.train_rows_)}, cache {cache_s:.1f} s, estimated error "
          f"{error:.3g}", flush=True)  # fmt: skip
    cases = [
        ("ucb", UpperConfidenceBound(), C, {}),
        ("window 1.1-1.7", WindowHits(), C, {}),
        ("std", Uncertainty(), C, {}),
        ("greedy", GreedyMean(), C, {}),
        ("learn", LearnMap(), C, {"R": R}),
        ("kg", KnowledgeGradient(), C, {"R": R}),
        ("learn, PBE + experiment", LearnMap(), C_mf, mf),
        ("kg, PBE + experiment", KnowledgeGradient(), C_mf, mf),
    ]
    records = []
    for name, objective, pool, kw in cases:
        t0 = time.perf_counter()
        exact = select_batch(model, pool, objective, q=Q, variances="exact", **kw)
        exact_s = time.perf_counter() - t0
        print(f"{name}: exact {exact.rows} in {exact_s:.2f} s", flush=True)
        for rank, refine in [(r, f) for r in RANKS for f in [None, *REFINES]]:
            t0 = time.perf_counter()
            with fast_variances(rank=rank):
                sel = select_batch(model, pool, objective, q=Q, variances="fast",
                                   refine=refine, **kw)  # fmt: skip
            seconds = time.perf_counter() - t0
            same = sel.rows == exact.rows
            records.append({
                "objective": name, "rank": rank, "candidates": int(pool.shape[0]),
                "refine": "none (fast decides)" if refine is None else refine,
                "same_batch": bool(same),
                "rows_in_exact_batch": len(set(sel.rows) & set(exact.rows)),
                "seconds": seconds, "exact_seconds": exact_s,
                "rows": sel.rows, "exact_rows": exact.rows,
                "training_rows": len(reg.train_rows_), "estimated_error": error,
                "cache_seconds": cache_s, "seed": SEED,
            })  # fmt: skip
            print(f"  rank {rank} refine {refine}: {sel.rows} same={same} {seconds:.2f} s",
                  flush=True)  # fmt: skip
    df = pd.DataFrame(records)
    table = df.pivot_table(index=["objective", "rank"], columns="refine",
                           values="rows_in_exact_batch", aggfunc="first",
                           sort=False)  # fmt: skip
    table.columns = [f"refine {c}" for c in table.columns]
    table = table.reset_index()
    write_results("diag_pool_refine", records, table=table)


if __name__ == "__main__":
    main()
