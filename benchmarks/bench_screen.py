"""Screening throughput and peak memory: 10^4, 10^5, 10^6 charge-balanced candidates.

The model is an AR1 of the shipped band-gap ladder the size of a campaign's (500 experimental
compositions and at most 1,000 other PBE rows, about 1,850 training rows), fitted once and
saved; every measurement runs in a fresh process that loads it. Its peak memory is the
process's own high-water mark (``VmHWM`` of ``/proc/self/status``), not ``ru_maxrss``: Linux
carries the parent's peak into a child's ``ru_maxrss`` across ``fork`` and ``exec``, so every
child reported the parent's 1.96 GB in the results of ``1b06736``. Candidates: the charge-balanced
binaries, ternaries and quaternaries of 60 elements with at most 10 atoms per formula, in
enumeration order, the first ``N``. Modes:

* ``end to end``: :func:`mfgp.screen` on the generator (parse, featurize, predict the
  marginals with each composition's own known PBE value, score ``window`` = P(1.1 <= gap <= 1.7),
  top 1,000), one process;
* ``features precomputed``: the model's marginal mean and variance on feature tensors computed
  beforehand (not timed), batches of 65,536;
* ``LocalCluster``: the end-to-end call with ``client=`` a 2-worker ``LocalCluster`` on the
  same 2 cores (the client's peak RSS, and the largest worker's).

An exact marginal variance costs ``n^2`` flops per candidate against ``n`` training rows (the
triangular solve), so the rates scale as ``1 / n^2`` with the model's size: a model of every
experimental gap (about 10,000 rows with the PBE rows kept) is about 30x slower per candidate.

Run alone: ``make bench-screen`` (``SIZES=10000,100000`` for a shorter run). No GPU rows are
measured here: they are filled only by a run on a GPU machine (``DEVICE=cuda``).
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [int(s) for s in os.environ.get("SIZES", "10000,100000,1000000").split(",")]
DEVICE = os.environ.get("DEVICE", "cpu")
MODE_ORDER = ["end to end", "features precomputed", "LocalCluster"]
MODES = os.environ.get("MODES", ",".join(MODE_ORDER)).split(",")
WINDOW = (1.1, 1.7)
#: ``MEMORY=1``: a run for the memory columns only (its rates ran beside other work), written
#: to ``results/bench_screen_memory.{json,md}``
MEMORY = os.environ.get("MEMORY") == "1"


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux ``VmHWM``; ``ru_maxrss`` elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def elements() -> list[str]:
    from pymatgen.core import Element

    skip = {"He", "Ne", "Ar", "Kr", "Xe", "Tc", "Pm"}
    return [e.symbol for e in Element if e.Z <= 83 and e.symbol not in skip][:60]


def candidates(n: int):
    """The first ``n`` candidates, as chunks."""
    from mfgp.candidates import enumerate_compositions

    left = n
    for chunk in enumerate_compositions(elements(), n_elements=(2, 3, 4),
                                        max_atoms_per_formula=10, charge_balanced=True):  # fmt: skip
        chunk = list(itertools.islice(chunk, left))
        left -= len(chunk)
        yield chunk
        if left <= 0:
            return


def fit(path: Path) -> tuple[float, int]:
    """A campaign-sized AR1 (500 experimental compositions, at most 1,000 other PBE rows)."""
    from mfgp.datasets import load_bandgap_ladder
    from mfgp.estimators import MultiFidelityRegressor

    t0 = time.perf_counter()
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].composition.drop_duplicates().sample(n=500, random_state=0)
    train = df[(df.fidelity == "pbe") | df.composition.isin(set(expt))]
    reg = MultiFidelityRegressor("ar1", max_rows_per_fidelity=1000, progress=False).fit(train)
    reg.save(path)
    return time.perf_counter() - t0, len(reg.train_rows_)


def child(mode: str, n: int, model_path: str) -> dict:
    import torch

    from mfgp.estimators import load_estimator
    from mfgp.screen import screen

    reg = load_estimator(model_path, device=DEVICE)
    out: dict = {"mode": mode, "n": n, "device": DEVICE,
                 "rss_after_load_mb": peak_rss_mb()}
    if mode == "features precomputed":
        from mfgp.acquisition.pool import marginal_moments

        formulas = [f for c in candidates(n) for f in c]
        X = reg.dataset_.inputs_for(formulas)
        del formulas
        t0 = time.perf_counter()
        for lo in range(0, X.shape[0], 65536):
            with torch.no_grad():
                marginal_moments(reg.model_, X[lo: lo + 65536])
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    elif mode == "end to end":
        t0 = time.perf_counter()
        best = screen(reg, candidates(n), score="window", window=WINDOW, top_k=1000,
                      progress=False)  # fmt: skip
        seconds = time.perf_counter() - t0
        out["top_score"] = float(best.score.iloc[0])
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=40) as cluster, \
                Client(cluster) as client:  # fmt: skip
            client.run(lambda: None)  # workers up before the clock starts
            t0 = time.perf_counter()
            best = screen(reg, candidates(n), score="window", window=WINDOW, top_k=1000,
                          progress=False, client=client)  # fmt: skip
            seconds = time.perf_counter() - t0
            workers = client.run(peak_rss_mb)
        out["top_score"] = float(best.score.iloc[0])
        out["worker_peak_rss_mb"] = max(workers.values())
    out["seconds"] = seconds
    out["per_second"] = n / seconds
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    import pandas as pd
    from _common import COMMIT, RESULTS, write_results

    records = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "gaps.mfgp"
        fit_s, n_train = fit(path)
        print(f"model ({n_train} training rows) fitted and saved in {fit_s:.0f} s", flush=True)
        for n in SIZES:
            for mode in MODES:
                proc = subprocess.run([sys.executable, __file__, "--child", mode, str(n), str(path)],
                                      capture_output=True, text=True)  # fmt: skip
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], flush=True)
                    rec = {"mode": mode, "n": n, "device": DEVICE, "error": proc.stderr[-300:]}
                else:
                    rec = json.loads(proc.stdout.strip().splitlines()[-1])
                rec["commit"] = COMMIT
                rec["training_rows"] = n_train
                records.append(rec)
                print(rec, flush=True)
    # a run of some sizes or modes replaces those cells of the committed results, keeps the rest
    name = "bench_screen" if DEVICE == "cpu" else f"bench_screen_{DEVICE}"
    name += "_memory" if MEMORY else ""
    path = RESULTS / f"{name}.json"
    if path.exists():
        ran = {(r["mode"], r["n"]) for r in records}
        kept = [r for r in json.loads(path.read_text())["records"] if (r["mode"], r["n"]) not in ran]
        records = sorted(kept + records, key=lambda r: (r["n"], MODE_ORDER.index(r["mode"])))
    df = pd.DataFrame(records)
    keep = ["mode", "n", "device", "rss_after_load_mb", "peak_rss_mb", "worker_peak_rss_mb"]
    if not MEMORY:
        keep[3:3] = ["seconds", "per_second"]
    cols = [c for c in keep if c in df.columns]
    write_results(name, records, table=df[cols])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    else:
        main()
