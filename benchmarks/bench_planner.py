"""Does the planner beat simple rules? Window hits on the shipped band gaps, with the hurdle.

Scenario ``window`` (issue #33): find materials whose *experimental* band gap lies in
[1.1, 1.7] eV (single-junction photovoltaics). The oracle is the shipped experimental gaps
(Matbench ``expt_gap``), hidden until acquired; the PBE gap (Materials Project 2018, the
ground state) is known for every pool composition that has one, at no cost. Each seed draws
20 seed experiments and a pool of 1,000 other experimental compositions; every strategy of a
seed gets the same seed rows, pool and oracle, and acquires 50 experiments in batches of 5.
GP models refit their hyperparameters every 25 experiments and are conditioned on new rows in
between (the campaign's ``refit_every``). Scenario ``cold``: the same with 5 seed
experiments (the first 5 of the same draw).

Strategies:

* ``mfgp``: the recommended model for gaps, the hurdle (``HurdleRegressor()``, defaults:
  P(metal) from a classifier that reads the PBE gap and, with fewer than 200 experiments,
  also learns PBE's ``gap == 0`` labels (``multitask="auto"``; the rows before it are kept in
  results/bench_planner_before_multitask.partial.jsonl), the positive part a multi-fidelity
  AR1 on PBE and experiment), with the window objective (expected hits, the point mass at
  zero included).
* ``ar1 window``: the Gaussian AR1 on the same data and objective (the ablation: the model).
* ``random``: random experiments (one draw per seed, shown; EF and AF use random's exact
  expectation on the seed's pool, ``n * hits in pool / 1000``).
* ``single-fidelity std``: a GP on the experiments only, uncertainty sampling (the baseline
  that found the most hits in the previous benchmark).
* ``single-fidelity window``: the same GP with the window objective.
* ``single-fidelity hurdle``: the hurdle on the experiments only, window objective (so that
  the hurdle's gain is not credited to the PBE level).
* ``greedy mean``: the AR1's predicted mean closest to the window's centre.
* ``PBE rule``: what a materials scientist does without a model: fit ``expt = a PBE + b``
  (Theil-Sen) on the seed experiments with a nonzero gap and a nonzero PBE gap (a median
  shift below 3 such pairs), acquire the compositions whose corrected PBE gap is closest to
  the window's centre; compositions without PBE next, PBE metals last. No refit needed.
* ``random forest``: scikit-learn's random forest (300 trees) on the magpie features plus the
  PBE gap (and a flag where it is missing), the window probability from the spread of the
  trees (a Gaussian of the trees' mean and std; CAMD, Liang et al. 2021), refitted every batch
  (more often than the GPs: in its favour).
* ``random forest, no PBE``: the same on the magpie features only (the diagnostic: how much
  of the forest's result is the composition's own PBE value).

Metrics (Rohr et al. 2020): enhancement factor EF = a strategy's mean hits / random's expected
hits at 25 and 50 experiments; acceleration factor AF = 50 / the experiments the strategy's
mean curve needs to reach the hits random is expected to have after 50 (extrapolated at the
strategy's mean rate when it does not get there in 50); ``minus_forest``: the mean over seeds
of a strategy's hits after 50 less the random forest's on the same seed. 95% bootstrap CIs
over seeds (2,000 resamples of the seeds). Writes results/bench_planner.{json,md,png}; the
JSON carries a ``summary`` ``{scenario: {strategy: {"ef": .., "ef_ci": [..], "af": ..,
"af_ci": [..], ...}}}``.

Seeds 0-19 (``SEEDS``, ``FIRST_SEED``); seeds 10-19 were added for every strategy at once
after 0-9 had been reported, to narrow the CIs of the comparison with the forest.

Run: ``make bench-planner`` (``SEEDS=2`` for a quick look). Finished (scenario, strategy,
seed) cells are kept in results/bench_planner.partial.jsonl, so an interrupted run resumes;
each cell records the commit it ran on.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import (
    COMMIT,
    RESULTS,
    append_partial,
    read_partial,
    forest_campaign,
    simulate_campaign,
    write_results,
)

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.exceptions import InputDataError

SEEDS = int(os.environ.get("SEEDS", 20))
FIRST_SEED = int(os.environ.get("FIRST_SEED", 0))
BUDGET = int(os.environ.get("BUDGET", 50))
POOL = int(os.environ.get("POOL", 1000))
NAME = "bench_planner" if (BUDGET, POOL) == (50, 1000) else "bench_planner_smoke"
PARTIAL = RESULTS / f"{NAME}.partial.jsonl"
Q = 5
REFIT = 25
N_SEED = 20
WINDOW = (1.1, 1.7)
CENTRE = sum(WINDOW) / 2
STRATEGIES = ("mfgp", "ar1 window", "random", "single-fidelity std", "single-fidelity window",
              "single-fidelity hurdle", "greedy mean", "PBE rule", "random forest",
              "random forest, no PBE")  # fmt: skip
#: scenario -> seed experiments at the start (``cold``: a cold start)
SCENARIOS = {"window": N_SEED, "cold": 5}
#: the strategies run in the cold start (the rest: window only)
COLD = ("mfgp", "ar1 window", "random", "single-fidelity window", "PBE rule", "random forest",
        "single-fidelity hurdle")
ONLY = [s for s in os.environ.get("STRATEGIES", "").split(",") if s]


def _expt_table(df: pd.DataFrame) -> pd.DataFrame:
    e = df[df.fidelity == "expt"]
    return e.groupby("composition").agg(formula=("formula", "first"),
                                        value=("value", "mean")).reset_index()  # fmt: skip


def _world(seed: int, n_seed: int = N_SEED):
    df = load_bandgap_ladder(["pbe", "expt"])
    ex = _expt_table(df)
    rng = np.random.default_rng(seed)
    seed_rows = ex.iloc[rng.choice(len(ex), N_SEED, replace=False)][:n_seed]
    rest = ex[~ex.composition.isin(set(seed_rows.composition))]
    pool = rest.sample(n=POOL, random_state=seed)
    pbe = df[(df.fidelity == "pbe")
             & df.composition.isin(set(pool.composition) | set(seed_rows.composition))]
    return df, seed_rows, pool, pbe


def _hits(values: np.ndarray) -> np.ndarray:
    return ((values >= WINDOW[0]) & (values <= WINDOW[1])).astype(int)


def _campaign_run(tmp: Path, name: str, est, pool, data, objective, options, seed) -> list:
    fids = [f for f in ("pbe", "expt") if f in set(data.fidelity)]
    return simulate_campaign(tmp / f"{name}-{seed}.db", est, pool.formula, data, objective,
                             options, oracle_table=_ORACLE[0], fidelities=fids, budget=BUDGET,
                             q=Q, refit_every=REFIT, seed=seed)  # fmt: skip


_ORACLE: list = [None]


def _pbe_rule(seed_rows, pool, pbe, seed) -> list:
    """Corrected PBE gap closest to the centre; PBE metals and compositions without PBE last."""
    from scipy.stats import theilslopes

    own = pbe.drop_duplicates("composition").set_index("composition")["value"]
    pairs = seed_rows[seed_rows.value > 0]
    x = own.reindex(pairs.composition).to_numpy()
    y = pairs.value.to_numpy()
    ok = np.isfinite(x) & (x > 0)  # the map of semiconductors' gaps; PBE metals say little
    if ok.sum() >= 3:
        a, b = theilslopes(y[ok], x[ok])[:2]  # robust to a few odd pairs
    else:
        a, b = 1.0, float(np.median(y[ok] - x[ok])) if ok.any() else 0.0  # a shift, or none
    p = own.reindex(pool.composition).to_numpy()
    corrected = a * p + b
    rng = np.random.default_rng(seed + 100)
    dist = np.where(np.isfinite(p) & (p > 0), np.abs(corrected - CENTRE), np.inf)
    tier = np.where(np.isfinite(dist), 0, np.where(np.isfinite(p), 2, 1))  # no PBE before 0 eV
    order = np.lexsort((rng.random(len(pool)), dist, tier))
    return pool.value.to_numpy()[order[:BUDGET]].tolist()


def _random(pool, seed) -> list:
    rng = np.random.default_rng(seed + 100)
    return pool.value.to_numpy()[rng.permutation(len(pool))[:BUDGET]].tolist()


def _random_forest(seed_rows, pool, pbe, seed, use_pbe: bool = True) -> list:
    from scipy.stats import norm

    from mfgp.featurize import CompositionFeaturizer

    feat = CompositionFeaturizer("magpie")
    own = pbe.drop_duplicates("composition").set_index("composition")["value"]

    def features(rows):
        F = np.asarray(feat.transform(rows.formula.tolist()), dtype=float)
        p = own.reindex(rows.composition).to_numpy()
        if not use_pbe:
            return F
        return np.column_stack([F, np.nan_to_num(p, nan=-1.0), np.isnan(p)])

    def window_probability(mu, sd, _):
        sd = sd + 1e-6
        return norm.cdf((WINDOW[1] - mu) / sd) - norm.cdf((WINDOW[0] - mu) / sd)

    return forest_campaign(features(seed_rows), seed_rows.value.to_numpy(), features(pool),
                           pool.value.to_numpy(), window_probability, budget=BUDGET, q=Q,
                           seed=seed)  # fmt: skip


def run_cell(strategy: str, seed: int, tmp: Path, scenario: str = "window") -> dict:
    df, seed_rows, pool, pbe = _world(seed, SCENARIOS[scenario])
    _ORACLE[0] = df[df.fidelity == "expt"]
    known = pd.concat([pbe[["formula", "fidelity", "value"]],
                       seed_rows.assign(fidelity="expt")[["formula", "fidelity", "value"]]],
                      ignore_index=True)  # fmt: skip
    expt_only = seed_rows.assign(fidelity="expt")[["formula", "fidelity", "value"]]
    window = {"lo": WINDOW[0], "hi": WINDOW[1]}
    t0 = time.perf_counter()
    tmp = tmp / scenario  # one store per (scenario, strategy, seed): runs share the directory
    tmp.mkdir(exist_ok=True)
    try:
        values = _strategy(strategy, tmp, seed, seed_rows, pool, pbe, known, expt_only, window)
    except InputDataError as err:  # a model that cannot start from these seed experiments
        return {"scenario": scenario, "strategy": strategy, "seed": seed, "hits": [],
                "seed_experiments": len(seed_rows), "failed": str(err),
                "pool_hits": int(_hits(pool.value.to_numpy()).sum()), "commit": COMMIT,
                "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    hits = np.cumsum(_hits(np.asarray(values, dtype=float))).tolist()
    return {"scenario": scenario, "strategy": strategy, "seed": seed, "hits": hits,
            "seed_experiments": len(seed_rows),
            "pool_hits": int(_hits(pool.value.to_numpy()).sum()), "commit": COMMIT,
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def _strategy(strategy, tmp, seed, seed_rows, pool, pbe, known, expt_only, window) -> list:
    hurdle = dict(progress=False)
    ar1 = dict(progress=False)
    if strategy == "mfgp":
        values = _campaign_run(tmp, "mfgp", HurdleRegressor(**hurdle), pool, known, "window",
                               window, seed)  # fmt: skip
    elif strategy == "ar1 window":
        values = _campaign_run(tmp, "ar1", MultiFidelityRegressor("ar1", **ar1), pool, known,
                               "window", window, seed)  # fmt: skip
    elif strategy == "single-fidelity std":
        values = _campaign_run(tmp, "sfstd", MultiFidelityRegressor("single", progress=False),
                               pool, expt_only, "std", {}, seed)  # fmt: skip
    elif strategy == "single-fidelity window":
        values = _campaign_run(tmp, "sfwin", MultiFidelityRegressor("single", progress=False),
                               pool, expt_only, "window", window, seed)  # fmt: skip
    elif strategy == "greedy mean":
        values = _campaign_run(tmp, "greedy", MultiFidelityRegressor("ar1", **ar1), pool,
                               known, "greedy", {"value": CENTRE}, seed)  # fmt: skip
    elif strategy == "single-fidelity hurdle":
        values = _campaign_run(tmp, "sfhurdle", HurdleRegressor("single", progress=False),
                               pool, expt_only, "window", window, seed)  # fmt: skip
    elif strategy == "PBE rule":
        values = _pbe_rule(seed_rows, pool, pbe, seed)
    elif strategy == "random":
        values = _random(pool, seed)
    elif strategy == "random forest":
        values = _random_forest(seed_rows, pool, pbe, seed)
    elif strategy == "random forest, no PBE":
        values = _random_forest(seed_rows, pool, pbe, seed, use_pbe=False)
    else:
        raise KeyError(strategy)
    return values


def _expected_random(r: dict, n: int) -> float:
    """Random acquisition's expected hits after ``n`` experiments (without replacement)."""
    return n * r["pool_hits"] / POOL


