"""Where fast variances start to pay in a one-off screen (issue #35): the size rule of ``"auto"``.

A screen with fast variances first builds the low-rank caches of the model's GPs
(:mod:`mfgp.fastvar`: five ``n x n x rank`` products and the error check), then scores each
candidate at ``n * rank`` flops instead of an exact ``n^2`` solve, and rescores its best
``refine x top_k`` rows exactly. Building the cache costs the same whatever the pool, so below
some pool size an exact screen is faster: ``bench_screen`` measured 13.5 s fast against 10.8 s
exact at 10^4 candidates with the full-data hurdle. Both terms scale as ``n^2`` (cache:
``n^2 rank``; exact query: ``n^2``), so the crossover is a multiple of the rank, not of the
model's size.

This times :func:`mfgp.screen` end to end (window score, ``top_k`` 1,000, the default
``refine``), exact against fast, on candidate pools of 5,000 to 40,000 compositions. The pools
are *not* ``bench_screen``'s: the same enumeration over its element list rotated by 30 places. The model
is the ready-made ``mfgp.pretrained("expt_gap")`` (every shipped gap), loaded fresh in its own
process for every cell, as a user's screen would start; the two variances alternate, ``REPEATS``
times (default 2), and the medians are reported. Run alone on the machine.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

import pandas as pd
from _common import COMMIT, RESULTS, write_results
from bench_screen import WINDOW, elements

SIZES = [int(s) for s in os.environ.get("SIZES", "5000,10000,20000,40000").split(",")]
REPEATS = int(os.environ.get("REPEATS", 2))


def candidates(n: int) -> list[str]:
    """The first ``n`` charge-balanced candidates over ``bench_screen``'s elements, rotated."""
    from mfgp.candidates import enumerate_compositions

    els = elements()
    flat = itertools.chain.from_iterable(enumerate_compositions(
        els[30:] + els[:30], n_elements=(2, 3, 4), max_atoms_per_formula=10,
        charge_balanced=True))  # fmt: skip
    return list(itertools.islice(flat, n))


def child(n: int, variances: str) -> dict:
    import mfgp
    from mfgp.screen import screen

    pool = candidates(n)
    est = mfgp.pretrained("expt_gap")
    t0 = time.perf_counter()
    best = screen(est, pool, score="window", window=WINDOW, top_k=1000, progress=False,
                  variances=variances)  # fmt: skip
    return {"n": n, "variances": variances, "seconds": time.perf_counter() - t0,
            "top": best.formula.tolist()}  # fmt: skip


def report(records: list[dict]) -> None:
    """The medians per size and variances, the ratio and the top-1,000 overlap; written."""
    df = pd.DataFrame(records)
    table = df.groupby(["n", "variances"]).seconds.median().unstack()
    table = table.assign(fast_over_exact=table.fast / table.exact,
                         top_overlap=df.groupby("n").top_overlap.first()).reset_index()  # fmt: skip
    table["n"] = table.n.astype(int)
    print(table.to_string(), flush=True)
    write_results("diag_screen_crossover", records, table=table)


def overlaps(records: list[dict]) -> list[dict]:
    """Each record with ``top_overlap`` (the share of the fast screen's top 1,000 in the exact
    one's, first repeat of its size) and without its top list."""
    tops = {(r["n"], r["variances"]): set(r["top"]) for r in records if r["repeat"] == 0}
    return [{**{k: v for k, v in r.items() if k != "top"},
             "top_overlap": len(tops[r["n"], "fast"] & tops[r["n"], "exact"]) / 1000}
            for r in records]  # fmt: skip


def main() -> None:
    if "--report-only" in sys.argv:  # rewrite the table from the committed records
        report(json.loads((RESULTS / "diag_screen_crossover.json").read_text())["records"])
        return
    records = []
    for n in SIZES:
        for rep in range(REPEATS):
            for variances in ("exact", "fast") if rep % 2 == 0 else ("fast", "exact"):
                proc = subprocess.run([sys.executable, __file__, "--child", str(n), variances],
                                      capture_output=True, text=True, check=True)  # fmt: skip
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                records.append({**r, "repeat": rep, "commit": COMMIT})
                print(n, variances, rep, f"{r['seconds']:.1f} s", flush=True)
    report(overlaps(records))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3])))
    else:
        main()
