"""Where fast variances start to pay in a one-off screen (issue #35): the size rule of ``"auto"``.

A screen with fast variances first builds the low-rank caches of the model's GPs
(:mod:`mfgp.fastvar`: five ``n x n x rank`` products and the error check), then scores each
candidate at ``n * rank`` flops instead of an exact ``n^2`` solve, and rescores its best
``refine x top_k`` rows exactly. Building the cache costs the same whatever the pool, so below
some pool size an exact screen is faster: ``bench_screen`` measured 13.5 s fast against 10.8 s
exact at 10^4 candidates with the full-data hurdle. The cache costs about ``n^2 rank``
flops and an exact query row ``n^2``, so the crossover should depend on the rank (and on
``refine x top_k``) more than on the model's size; only one model is measured here.

This times :func:`mfgp.screen` end to end (window score, ``top_k`` 1,000, the default
``refine``), exact against fast, on candidate pools of 5,000 to 40,000 compositions. The pools
are *not* ``bench_screen``'s: they are the enumeration's candidates after its first 10^6 (the
enumeration orders the elements itself, so the first ``n`` of any element order are
``bench_screen``'s). They are enumerated once, before any timing, and each cell reads its
first ``n``. The model is the ready-made ``mfgp.pretrained("expt_gap")`` (every shipped gap,
5,932 rows in its largest GP), loaded fresh in its own process for every cell, as a user's
screen would start; the two variances alternate, ``REPEATS`` times (default 2), and the medians
are reported. One model, one rank (512) and one ``top_k``: a fast screen also rescores
``refine x top_k`` rows exactly, a cost that grows with ``top_k``. Run alone on the machine.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import COMMIT, write_results
import bench_screen

SIZES = [int(s) for s in os.environ.get("SIZES", "5000,10000,20000,40000").split(",")]
REPEATS = int(os.environ.get("REPEATS", 2))
OFFSET = 10**6  # past bench_screen's candidates


def candidates(n: int) -> list[str]:
    """``n`` of ``bench_screen``'s enumeration, after its first 10^6."""
    flat = itertools.chain.from_iterable(bench_screen.candidates(OFFSET + n))
    return list(itertools.islice(flat, OFFSET, None))


def child(n: int, variances: str, pool_file: str) -> dict:
    import mfgp
    from mfgp.screen import screen

    pool = json.loads(Path(pool_file).read_text())[:n]
    est = mfgp.pretrained("expt_gap")
    t0 = time.perf_counter()
    best = screen(est, pool, score="window", window=bench_screen.WINDOW, top_k=1000,
                  progress=False, variances=variances)  # fmt: skip
    return {"n": n, "variances": variances, "seconds": time.perf_counter() - t0,
            "top": best.formula.tolist()}  # fmt: skip


def report(records: list[dict]) -> None:
    """The medians per size and variances, the ratio and the top-1,000 overlap; written."""
    df = pd.DataFrame(records)
    table = df.groupby(["n", "variances"]).seconds.median().unstack()
    table = table.assign(fast_over_exact=table.fast / table.exact,
                         top_overlap=df.groupby("n").top_overlap.first()).reset_index()  # fmt: skip
    print(table.to_string(), flush=True)
    table["n"] = table.n.map("{:,}".format)
    write_results("diag_screen_crossover", records, table=table)


def overlaps(records: list[dict]) -> list[dict]:
    """Each record with ``top_overlap`` (the share of the fast screen's top 1,000 in the exact
    one's, first repeat of its size) and without its top list."""
    tops = {(r["n"], r["variances"]): set(r["top"]) for r in records if r["repeat"] == 0}
    return [{**{k: v for k, v in r.items() if k != "top"},
             "top_overlap": len(tops[r["n"], "fast"] & tops[r["n"], "exact"]) / 1000}
            for r in records]  # fmt: skip


def main() -> None:
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        pool_file = Path(tmp) / "pool.json"
        pool_file.write_text(json.dumps(candidates(max(SIZES))))
        for n in SIZES:
            for rep in range(REPEATS):
                for variances in ("exact", "fast") if rep % 2 == 0 else ("fast", "exact"):
                    proc = subprocess.run([sys.executable, __file__, "--child", str(n),
                                           variances, str(pool_file)],
                                          capture_output=True, text=True, check=True)  # fmt: skip
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    records.append({**r, "repeat": rep, "commit": COMMIT})
                    print(n, variances, rep, f"{r['seconds']:.1f} s", flush=True)
    report(overlaps(records))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3], sys.argv[4])))
    else:
        main()