def _bootstrap(records: list[dict], strategy: str, at: int, n_boot: int = 2000,
               scenario: str = "window") -> dict:  # fmt: skip
    """EF and AF of ``strategy`` against random acquisition, with 95% bootstrap CIs over seeds.

    Random's hits are its exact expectation on each seed's pool (``n * hits in pool / pool
    size``), not one noisy draw. EF at ``at`` = the strategy's mean hits / random's expected
    mean hits. AF = ``at`` / the experiments the strategy's mean curve needs to reach the
    hits random is expected to have after ``at`` (interpolated; ``at`` when never reached
    sooner, so AF >= 1 only when the strategy gets there first).
    """
    runs = [r for r in records if r.get("scenario", "window") == scenario
            and r["strategy"] == strategy and len(r["hits"]) >= at]  # fmt: skip
    if not runs:
        return {}
    H = np.array([r["hits"][:at] for r in runs], dtype=float)  # seeds x at
    base = np.array([_expected_random(r, at) for r in runs])
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(runs), size=(n_boot, len(runs)))

    def af_of(curve: np.ndarray, target: float) -> float:
        above = np.flatnonzero(curve >= target)
        if not above.size:  # not reached in ``at``: extrapolated at the strategy's mean rate
            return float(curve[-1] / max(target, 1e-12))
        k = int(above[0])
        prev = curve[k - 1] if k > 0 else 0.0
        n = k + (target - prev) / max(curve[k] - prev, 1e-12) if k > 0 else \
            (target / max(curve[0], 1e-12))  # fmt: skip
        return float(at) / max(n, 1e-9)

    ef = H[:, -1].mean() / base.mean()
    af = af_of(H.mean(0), base.mean())
    boots_ef = H[idx, -1].mean(1) / base[idx].mean(1)
    boots_af = np.array([af_of(H[i].mean(0), base[i].mean()) for i in idx])
    return {"seeds": len(runs), "hits_mean": float(H[:, -1].mean()),
            "hits_std": float(H[:, -1].std(ddof=1)) if len(runs) > 1 else 0.0,
            "random_hits_expected": float(base.mean()),
            "ef": float(ef), "ef_ci": [float(v) for v in np.percentile(boots_ef, [2.5, 97.5])],
            "af": float(af), "af_ci": [float(v) for v in np.percentile(boots_af, [2.5, 97.5])]}


