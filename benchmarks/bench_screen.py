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
  beforehand (not timed), batches of 65,536; for the hurdle, its predictive on those tensors
  (the classifier's ``P(metal)`` and the regression's marginals) and the window probability,
  without a composition's own PBE value (tensors carry no composition) and without
  ``refine``, with large freed blocks reused as in a screen (:mod:`mfgp._alloc`);
* ``LocalCluster``: the end-to-end call with ``client=`` a 2-worker ``LocalCluster`` on the
  same 2 cores (the client's peak RSS, and the largest worker's).

An exact marginal variance costs ``n^2`` flops per candidate against ``n`` training rows (the
triangular solve), so the rates scale as ``1 / n^2`` with the model's size: a model of every
experimental gap (about 10,000 rows with the PBE rows kept) is about 30x slower per candidate.

Models and variances (issue 35): each cell is a model, a size, a mode and a ``variances``
choice of :func:`mfgp.screen` (``exact`` or ``fast``, :mod:`mfgp.fastvar`, rank ``RANK``):

* ``campaign AR1``: the model above;
* ``hurdle all gaps``: :class:`~mfgp.HurdleRegressor` with its defaults fitted on every shipped
  band-gap row (PBE and experiment; its regression and its classifier's latent GP are the
  GPs whose variances fast mode replaces): the ready-made ``mfgp.pretrained("expt_gap")``,
  loaded, not refitted (the model a user screens with).

