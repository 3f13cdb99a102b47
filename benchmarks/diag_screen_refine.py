"""How many fast-scored rows must be rescored exactly to recover the exact top 1,000 (dev pool).

A fast screen (:mod:`mfgp.fastvar`) ranks candidates with low-rank variances, which are never
below the exact ones but can be far above them, so its top 1,000 differs from the exact one
(``bench_screen``: overlap 0.857 at rank 512). :func:`mfgp.screen` therefore keeps the best
``refine x top_k`` rows by the fast score and rescores them with exact variances before it
picks the ``top_k``. This script chooses ``refine`` on a *development* pool: the candidates of
``bench_screen``'s enumeration *after* the ones its table reports (``SKIP`` rows skipped, the
next ``N``), never the table's own rows. Both screens score every row (``output=``), so the
overlap of the exact top 1,000 with the exact rescoring of the fast top ``K`` is computed for
every ``K`` from one pair of runs, for each rank of the cache (``RANKS``). The model is the
ready-made ``mfgp.pretrained("expt_gap")`` and the score ``bench_screen``'s window score.

Writes results/diag_screen_refine.{json,md}. Run: ``python diag_screen_refine.py``
(``N=100000``, ``SKIP=1000000``, ``RANKS=512,256``; about 7 minutes on 2 cores, alone).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import write_results

N = int(os.environ.get("N", 100_000))
#: ranks of the fast variances' cache (each a fast screen; one exact screen for all)
RANKS = [int(r) for r in os.environ.get("RANKS", "512,256").split(",")]
SKIP = int(os.environ.get("SKIP", 1_000_000))
TOP_K = 1000
FACTORS = [1, 1.5, 2, 3, 4, 5, 8]


def candidates():
    """Rows ``SKIP .. SKIP + N`` of bench_screen's enumeration, as chunks."""
    from bench_screen import elements

    from mfgp.candidates import enumerate_compositions

    rows = itertools.chain.from_iterable(
        enumerate_compositions(elements(), n_elements=(2, 3, 4), max_atoms_per_formula=10,
                               charge_balanced=True))  # fmt: skip
    rows = itertools.islice(rows, SKIP, SKIP + N)
    while chunk := list(itertools.islice(rows, 8192)):
        yield chunk


def main() -> None:
    import mfgp
    from bench_screen import WINDOW

    from mfgp.fastvar import fast_variances
    from mfgp.screen import screen

    model = mfgp.pretrained("expt_gap")
    scored, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in [*(f"fast {r}" for r in RANKS), "exact"]:
            path = Path(tmp) / f"{mode.replace(' ', '_')}.parquet"
            rank = int(mode.split()[1]) if mode != "exact" else 1
            t0 = time.perf_counter()
            with fast_variances(rank=rank):
                screen(model, candidates(), score="window", window=WINDOW, top_k=10,
                       progress=False, variances=mode.split()[0], refine=None,
                       output=path)  # fmt: skip
            seconds[mode] = time.perf_counter() - t0
            scored[mode] = pd.read_parquet(path).drop_duplicates("formula").set_index("formula")
            print(f"{mode}: {len(scored[mode])} rows in {seconds[mode]:.0f} s", flush=True)
    records = []
    for rank in RANKS:
        fast = scored[f"fast {rank}"]
        exact = scored["exact"].loc[fast.index]
        truth = set(exact.sort_values("score", ascending=False).head(TOP_K).index)
        order = fast.sort_values("score", ascending=False).index
        ratio = (fast["std"] / exact["std"]).to_numpy()
        deepest = max(int(np.flatnonzero(order == f)[0]) for f in truth) + 1
        for factor in FACTORS:
            kept = order[: int(factor * TOP_K)]
            top = set(exact.loc[kept].sort_values("score", ascending=False).head(TOP_K).index)
            records.append({"rank": rank, "refine": factor, "rescored": len(kept),
                            "top_overlap": len(top & truth) / TOP_K, "candidates": len(fast),
                            "skip": SKIP, "exact_top_deepest_fast_rank": deepest,
                            "std_ratio_q50": float(np.quantile(ratio, 0.5)),
                            "std_ratio_q99": float(np.quantile(ratio, 0.99)),
                            "fast_seconds": seconds[f"fast {rank}"],
                            "exact_seconds": seconds["exact"]})  # fmt: skip
    print(pd.DataFrame(records)[["rank", "refine", "rescored", "top_overlap"]].to_string(
        index=False))  # fmt: skip
    write_results("diag_screen_refine", records,
                  ["rank", "refine", "rescored", "top_overlap", "exact_top_deepest_fast_rank",
                   "std_ratio_q50", "std_ratio_q99", "fast_seconds", "exact_seconds"])  # fmt: skip


if __name__ == "__main__":
    main()
