"""A campaign round, end to end: ``Campaign.suggest(5)`` from 5,000 candidates, no refit.

Issue #33's target: a round (suggest 5 from 5,000 candidates with a campaign-sized model, no
refit) in at most 2 s on 2 cores. What a round does through the public API: the surrogate
conditioned on the observations since the fit and on the pending rows, the candidates'
inputs, the objective's scores, the greedy batch, the table on the user's scale (a hurdle's
point-mass mixture) with each row's forecast of its experiment, and the store's transaction.

Data: the shipped band gaps; 500 experimental compositions and 1,000 PBE rows known (a
campaign-sized model: about 1,500 training rows), a pool of 5,000 other compositions (their
features computed once, when the campaign first scores them). Models: the Gaussian AR1 and the
hurdle (``HurdleRegressor()`` defaults), each with ``window`` and ``learn``. Timed: the first
``suggest`` (the fit included), then ``REPEATS`` rounds with nothing new (the fitted model as
it is), then ``REPEATS`` rounds each after observing the previous batch (conditioned, not
refitted: ``refit_every`` is large). Medians are reported.

The batch observed before a conditioned round is "measured" at its predicted mean (the time
of a round does not depend on the values). Run: ``make bench-campaign-round`` (a few minutes
on 2 cores). Writes
results/bench_campaign_round.{json,md}.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import write_results

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.loop import Campaign

REPEATS = 3
N_POOL = 5000
Q = 5


def _world():
    df = load_bandgap_ladder(["pbe", "expt"])
    comps = df.composition.drop_duplicates().sample(frac=1.0, random_state=0)
    expt = df[df.fidelity == "expt"].drop_duplicates("composition")
    known_expt = expt.sample(n=500, random_state=0)
    rest = [c for c in comps if c not in set(known_expt.composition)]
    pool_comps = rest[:N_POOL]
    pbe = df[(df.fidelity == "pbe") & ~df.composition.isin(set(pool_comps))]
    pbe = pbe.sample(n=1000, random_state=0)
    known = known_expt[["formula", "fidelity", "value"]]
    data = pd.concat([pbe[["formula", "fidelity", "value"]], known], ignore_index=True)
    pool = df.drop_duplicates("composition").set_index("composition").loc[pool_comps, "formula"]
    return df, data, pool.tolist()


def main() -> None:
    df, data, pool = _world()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_name, make in (("ar1", lambda: MultiFidelityRegressor("ar1", progress=False)),
                                 ("hurdle", lambda: HurdleRegressor(progress=False))):
            for objective, options in (("window", {"lo": 1.1, "hi": 1.7}), ("learn", {})):
                costs = {"expt": 1.0} if objective == "window" else {"pbe": 0.05, "expt": 1.0}
                camp = Campaign(make(), pool, target="expt", costs=costs, objective=objective,
                                objective_options=options, data=data,
                                fidelities=["pbe", "expt"],
                                store=Path(tmp) / f"{model_name}-{objective}.db",
                                refit_every=10_000)  # fmt: skip
                t0 = time.perf_counter()
                camp.suggest(Q)
                first = time.perf_counter() - t0
                idle, conditioned = [], []
                for _ in range(REPEATS):
                    camp.store.cancel_pending()
                    t0 = time.perf_counter()
                    camp.suggest(Q)
                    idle.append(time.perf_counter() - t0)
                for _ in range(REPEATS):
                    batch = camp.pending()  # "measured" at its predicted mean: the time of a
                    camp.observe(batch[["formula", "fidelity"]].assign(  # round does not
                        value=batch["mean"].clip(lower=0.0)))  # depend on the value

                    t0 = time.perf_counter()
                    camp.suggest(Q)
                    conditioned.append(time.perf_counter() - t0)
                n_rows = len(camp.observations())
                camp.close()
                rec = {"model": model_name, "objective": objective, "candidates": N_POOL,
                       "q": Q, "observations": n_rows,
                       "first_suggest_with_fit_s": round(first, 2),
                       "round_s_median": round(statistics.median(idle), 3),
                       "round_after_observing_s_median": round(statistics.median(conditioned),
                                                               3)}  # fmt: skip
                print(rec, flush=True)
                records.append(rec)
    write_results("bench_campaign_round", records)


if __name__ == "__main__":
    main()