Records carry ``model``, ``training_rows`` (the largest GP's), ``variances``, ``peak_rss_mb``
and, for the end-to-end cells of ``OVERLAP_N`` candidates, ``top_overlap``: the fraction of the
fast run's top 1,000 (window score) that is also in the exact run's.

Run alone: ``make bench-screen`` (``SIZES=10000,100000`` for a shorter run; ``MODELS=campaign``
or ``hurdle``; ``VARIANCES=exact`` or ``fast``). No GPU rows are measured here: they are filled
only by a run on a GPU machine (``DEVICE=cuda``). ``python bench_screen.py --quick`` checks the
script end to end in a minute (a small AR1, 2,000 candidates, rank 64; nothing written).
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
MODEL_ORDER = ["campaign AR1", "hurdle all gaps"]
MODELS = [m for m in MODEL_ORDER
          if m.split()[0] in os.environ.get("MODELS", "campaign,hurdle").split(",")]
VARIANCES = os.environ.get("VARIANCES", "exact,fast").split(",")
#: rank of the fast variances' cache
RANK = int(os.environ.get("RANK", "512"))
#: the size whose end-to-end top 1,000 is compared between fast and exact
OVERLAP_N = 100_000
#: ``refine=`` of the fast screens (``REFINE=none``: the fast scores decide; default: screen's)
REFINE = os.environ.get("REFINE")
QUICK = "--quick" in sys.argv


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


def fit(path: Path, model: str = "campaign AR1", quick: bool = False) -> tuple[float, int]:
    """Fit (or, for the hurdle, load) and save one model; the seconds and its largest GP's rows.

    ``campaign AR1``: 500 experimental compositions, at most 1,000 other PBE rows (``quick``:
    100 and 200, a short fit). ``hurdle all gaps``: the ready-made ``expt_gap`` model (every
    shipped band-gap row), loaded and saved again.
    """
    from mfgp.datasets import load_bandgap_ladder
    from mfgp.estimators import MultiFidelityRegressor
    from mfgp.fastvar import estimator_training_rows

    t0 = time.perf_counter()
    if model == "hurdle all gaps":  # the ready-made model: HurdleRegressor() on every row
        import mfgp

        est = mfgp.pretrained("expt_gap")
    else:
        df = load_bandgap_ladder(["pbe", "expt"])
        n_expt, cap = (100, 200) if quick else (500, 1000)
        expt = df[df.fidelity == "expt"].composition.drop_duplicates().sample(n=n_expt,
                                                                               random_state=0)
        train = df[(df.fidelity == "pbe") | df.composition.isin(set(expt))]
        opts = dict(max_fit_points=300, max_iter=10) if quick else {}
        est = MultiFidelityRegressor("ar1", max_rows_per_fidelity=cap, progress=False,
                                     **opts).fit(train)  # fmt: skip
    est.save(path)
    return time.perf_counter() - t0, estimator_training_rows(est)


def refine_kw() -> dict:
    """``refine=`` for :func:`mfgp.screen` from ``REFINE`` (empty: the function's default)."""
    if REFINE is None:
        return {}
    return {"refine": None if REFINE.lower() in ("none", "0") else float(REFINE)}


def refine_used(variances: str, mode: str) -> float | None:
    """The ``refine`` a cell ran with (``None``: exact variances, features precomputed (no
    ranking), or the fast scores decide)."""
    from mfgp.screen import DEFAULT_REFINE

    if variances != "fast" or mode == "features precomputed":
        return None
    return refine_kw().get("refine", DEFAULT_REFINE)


def child(mode: str, n: int, model_path: str, variances: str = "exact") -> dict:
    from mfgp.estimators import load_estimator
    from mfgp.fastvar import fast_variances

    reg = load_estimator(model_path, device=DEVICE)
    out: dict = {"mode": mode, "n": n, "device": DEVICE, "variances": variances,
                 "rss_after_load_mb": peak_rss_mb()}
    with fast_variances(variances == "fast", rank=RANK):
        out.update(_measure(reg, mode, n, variances))
    out["per_second"] = n / out["seconds"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _measure(reg, mode: str, n: int, variances: str) -> dict:
    import torch

    from mfgp.screen import screen

    out: dict = {}
    if mode == "features precomputed":
        from mfgp.acquisition.pool import marginal_moments
        from mfgp.fastvar import estimator_training_rows, resolve_variances, variances_mode

        formulas = [f for c in candidates(n) for f in c]
        surrogate = reg.surrogate()
        X = surrogate.inputs(formulas, surrogate.target)
        del formulas
        gaussian = surrogate.gaussian
        # the hurdle: its predictive on the tensors (the classifier's P(metal) and the
        # regression's marginals), decided once for the pool as a screen does
        mode_ = resolve_variances(variances, estimator_training_rows(reg), X.shape[0], None)
        from mfgp._alloc import reuse_large_blocks

        t0 = time.perf_counter()
        for lo in range(0, X.shape[0], 65536):
            with torch.no_grad(), reuse_large_blocks():  # as a screen scores its batches
                if gaussian:
                    marginal_moments(reg.model_, X[lo: lo + 65536], variances=variances)
                else:
                    with variances_mode(mode_):
                        reg.predictive(X[lo: lo + 65536]).probability_between(*WINDOW)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    elif mode == "end to end":
        t0 = time.perf_counter()
        best = screen(reg, candidates(n), score="window", window=WINDOW, top_k=1000,
                      progress=False, variances=variances, **refine_kw())  # fmt: skip
        seconds = time.perf_counter() - t0
        out["top_score"] = float(best.score.iloc[0])
        out["top"] = best.formula.tolist()
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=40) as cluster, \
                Client(cluster) as client:  # fmt: skip
            client.run(lambda: None)  # workers up before the clock starts
            t0 = time.perf_counter()
            best = screen(reg, candidates(n), score="window", window=WINDOW, top_k=1000,
                          progress=False, client=client, variances=variances,
                          **refine_kw())  # fmt: skip
            seconds = time.perf_counter() - t0
            workers = client.run(peak_rss_mb)
        out["top_score"] = float(best.score.iloc[0])
        out["worker_peak_rss_mb"] = max(workers.values())
    out["seconds"] = seconds
    return out


def _run(mode: str, n: int, path: Path, variances: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(n), str(path),
                           variances], capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        print(proc.stderr[-2000:], flush=True)
        return {"mode": mode, "n": n, "device": DEVICE, "variances": variances,
                "error": proc.stderr[-300:]}  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _overlap(records: list[dict]) -> None:
    """``top_overlap`` of each fast end-to-end cell against the exact one (same model, size)."""
    exact = {(r["model"], r["n"]): set(r["top"]) for r in records
             if r.get("variances") == "exact" and r["mode"] == "end to end" and "top" in r}
    for r in records:
        if r["mode"] == "end to end" and "top" in r and (r["model"], r["n"]) in exact:
            ref = exact[(r["model"], r["n"])]
            r["top_overlap"] = len(ref & set(r["top"])) / max(len(ref), 1)
    for r in records:
        if r["n"] != OVERLAP_N or QUICK:
            r.pop("top", None)


def main() -> None:
    import pandas as pd
    from _common import COMMIT, RESULTS, write_results

    records = []
    if QUICK:  # the children read the rank from the environment
        os.environ["RANK"] = "64"
    sizes, modes, models = (([2000], ["end to end", "features precomputed"], MODEL_ORDER[:1])
                            if QUICK else (SIZES, MODES, MODELS))  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        for model in models:
            path = Path(d) / f"{model.split()[0]}.mfgp"
            fit_s, n_train = fit(path, model, quick=QUICK)
            print(f"{model} ({n_train} training rows) fitted and saved in {fit_s:.0f} s",
                  flush=True)  # fmt: skip
            for n in sizes:
                for mode in modes:
                    for variances in VARIANCES:
                        rec = _run(mode, n, path, variances)
                        rank = int(os.environ.get("RANK", RANK))
                        rec.update(commit=COMMIT, model=model, training_rows=n_train,
                                   rank=rank if variances == "fast" else None,
                                   refine=refine_used(variances, mode))  # fmt: skip
                        records.append(rec)
                        print({k: v for k, v in rec.items() if k != "top"}, flush=True)
    _overlap(records)
    if QUICK:
        for r in records:
            print({k: r.get(k) for k in ("model", "mode", "n", "variances", "seconds",
                                         "peak_rss_mb", "top_overlap", "error")})  # fmt: skip
        if any("error" in r for r in records):
            sys.exit(1)
        return
    for r in records:
        r.pop("top", None)
    # a run of some cells replaces those cells of the committed results, keeps the rest
    name = "bench_screen" if DEVICE == "cpu" else f"bench_screen_{DEVICE}"
    name += "_memory" if MEMORY else ""
    path = RESULTS / f"{name}.json"

    def cell(r):
        return (r.get("model", MODEL_ORDER[0]), r["mode"], r["n"], r.get("variances", "exact"))

    if path.exists():
        ran = {cell(r) for r in records}
        kept = [r for r in json.loads(path.read_text())["records"] if cell(r) not in ran]
        for r in kept:  # records from before issue 35: the campaign AR1, exact variances
            r.setdefault("model", MODEL_ORDER[0])
            r.setdefault("variances", "exact")
        records = sorted(kept + records, key=lambda r: (
            MODEL_ORDER.index(r["model"]), r["n"], MODE_ORDER.index(r["mode"]),
            r["variances"]))  # fmt: skip
    df = pd.DataFrame(records)
    keep = ["model", "training_rows", "variances", "refine", "mode", "n", "device",
            "rss_after_load_mb",
            "peak_rss_mb", "worker_peak_rss_mb", "top_overlap"]
    if not MEMORY:
        keep[6:6] = ["seconds", "per_second"]
    cols = [c for c in keep if c in df.columns]
    write_results(name, records, table=df[cols])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                               sys.argv[5] if len(sys.argv) > 5 else "exact")))
    else:
        main()
