"""How far fast (low-rank) predictive variances are from exact ones on the shipped band gaps.

For each model and rank: the per-row relative error ``(var_fast - var_exact) / var_exact`` of
the predictive variance of a new experimental measurement (noise included) over held-out
rows, its quantiles, the caches' own estimate (:func:`mfgp.fastvar.estimated_error`, what
``variances="auto"`` checks), and the 90% central-interval coverage of the held-out
experimental gaps with exact and with fast variances. Means are exact either way.

Models (``MODELS``):

* ``campaign AR1``: 500 experimental compositions and at most 1,000 other PBE rows (as
  ``bench_screen.py``); held out: 1,000 other experimental rows;
* ``AR1 half``: every experimental gap of a random half of the compositions and at most 3,000
  other PBE rows (``bench_pool_scoring.py``'s large model); held out: the other half's.

Run: ``python diag_fast_variance.py`` (``RANKS=128,512``, ``MODELS=campaign,half``);
``--quick`` checks the script on a small AR1 in a minute and writes nothing.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

QUICK = "--quick" in sys.argv
RANKS = [int(r) for r in os.environ.get("RANKS", "128,512").split(",")]
MODELS = os.environ.get("MODELS", "campaign,half").split(",")
QUANTILES = (0.5, 0.9, 0.99, 1.0)


def setting(name: str):
    from mfgp.datasets import load_bandgap_ladder
    from mfgp.estimators import MultiFidelityRegressor

    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].composition.drop_duplicates()
    if name == "half":
        picked, cap, opts = expt.sample(frac=0.5, random_state=0), 3000, {}
    elif QUICK:
        picked, cap, opts = expt.sample(n=100, random_state=0), 200, dict(max_iter=10)
    else:
        picked, cap, opts = expt.sample(n=500, random_state=0), 1000, {}
    train = df[(df.fidelity == "pbe") | df.composition.isin(set(picked))]
    held = df[(df.fidelity == "expt") & ~df.composition.isin(set(picked))]
    held = held.drop_duplicates("composition")
    held = held.sample(n=min(len(held), 200 if QUICK else 1000), random_state=1)
    reg = MultiFidelityRegressor("ar1", max_rows_per_fidelity=cap, progress=False, **opts)
    return reg.fit(train), held


def coverage(y: np.ndarray, mean: np.ndarray, std: np.ndarray, level: float = 0.9) -> float:
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    return float(np.mean(np.abs(y - mean) <= z * std))


def main() -> None:
    from mfgp.fastvar import estimated_error, fast_variances

    records = []
    for name in (["campaign"] if QUICK else MODELS):
        t0 = time.perf_counter()
        reg, held = setting(name)
        fit_s = time.perf_counter() - t0
        formulas, y = held.formula.tolist(), held.value.to_numpy()
        with fast_variances(False):
            mean, std = reg.predict(formulas, True, observation_noise=True)
        base = {"model": name, "training_rows": len(reg.train_rows_), "held_out": len(y),
                "fit_s": fit_s, "coverage_90_exact": coverage(y, mean, std)}  # fmt: skip
        for rank in ([64] if QUICK else RANKS):
            reg.model_.model.clear_cache()
            t0 = time.perf_counter()
            estimate = estimated_error(reg, rank)
            cache_s = time.perf_counter() - t0
            with fast_variances(rank=rank):
                m_fast, s_fast = reg.predict(formulas, True, observation_noise=True)
            rel = (s_fast**2 - std**2) / std**2
            rec = {**base, "rank": rank, "cache_s": cache_s, "estimated_error": estimate,
                   "max_mean_difference": float(np.max(np.abs(m_fast - mean))),
                   "coverage_90_fast": coverage(y, m_fast, s_fast),
                   **{f"rel_var_error_q{int(q * 100)}": float(np.quantile(rel, q))
                      for q in QUANTILES},
                   "rel_var_error_min": float(rel.min())}  # fmt: skip
            records.append(rec)
            print(rec, flush=True)
    if QUICK:
        return
    import pandas as pd
    from _common import write_results

    write_results("diag_fast_variance", records, table=pd.DataFrame(records).round(4))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