def _paired(records: list[dict], strategy: str, other: str, scenario: str,
            n_boot: int = 2000) -> dict:
    """Mean over seeds of ``strategy``'s hits after ``BUDGET`` less ``other``'s on the same
    seed, with a 95% bootstrap CI (``{}`` for ``other`` itself or without shared seeds)."""
    def final(name):
        return {r["seed"]: r["hits"][BUDGET - 1] for r in records
                if r.get("scenario", "window") == scenario and r["strategy"] == name
                and len(r["hits"]) >= BUDGET}  # fmt: skip

    mine, theirs = final(strategy), final(other)
    seeds = sorted(set(mine) & set(theirs))
    if strategy == other or not seeds:
        return {}
    d = np.array([mine[s] - theirs[s] for s in seeds], dtype=float)
    boots = d[np.random.default_rng(0).integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    return {"minus_forest": float(d.mean()),
            "minus_forest_ci": [float(v) for v in np.percentile(boots, [2.5, 97.5])]}


def summarize(records: list[dict]) -> tuple[dict, dict[str, pd.DataFrame]]:
    summary: dict = {}
    sections = {}
    for scenario, n_seed in SCENARIOS.items():
        rows = []
        summary[scenario] = {}
        # paired: only the seeds on which every strategy could start
        failed = {r["seed"] for r in records
                  if r.get("scenario", "window") == scenario and r.get("failed")}  # fmt: skip
        records_all, records = records, [r for r in records if r["seed"] not in failed
                                         or r.get("scenario", "window") != scenario]
        for strategy in STRATEGIES:
            e25 = _bootstrap(records, strategy, 25, scenario=scenario)
            e50 = _bootstrap(records, strategy, BUDGET, scenario=scenario)
            if not e50:
                continue
            cell = {**e50, "ef_25": e25.get("ef"),
                    "ef_25_ci": e25.get("ef_ci"), "experiments": BUDGET,
                    "seed_experiments": n_seed,
                    **_paired(records, strategy, "random forest", scenario)}  # fmt: skip
            summary[scenario][strategy] = cell
            secs = [r["seconds"] for r in records if r["strategy"] == strategy
                    and r.get("scenario", "window") == scenario]  # fmt: skip
            rows.append({"strategy": strategy, "seeds": cell["seeds"],
                         f"hits_{BUDGET}_mean": cell["hits_mean"],
                         f"hits_{BUDGET}_std": cell["hits_std"],
                         f"EF_{BUDGET}": cell["ef"],
                         f"EF_{BUDGET}_95ci": f"{cell['ef_ci'][0]:.2f}-{cell['ef_ci'][1]:.2f}",
                         "AF": cell["af"],
                         "AF_95ci": f"{cell['af_ci'][0]:.2f}-{cell['af_ci'][1]:.2f}",
                         "EF_25": e25.get("ef"),
                         "EF_25_95ci": (f"{e25['ef_ci'][0]:.2f}-{e25['ef_ci'][1]:.2f}"
                                        if e25 else ""),
                         "minus_forest": cell.get("minus_forest"),
                         "minus_forest_95ci": ("{:.1f} to {:.1f}".format(*cell["minus_forest_ci"])
                                               if "minus_forest_ci" in cell else ""),
                         "median_seconds": float(np.median(secs))})  # fmt: skip
        if rows:
            title = (f"{scenario}: window hits (experimental gap in [{WINDOW[0]}, {WINDOW[1]}] "
                     f"eV) from {n_seed} seed experiments, EF and AF against random, 95% "
                     "bootstrap CI over seeds")  # fmt: skip
            if failed:
                title += (f" (seeds {sorted(failed)} left out: a strategy could not start, "
                          "see the records' `failed`)")  # fmt: skip
                summary[scenario]["_left_out_seeds"] = sorted(failed)
            sections[title] = pd.DataFrame(rows)
        records = records_all
    return summary, sections


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCENARIOS), figsize=(6.5 * len(SCENARIOS), 4.8),
                             sharey=True)  # fmt: skip
    for ax, (scenario, n_seed) in zip(np.atleast_1d(axes), SCENARIOS.items()):
        mine = [r for r in records if r.get("scenario", "window") == scenario]
        failed = {r["seed"] for r in mine if r.get("failed")}
        _panel(ax, [r for r in mine if r["seed"] not in failed])  # paired, as the summary
        ax.set_title(f"{scenario}: {n_seed} seed experiments, 1,000-composition pool"
                     + (f"\n({len(failed)} seeds where the hurdle cannot start left out)"
                        if failed else ""))  # fmt: skip
    fig.suptitle("Finding experimental band gaps in [1.1, 1.7] eV: mean hits over seeds, "
                 "95% bootstrap band")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _panel(ax, records: list[dict]) -> None:
    x = np.arange(1, BUDGET + 1)
    for strategy in STRATEGIES:
        curves = [r["hits"] for r in records if r["strategy"] == strategy
                  and len(r["hits"]) == BUDGET]  # fmt: skip
        if not curves:
            continue
        H = np.array(curves, dtype=float)
        rng = np.random.default_rng(0)
        boots = H[rng.integers(0, len(H), size=(1000, len(H)))].mean(1)
        lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
        line, = ax.plot(x, H.mean(0), label=f"{strategy} (n={len(H)})",
                        lw=2.5 if strategy == "mfgp" else 1.3)  # fmt: skip
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("experiments acquired")
    ax.set_ylabel(f"window hits (experimental gap in [{WINDOW[0]}, {WINDOW[1]}] eV)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)


def main() -> None:
    done = read_partial(PARTIAL)
    have = {(r.get("scenario", "window"), r["strategy"], r["seed"]) for r in done}
    strategies = ONLY or list(STRATEGIES)
    cells = [(scenario, strategy) for scenario in SCENARIOS for strategy in strategies
             if scenario == "window" or strategy in COLD]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, strategy in cells:
            for seed in range(FIRST_SEED, FIRST_SEED + SEEDS):
                if (scenario, strategy, seed) in have:
                    continue
                rec = run_cell(strategy, seed, Path(tmp), scenario)
                append_partial(PARTIAL, [rec])
                done.append(rec)
                if rec.get("failed"):
                    print(f"{scenario} {strategy:>24} seed {seed}: cannot start: "
                          f"{rec['failed'][:80]}", flush=True)  # fmt: skip
                    continue
                print(f"{scenario} {strategy:>24} seed {seed}: hits at 25/{BUDGET} "
                      f"{rec['hits'][24] if len(rec['hits']) > 24 else '-'}/{rec['hits'][-1]} "
                      f"({rec['seconds']:.0f} s)", flush=True)  # fmt: skip
    summary, sections = summarize(done)
    path = write_results(NAME, done, columns=["scenario", "strategy", "seed", "seconds"],
                         sections=sections)  # fmt: skip
    import json

    from mfgp._io import atomic_write

    payload = json.loads(path.read_text())
    payload["summary"] = summary
    with atomic_write(path) as fh:
        json.dump(payload, fh, indent=1)
    plot(done, RESULTS / f"{NAME}.png")
    for title, table in sections.items():
        print(title)
        print(table.to_string(index=False))


if __name__ == "__main__":
    sys.exit(main())
