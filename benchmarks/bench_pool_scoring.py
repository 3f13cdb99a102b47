"""Scoring a 5,000-candidate pool with q = 4: mfgp's pool selection against BoTorch's
``optimize_acqf_discrete`` with qLogNEI, on the same fitted model, in one run.

Two models, both the AR1 GP of the shipped band gaps, the pool 5,000 compositions without an
experimental gap in the fit, at the experimental fidelity:

* ``campaign``: the size of a campaign's model, 500 experimental compositions and at most
  1,000 other PBE rows (about 1,850 training rows);
* ``large``: every experimental gap of a random half of the compositions and at most 3,000
  other PBE rows (about 6,900 training rows).

Exact posterior variances of ``N`` candidates cost ``n^2 N`` flops against ``n`` training rows
(the triangular solve). mfgp's default (``variances="auto"``) therefore scores a large model's
pool with fast (low-rank) variances, keeps the best 256 rows of each fidelity
(:data:`~mfgp.acquisition.select.DEFAULT_POOL_REFINE`) and chooses the batch among them with
exact variances; the large model also runs with ``variances="exact"``, and every record says
whether its batch is the exact one. The low-rank cache is built once per fitted model, like
the Cholesky factor, outside the timings; its time is recorded (``cache_s``). Each method runs
``REPEATS`` times; medians are reported.

Run: ``make bench-pool-scoring`` (about 15 minutes on 2 cores).
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


def setting(df, n_expt: int | None, max_rows: int, seed: int = 0):
    """A fitted AR1 and the formulas of its pool (``seed``: the draw of compositions; the
    table reports seed 0, ``diag_pool_refine`` chooses its default on another)."""
    comps = df.composition.drop_duplicates().sample(frac=1.0, random_state=seed).tolist()
    expt = df[df.fidelity == "expt"].composition.drop_duplicates()
    picked = expt.sample(frac=0.5, random_state=seed) if n_expt is None else \
        expt.sample(n=n_expt, random_state=seed)
    train_comps = set(picked)
    pool_comps = [c for c in comps if c not in train_comps][:N_POOL]
    train = df[(df.fidelity == "pbe") | df.composition.isin(train_comps)]
    reg = MultiFidelityRegressor("ar1", max_rows_per_fidelity=max_rows, progress=False)
    reg.fit(train)
    pool = df.drop_duplicates("composition").set_index("composition").loc[pool_comps, "formula"]
    return reg, pool.tolist()


def _measure(name: str, reg, C) -> list[dict]:
    """Each method on one fitted model, ``REPEATS`` times."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.optim import optimize_acqf_discrete

    from mfgp.fastvar import estimated_error

    model = reg.model_
    n_train = len(reg.train_rows_)
    X_all, _, _ = reg.dataset_.tensors(reg.train_rows_)
    baseline = X_all[X_all[:, -1] == 1]
    R = C[torch.randperm(C.shape[0], generator=torch.Generator().manual_seed(0))[:256]]
    model.posterior(C[:2])  # the Cholesky factor, once, outside the timings
    t0 = time.perf_counter()
    error = estimated_error(model)  # the low-rank cache, once per fitted model (ditto)
    cache_s = time.perf_counter() - t0

    def botorch_logei():
        # BoTorch's defaults (the baseline pruned to its likely maximisers); 64 candidates a
        # batch, since each batch element's joint posterior includes the whole baseline
        acqf = qLogNoisyExpectedImprovement(model, baseline)
        with torch.no_grad():
            X, _ = optimize_acqf_discrete(acqf, Q, C, max_batch_size=64, unique=True)
        return [int(np.flatnonzero((C == x).all(-1))[0]) for x in X]

    objectives = {"ucb": (UpperConfidenceBound(), {}), "window 1.1-1.7": (WindowHits(), {}),
                  "learn (256 reference rows)": (LearnMap(), {"R": R})}  # fmt: skip
    methods, exact_of = {}, {}
    for label, (objective, kw) in objectives.items():
        for variances in ("auto", "exact"):
            if variances == "exact" and name != "large":
                continue  # "auto" is exact for a campaign-sized model
            method = f"mfgp {label}" + (", exact variances" if variances == "exact" else "")
            exact_of[f"mfgp {label}"] = f"mfgp {label}, exact variances"
            methods[method] = (lambda o=objective, k=kw, v=variances:
                               select_batch(model, C, o, q=Q, variances=v, **k).rows)
    methods["botorch optimize_acqf_discrete qLogNEI"] = botorch_logei
    cell = []
    for method, fn in methods.items():
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            rows = fn()
            times.append(time.perf_counter() - t0)
        cell.append({"model": name, "training_rows": n_train, "method": method,
                     "candidates": int(C.shape[0]), "q": Q,
                     "median_s": statistics.median(times), "times_s": times,
                     "rows": [int(r) for r in rows], "cache_s": cache_s,
                     "estimated_error": error})  # fmt: skip
        print(name, method, f"{cell[-1]['median_s']:.2f} s", rows, flush=True)
    rows_of = {r["method"]: r["rows"] for r in cell}
    for r in cell:
        exact = exact_of.get(r["method"])
        r["same_as_exact"] = (None if exact not in rows_of
                              else r["rows"] == rows_of[exact])  # fmt: skip
    base = cell[-1]["median_s"]
    for r in cell:
        r["ratio_vs_botorch"] = r["median_s"] / base
    return cell


def main() -> None:
    df = load_bandgap_ladder(["pbe", "expt"])
    records = []
    for name, n_expt, max_rows in (("campaign", 500, 1000), ("large", None, 3000)):
        reg, formulas = setting(df, n_expt, max_rows)
        C = reg.dataset_.inputs_for(formulas)
        records += _measure(name, reg, C)
    write_results("bench_pool_scoring", records,
                  ["model", "training_rows", "method", "candidates", "q", "median_s",
                   "ratio_vs_botorch", "same_as_exact", "cache_s"])  # fmt: skip


if __name__ == "__main__":
    main()
