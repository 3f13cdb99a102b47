"""Simulated campaigns on the shipped band gaps and formation enthalpies: mfgp's planner
against the usual baselines.

The oracle is the shipped experimental values (Matbench ``expt_gap``; Kim et al. 2017's
formation enthalpies), hidden until acquired; the lower-fidelity values (PBE gaps from the
Materials Project 2018; OQMD and MP formation enthalpies) are known for every composition that
has one; HSE gaps (Chen et al. 2021) are acquirable in the cost-aware scenario. Every strategy
of a scenario gets the same seed set, pool and held-out compositions for each seed, and its
model is refitted every 20 / 25 / 25 (10 for the Gaussian AR1) / 25 acquired rows (learn /
window / cost / cost_enthalpy) and conditioned on new rows in between, so the strategies of one model differ only in what they acquire.

1. **learn the map** (``learn``: gaps; ``learn_enthalpy``: formation enthalpies): 300 fixed
   held-out experimental compositions and a 600-composition pool (for gaps: compositions with
   a PBE gap), the lower-fidelity rows of both known; 20 seed experiments; batches of 5 until
   100 more are acquired. Metric: MAE (and NLPD, 90% coverage) of the held-out experimental
   values under the model's predictive of a new measurement.
   Strategies: ``mfgp`` (the recommended model with the ``learn`` objective: the hurdle for
   gaps, the AR1 on OQMD + MP + experiment for enthalpies), ``random`` (the same model, random
   experiments: the reference of EF and AF), ``Gaussian AR1`` (gaps: the AR1 as an ablation,
   with ``random, Gaussian AR1``), ``single-fidelity`` (a GP on the experiments only with
   uncertainty sampling, with ``random, single-fidelity``). The random strategies of a seed
   acquire the same compositions, whatever their model.
2. **find materials** (``window``, the Gaussian AR1; ``bench_planner.py`` runs this scenario
   with the hurdle and more baselines): window hits (experimental gap in [1.1, 1.7] eV) among
   the acquired experiments after 25 / 50 / 100; the pool 1,000 experimental compositions
   outside the 20-row seed set, a seeded sample (PBE known where it exists). Strategies:
   ``mfgp`` (the AR1, window objective), ``random``, ``single-fidelity`` (window objective),
   ``greedy mean`` (the predicted gap closest to the window's centre).
3. **cost-aware** (``cost``): the 581 compositions with PBE, HSE and experiment (150 held
   out, their PBE and HSE known); HSE costs 20, an experiment 500, a budget of 25
   experiments; MAE of the held-out experimental gaps against the money spent: ``mfgp``
   (the hurdle on PBE + HSE + experiment, learn the map choosing HSE or experiment per unit
   cost; refitted every 25 rows), ``fixed fidelity`` (the hurdle, learn the map on
   experiments only), ``random`` experiments (the hurdle); the Gaussian AR1 as the ablation
   (``Gaussian AR1``, ``fixed fidelity, Gaussian AR1``, ``random, Gaussian AR1``; refitted
   every 10 rows). EF of each model against its own fixed fidelity. A seed whose 10 seed
   experiments hold fewer than 2 nonzero gaps has no hurdle cells (the hurdle cannot start:
   seed 9 of 0-9).
4. **cost-aware on formation enthalpies** (``cost_enthalpy``, the AR1 on OQMD + MP +
   experiment): the compositions with all three values (150 held out, their DFT values known;
   the pool's bought at 20 each beside experiments at 500), 10 seed experiments, the same
   budget and strategies as 3.

Writes results/bench_campaign.{json,md} and results/bench_campaign.png. Run:
``make bench-campaign`` (``SEEDS=2 make bench-campaign`` for a quick look). A finished
(scenario, strategy, seed) cell is kept in results/bench_campaign.partial.jsonl, so an
interrupted run resumes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, append_partial, read_partial, write_results

from mfgp.calibration import evaluate
from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.loop import Campaign, TableOracle

SEEDS = int(os.environ.get("SEEDS", 5))
#: experiments acquired in scenarios 1 and 2 (scenario 3: a quarter of it, in experiment costs);
#: anything but 100 is a smoke run, written to bench_campaign_smoke.*
BUDGET = int(os.environ.get("BUDGET", 100))
NAME = "bench_campaign" if BUDGET == 100 else "bench_campaign_smoke"
Q = 5
REFIT = 20
WINDOW = (1.1, 1.7)
POOL_WINDOW = 1000
#: run only these strategies of the learn scenario (``LEARN_STRATEGIES="mfgp,random"``)
LEARN_ONLY = [s for s in os.environ.get("LEARN_STRATEGIES", "").split(",") if s]
PARTIAL = RESULTS / f"{NAME}.partial.jsonl"


def _ar1(max_rows: int | None = None) -> MultiFidelityRegressor:
    return MultiFidelityRegressor("ar1", max_rows_per_fidelity=max_rows, progress=False)


def _label(est) -> str:
    """The model column of a record: ``HurdleRegressor('ar1')``, ``MultiFidelityRegressor('ar1')``."""
    arch = getattr(est, "architecture", None)
    return f"{type(est).__name__}({arch!r})" if arch is not None else f"{type(est).__name__}()"


def _single() -> MultiFidelityRegressor:
    return MultiFidelityRegressor("single", progress=False)


def _campaign(tmp: Path, name: str, est, pool, data, costs, objective, seed, refit,
              **options):  # fmt: skip
    fids = list(data.attrs["fidelities"])
    known = data.copy()
    known.attrs["fidelities"] = fids
    return Campaign(est, pool, target="expt", costs=costs, objective=objective,
                    objective_options=options, data=known, store=tmp / f"{name}.db",
                    fidelities=fids, seed=seed, refit_every=refit)  # fmt: skip


def _drive(camp: Campaign, oracle, rng, *, n_max: float, random_pick: bool,
           cost_of, checkpoint) -> list[dict]:  # fmt: skip
    """Acquire until ``n_max`` is spent (cost units); ``checkpoint(camp)`` after each refit.

    A checkpoint falls where the campaign refits (every ``refit_every`` new rows), so the
    model it evaluates is fitted on every row acquired so far.
    """
    every = camp.config["refit_every"]
    curve = [checkpoint(camp)]
    spent = 0.0
    since = 0
    while spent < n_max:
        if random_pick:
            taken = set(camp.observations().query("fidelity == 'expt'").formula)
            left = [f for f in camp.store.pool() if f not in taken]
            batch = pd.DataFrame({"formula": list(rng.choice(left, Q, replace=False)),
                                  "fidelity": "expt"})  # fmt: skip
        else:
            batch = camp.suggest(Q, max_cost=n_max - spent)
            if batch.empty:
                break
            batch = batch[["formula", "fidelity"]]
        camp.observe(oracle(batch.reset_index(drop=True)))
        spent += sum(cost_of(f) for f in batch.fidelity)
        since += len(batch)
        if since >= every or spent >= n_max:
            since = 0
            curve.append(checkpoint(camp))
    return curve


# -- scenarios ---------------------------------------------------------------------------
def _mae_checkpoint(test: pd.DataFrame, unit_cost: dict[str, float]):
    def checkpoint(camp: Campaign) -> dict:
        est, _ = camp.model(refit=True)  # fitted on every row so far
        # the predictive of a new measurement on the user's scale (the hurdle's point mass)
        scores = evaluate(test.value.to_numpy(), est.predictive(test.formula.tolist()))
        obs = camp.observations()
        new = obs[obs.source == "observed"]
        return {"experiments": int((new.fidelity == "expt").sum()),
                "hse": int((new.fidelity == "hse").sum()),
                **{f"n_{f}": int((new.fidelity == f).sum()) for f in unit_cost if f != "expt"},
                "spent": float(sum(unit_cost.get(f, 0.0) for f in new.fidelity)),
                **{k: float(scores[k]) for k in ("mae", "nlpd", "coverage_90")}}  # fmt: skip

    return checkpoint


def _hits_checkpoint(camp: Campaign) -> dict:
    obs = camp.observations()
    new = obs[(obs.source == "observed") & (obs.fidelity == "expt")]
    hits = int(((new.value >= WINDOW[0]) & (new.value <= WINDOW[1])).sum())
    return {"experiments": len(new), "hits": hits}


def _expt_table(df: pd.DataFrame) -> pd.DataFrame:
    """One experimental value per composition (the mean of repeats), with a formula."""
    e = df[df.fidelity == "expt"]
    return e.groupby("composition").agg(formula=("formula", "first"),
                                        value=("value", "mean")).reset_index()  # fmt: skip


def _known(lower: pd.DataFrame | None, seed_rows: pd.DataFrame,
           fidelities: tuple | list = ("pbe", "expt")) -> pd.DataFrame:  # fmt: skip
    """The rows known at the start: the seed experiments, and the lower-fidelity rows if given."""
    parts = [seed_rows.assign(fidelity="expt")[["formula", "fidelity", "value"]]]
    if lower is not None:
        parts.insert(0, lower[["formula", "fidelity", "value"]])
    data = pd.concat(parts, ignore_index=True)
    data.attrs["fidelities"] = list(fidelities) if lower is not None else ["expt"]
    return data


def _learn_world(target: str):
    """The learn-the-map world of ``target`` (``"gap"`` or ``"enthalpy"``), the same every seed.

    300 held-out compositions and a 600-composition pool, drawn once from the experimental
    compositions (for gaps: those with a PBE gap); the lower-fidelity rows of all of them are
    known from the start.
    """
    if target == "gap":
        df = load_bandgap_ladder(["pbe", "expt"])
        ex = _expt_table(df)
        ex = ex[ex.composition.isin(set(df.loc[df.fidelity == "pbe", "composition"]))]
    else:
        df = load_formation_enthalpy()
        ex = _expt_table(df)
    ex = ex.sample(frac=1.0, random_state=0).reset_index(drop=True)
    test, pool_all = ex.iloc[:300], ex.iloc[300:900]  # fixed across seeds
    comps = set(pool_all.composition) | set(test.composition)
    lower = df[(df.fidelity != "expt") & df.composition.isin(comps)]
    oracle = TableOracle(df[df.composition.isin(set(pool_all.composition))])
    return df, test, pool_all, lower, oracle


def _learn_strategies(target: str) -> tuple:
    """(name, estimator, objective, random pick, lower levels known) of each strategy.

    ``mfgp`` is the recommended model with the ``learn`` objective (the hurdle for gaps, the
    AR1 for enthalpies); ``random`` is the same model with random acquisition, the reference
    of EF and AF; the Gaussian AR1 on gaps is the ablation (and its own random).
    """
    single = (("single-fidelity", _single(), "std", False, False),
              ("random, single-fidelity", _single(), "std", True, False))  # fmt: skip
    if target == "enthalpy":
        return (("mfgp", _ar1(), "learn", False, True),
                ("random", _ar1(), "learn", True, True)) + single  # fmt: skip
    hurdle = dict(progress=False)
    return (("mfgp", HurdleRegressor(**hurdle), "learn", False, True),
            ("random", HurdleRegressor(**hurdle), "learn", True, True),
            ("Gaussian AR1", _ar1(), "learn", False, True),
            ("random, Gaussian AR1", _ar1(), "learn", True, True)) + single  # fmt: skip


def scenario_learn(seed: int, tmp: Path, skip: frozenset = frozenset(),
                   target: str = "gap", on_cell=None) -> list[dict]:  # fmt: skip
    """Learn the map; ``skip``: strategies whose cell of this seed is already done.

    ``on_cell(item)`` is called with each finished strategy's record (the caller appends it to
    the partial file, so an interrupted seed keeps its finished strategies).
    """
    scenario = LEARN_SCENARIO[target]
    df, test, pool_all, lower, oracle = _learn_world(target)
    rng = np.random.default_rng(seed)
    seed_rows = pool_all.iloc[rng.choice(len(pool_all), 20, replace=False)]
    fids = list(df.attrs["fidelities"])
    out = []
    for name, est, objective, random_pick, data_lower in _learn_strategies(target):
        if (LEARN_ONLY and name not in LEARN_ONLY) or name in skip:
            continue
        data = _known(lower if data_lower else None, seed_rows, fids)
        camp = _campaign(tmp, f"{scenario}-{name}-{seed}", est, pool_all.formula.tolist(),
                         data, {"expt": 1.0}, objective, seed, REFIT)  # fmt: skip
        t0 = time.perf_counter()
        curve = _drive(camp, oracle, np.random.default_rng(seed + 100), n_max=BUDGET,
                       random_pick=random_pick, cost_of=lambda f: 1.0,
                       checkpoint=_mae_checkpoint(test, {"expt": 1.0}))  # fmt: skip
        camp.close()
        out.append({"scenario": scenario, "strategy": name, "seed": seed, "curve": curve,
                    "model": _label(est),
                    "seconds": time.perf_counter() - t0})  # fmt: skip
        print(scenario, name, seed, [round(c["mae"], 3) for c in curve],
              f"{out[-1]['seconds']:.0f} s", flush=True)
        if on_cell is not None:
            on_cell(out[-1])
    return out


def scenario_window(seed: int, tmp: Path) -> list[dict]:
    df = load_bandgap_ladder(["pbe", "expt"])
    ex = _expt_table(df)
    rng = np.random.default_rng(seed)
    seed_rows = ex.iloc[rng.choice(len(ex), 20, replace=False)]
    pool = ex[~ex.composition.isin(set(seed_rows.composition))]
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(set(ex.composition))]
    oracle = TableOracle(df[df.fidelity == "expt"])
    # a 1,000-composition pool (every experimental composition would keep about 3,200 PBE
    # rows in each fit, about 80 s a fit on 2 cores, too slow for 5 seeds x 4 strategies)
    pool = pool.sample(n=POOL_WINDOW, random_state=seed)
    centre = sum(WINDOW) / 2
    out = []
    for name, est, objective, options, random_pick, data_pbe in (
        ("mfgp", _ar1(1000), "window", {"lo": WINDOW[0], "hi": WINDOW[1]}, False, True),
        ("random", _ar1(1000), "window", {"lo": WINDOW[0], "hi": WINDOW[1]}, True, True),
        ("single-fidelity", _single(), "window", {"lo": WINDOW[0], "hi": WINDOW[1]}, False,
         False),
        ("greedy mean", _ar1(1000), "greedy", {"value": centre}, False, True),
    ):
        data = _known(pbe if data_pbe else None, seed_rows)
        camp = _campaign(tmp, f"window-{name}-{seed}", est, pool.formula.tolist(), data,
                         {"expt": 1.0}, objective, seed, 25, **options)  # fmt: skip
        t0 = time.perf_counter()
        curve = _drive(camp, oracle, np.random.default_rng(seed + 100), n_max=BUDGET,
                       random_pick=random_pick, cost_of=lambda f: 1.0,
                       checkpoint=_hits_checkpoint)  # fmt: skip
        obs = camp.observations()
        new = obs[(obs.source == "observed") & (obs.fidelity == "expt")]
        inside = ((new.value >= WINDOW[0]) & (new.value <= WINDOW[1])).to_numpy()
        camp.close()
        out.append({"scenario": "window", "strategy": name, "seed": seed, "curve": curve,
                    "hits_at": {str(k): int(inside[:k].sum()) for k in (25, 50, 100)
                                if k <= BUDGET},
                    "seconds": time.perf_counter() - t0})  # fmt: skip
        print("window", name, seed, out[-1]["hits_at"], f"{out[-1]['seconds']:.0f} s",
              flush=True)
    return out


def _cost_world(df: pd.DataFrame, lower: tuple[str, str], seed: int):
    """The experimental compositions with both ``lower`` values, shuffled once: 150 held out,
    the rest the pool, and 10 seed experiments drawn from the pool by ``seed``."""
    ex = _expt_table(df)
    have = [set(df.loc[df.fidelity == f, "composition"]) for f in lower]
    ex = ex[ex.composition.isin(have[0] & have[1])]
    ex = ex.sample(frac=1.0, random_state=0).reset_index(drop=True)
    test, pool_all = ex.iloc[:150], ex.iloc[150:]
    rng = np.random.default_rng(seed)
    return ex, test, pool_all, pool_all.iloc[rng.choice(len(pool_all), 10, replace=False)]


def gap_cost_world(seed: int):
    """``(test, pool, data, oracle)`` of ``cost``: the compositions with an experimental, a PBE
    and an HSE gap (150 held out, their HSE gaps known); every PBE gap known; the pool's HSE
    gaps hidden until bought; 10 seed experiments."""
    df = load_bandgap_ladder(["pbe", "hse", "expt"])
    ex, test, pool_all, seed_rows = _cost_world(df, ("pbe", "hse"), seed)
    comps = set(ex.composition)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(comps)]
    hse_test = df[(df.fidelity == "hse") & df.composition.isin(set(test.composition))]
    oracle = TableOracle(df[df.composition.isin(set(pool_all.composition))
                            & df.fidelity.isin(["hse", "expt"])])  # fmt: skip
    data = pd.concat([pbe, hse_test, seed_rows.assign(fidelity="expt")],
                     ignore_index=True)[["formula", "fidelity", "value"]]  # fmt: skip
    data.attrs["fidelities"] = ["pbe", "hse", "expt"]
    return test, pool_all, data, oracle


def scenario_cost(seed: int, tmp: Path, skip=frozenset(), on_cell=None) -> list[dict]:
    """Cost-aware on gaps: the world of :func:`gap_cost_world`, HSE 20, an experiment 500;
    the hurdle's and the Gaussian AR1's trios (:func:`_cost_trios`)."""
    test, pool_all, data, oracle = gap_cost_world(seed)
    return _cost_cells("cost", seed, tmp, test, pool_all, data, oracle,
                       {"hse": 20.0, "expt": 500.0}, skip=skip, on_cell=on_cell)  # fmt: skip


def _trio(model, refit: int, ablation: str | None = None) -> tuple:
    """The planner, ``fixed fidelity`` and ``random`` on one model, as (name, model factory,
    every fidelity acquirable, random experiments, refit every); the planner is ``mfgp``, or
    for an ablation its name, which the other two names end with."""
    suffix = f", {ablation}" if ablation else ""
    return ((ablation or "mfgp", model, True, False, refit),
            (f"fixed fidelity{suffix}", model, False, False, refit),
            (f"random{suffix}", model, False, True, refit))  # fmt: skip


def _cost_trios(scenario: str) -> list[tuple]:
    """The cost-aware strategies of ``scenario``, one :func:`_trio` per model, in the order
    they run.

    ``cost`` (gaps): the recommended model, the hurdle (refitted every 25 rows: a hurdle fit
    takes about a minute here, three times the AR1's), then the Gaussian AR1 as the ablation
    (refitted every 10, as its cells always ran). ``cost_enthalpy``: the AR1, every 25.
    """
    if scenario == "cost":
        return [_trio(lambda: HurdleRegressor(progress=False), 25),
                _trio(_ar1, 10, "Gaussian AR1")]  # fmt: skip
    return [_trio(_ar1, 25)]


def _cost_cells(scenario: str, seed: int, tmp: Path, test, pool_all, data, oracle,
                costs: dict[str, float], skip=frozenset(), on_cell=None) -> list[dict]:
    """The cost-aware strategies on one world (:func:`_cost_trios`): per model, the
    planner (``learn`` per unit cost over every acquirable fidelity; ``mfgp``, or the
    ablation's name), ``fixed fidelity`` (``learn`` on experiments) and ``random``
    experiments, until 25 experiments' worth is spent. A hurdle is not run where the seed
    experiments hold fewer than 2 nonzero gaps (it cannot start there).

    Strategies in ``skip`` are not run; ``on_cell(item)`` is called as each cell finishes (the
    caller appends it to the partial results, so an interrupted seed resumes per strategy).
    """
    budget = BUDGET / 4 * costs["expt"]
    nonzero = int(((data.fidelity == "expt") & (data.value > 0)).sum())
    out = []
    for name, model, every_level, random_pick, refit in (
        s for trio in _cost_trios(scenario) for s in trio
    ):
        acquirable = costs if every_level else {"expt": costs["expt"]}
        if name in skip:
            continue
        est = model()
        if isinstance(est, HurdleRegressor) and nonzero < 2:
            # the hurdle refuses to fit its positive part on fewer than 2 nonzero gaps (a
            # user is told to measure non-metals first): this seed has no hurdle cells, as in
            # bench_planner's cold start, and the summary pairs the hurdle's trio on the rest
            print(f"{scenario} {name} seed {seed}: {nonzero} nonzero seed experiments, the "
                  "hurdle cannot start: not run", flush=True)  # fmt: skip
            continue
        camp = _campaign(tmp, f"{scenario}-{name}-{seed}", est, pool_all.formula.tolist(),
                         data, acquirable, "learn", seed, refit)  # fmt: skip
        t0 = time.perf_counter()
        curve = _drive(camp, oracle, np.random.default_rng(seed + 100), n_max=budget,
                       random_pick=random_pick, cost_of=costs.get,
                       checkpoint=_mae_checkpoint(test, costs))  # fmt: skip
        camp.close()
        out.append({"scenario": scenario, "strategy": name, "seed": seed, "curve": curve,
                    "model": _label(est), "refit_every": refit,
                    "seconds": time.perf_counter() - t0})  # fmt: skip
        print(scenario, name, seed, [(c["spent"], round(c["mae"], 3)) for c in curve],
              f"{out[-1]['seconds']:.0f} s", flush=True)
        if on_cell is not None:
            on_cell(out[-1])
    return out


#: the enthalpy cost-aware scenario's prices: a DFT value 20, an experiment 500 (the gaps'
#: HSE-to-experiment ratio, fixed before the first run)
COST_ENTHALPY = {"oqmd": 20.0, "mp": 20.0, "expt": 500.0}


def enthalpy_cost_world(seed: int):
    """``(test, pool, data, oracle)`` of ``cost_enthalpy``: the compositions with an
    experimental, an OQMD and an MP value (150 held out, their DFT values known); the pool's
    DFT values hidden until bought; 10 seed experiments."""
    df = load_formation_enthalpy()
    _, test, pool_all, seed_rows = _cost_world(df, ("oqmd", "mp"), seed)
    dft_test = df[(df.fidelity != "expt") & df.composition.isin(set(test.composition))]
    oracle = TableOracle(df[df.composition.isin(set(pool_all.composition))])
    data = pd.concat([dft_test, seed_rows.assign(fidelity="expt")],
                     ignore_index=True)[["formula", "fidelity", "value"]]  # fmt: skip
    data.attrs["fidelities"] = list(df.attrs["fidelities"])
    return test, pool_all, data, oracle


def scenario_cost_enthalpy(seed: int, tmp: Path, skip=frozenset(),
                           on_cell=None) -> list[dict]:  # fmt: skip
    """Cost-aware on formation enthalpies: OQMD and MP values bought beside experiments.

    The world of :func:`enthalpy_cost_world`; a budget of 25 experiments' worth (12,500);
    ``mfgp`` (the AR1, ``learn`` per unit cost over every fidelity) against ``fixed
    fidelity`` (``learn`` on experiments only) and ``random`` experiments.
    """
    test, pool_all, data, oracle = enthalpy_cost_world(seed)
    return _cost_cells("cost_enthalpy", seed, tmp, test, pool_all, data, oracle, COST_ENTHALPY,
                       skip=skip, on_cell=on_cell)  # fmt: skip


LEARN_SCENARIO = {"gap": "learn", "enthalpy": "learn_enthalpy"}
SCENARIOS = {"learn": scenario_learn, "window": scenario_window, "cost": scenario_cost,
             "learn_enthalpy": lambda seed, tmp, skip=frozenset(), on_cell=None: scenario_learn(
                 seed, tmp, skip, target="enthalpy", on_cell=on_cell),
             "cost_enthalpy": scenario_cost_enthalpy}  # fmt: skip


# -- summary -----------------------------------------------------------------------------
def _interp_reach(curve: list[dict], level: float, x: str = "experiments") -> float:
    """The first x at which the MAE curve reaches ``level`` (linear between checkpoints)."""
    for a, b in zip(curve, curve[1:]):
        if b["mae"] <= level:
            if a["mae"] <= level:
                return float(a[x])
            t = (a["mae"] - level) / (a["mae"] - b["mae"])
            return float(a[x] + t * (b[x] - a[x]))
    return float("nan")


def _at(curve: list[dict], x: str, grid: list[float], y: str) -> list[float]:
    """``y`` of the last checkpoint at or before each grid point (a step curve)."""
    xs = np.array([c[x] for c in curve], dtype=float)
    ys = np.array([c[y] for c in curve], dtype=float)
    return [float(ys[np.searchsorted(xs, g, side="right") - 1]) for g in grid]


def _groups(scenario: str) -> list[set[str]] | None:
    """The strategies of ``scenario`` that are summarised on the same seeds, group by group
    (``None``: one group, every strategy it has). A cost-aware model's trio is compared within
    itself (EF against its own fixed fidelity), so the hurdle's trio and the Gaussian AR1's
    are two groups: a seed the hurdle has not reached yet still counts for the AR1."""
    if scenario in LEARN_SCENARIO.values():
        target = next(t for t, name in LEARN_SCENARIO.items() if name == scenario)
        return [{s[0] for s in _learn_strategies(target)}]
    if scenario in ("cost", "cost_enthalpy"):
        return [{s[0] for s in trio} for trio in _cost_trios(scenario)]
    return None


def _required(scenario: str) -> set[str] | None:
    """The strategies a seed of ``scenario`` must have finished (``None``: every one it has)."""
    groups = _groups(scenario)
    return set().union(*groups) if groups is not None else None


def paired(records: list[dict]) -> list[dict]:
    """The records of the seeds that have finished every strategy of their group.

    The strategies of a group (:func:`_groups`; by default all of a scenario's) are summarised
    on the same seeds: a seed still running, or one run for some strategies only
    (``LEARN_STRATEGIES``), waits until all of its group's current strategies are done (the
    partial file keeps its cells; what waits is printed). A strategy no longer run (a retired
    one left in the partial file) is not required.
    """
    present: dict[str, set] = {}
    done: dict[tuple, set] = {}
    for r in records:
        present.setdefault(r["scenario"], set()).add(r["strategy"])
        done.setdefault((r["scenario"], r["seed"]), set()).add(r["strategy"])
    groups = {sc: [g & names for g in (_groups(sc) or [names])] for sc, names in present.items()}

    def need(sc: str, strategy: str) -> set[str]:
        """The group of ``strategy``; a retired one needs every current strategy."""
        return next((g for g in groups[sc] if strategy in g), set().union(*groups[sc]))

    for (sc, seed), names in sorted(done.items(), key=str):
        for g in groups[sc]:
            if (missing := g - names) and g & names:
                print(f"{sc} seed {seed} waits for {sorted(missing)}: not summarised", flush=True)
    return [r for r in records
            if done[(r["scenario"], r["seed"])] >= need(r["scenario"], r["strategy"])]  # fmt: skip


def summarize(records: list[dict]) -> dict[str, pd.DataFrame]:
    """Median (and range) over seeds of each strategy, per scenario (:func:`paired` seeds)."""
    records = paired(records)
    out = {}
    for scenario, what, unit in (("learn", "learn the map", "eV"),
                                 ("learn_enthalpy", "learn the map on formation enthalpies",
                                  "eV/atom")):  # fmt: skip
        learn = [r for r in records if r["scenario"] == scenario]
        if not learn:
            continue
        grid = list(range(0, BUDGET + 1, REFIT))
        rows = []
        for name in dict.fromkeys(r["strategy"] for r in learn):
            runs = [r for r in learn if r["strategy"] == name]
            maes = np.array([_at(r["curve"], "experiments", grid, "mae") for r in runs])
            row = {"strategy": name, "model": runs[0].get("model", "MultiFidelityRegressor"),
                   "seeds": len(runs)}  # fmt: skip
            row.update({f"mae_{g}": float(np.median(maes[:, i])) for i, g in enumerate(grid)})
            row[f"mae_{grid[-1]}_range"] = f"{maes[:, -1].min():.3f}-{maes[:, -1].max():.3f}"
            rows.append(row)
        out[f"{what}: held-out MAE ({unit}) after n experiments, median over seeds"] = \
            pd.DataFrame(rows)
        scored = [r for r in learn if "nlpd" in r["curve"][0]]  # cells run before the column
        for key, label in (("nlpd", "NLPD"), ("coverage_90", "90% interval coverage")):
            rows = []
            for name in dict.fromkeys(r["strategy"] for r in scored):
                runs = [r for r in scored if r["strategy"] == name]
                vals = np.array([_at(r["curve"], "experiments", grid, key) for r in runs])
                rows.append({"strategy": name, "seeds": len(runs),
                             **{f"{key}_{g}": float(np.median(vals[:, i]))
                                for i, g in enumerate(grid)}})  # fmt: skip
            if rows:
                note = ("; the hurdle's has a point mass at 0, so its NLPD is not comparable "
                        "with a Gaussian's" if key == "nlpd" and scenario == "learn" else "")
                out[f"{what}: held-out {label} (the model's predictive of a new measurement"
                    f"{note}) after n experiments, median over seeds"] = pd.DataFrame(rows)
    window = [r for r in records if r["scenario"] == "window"]
    if window:
        w = pd.DataFrame([{"strategy": r["strategy"], "seed": r["seed"],
                           **{f"hits_{k}": v for k, v in r["hits_at"].items()}}
                          for r in window])  # fmt: skip
        hits_k = [k for k in (25, 50, 100) if k <= BUDGET]
        t = w.groupby("strategy", sort=False).agg(
            **{f"hits_{k}_{s}": (f"hits_{k}", s) for k in hits_k for s in ("mean", "std")},
            seeds=("seed", "count")).reset_index()  # fmt: skip
        rand = t.set_index("strategy").get("hits_50_mean", pd.Series(dtype=float))
        if "random" in rand.index and rand["random"] > 0:
            t["hits_50_vs_random"] = t["hits_50_mean"] / rand["random"]
        out["window hits (gap in [1.1, 1.7] eV) after n experiments, mean and std over seeds"] = t
    for scenario, title, cheap in (
        ("cost", "cost-aware (HSE 20, experiment 500): held-out MAE (eV) after spending c, "
         "median", ("hse",)),
        ("cost_enthalpy", "cost-aware formation enthalpies (OQMD 20, MP 20, experiment 500): "
         "held-out MAE (eV/atom) after spending c, median", ("n_oqmd", "n_mp")),
    ):  # fmt: skip
        cost = [r for r in records if r["scenario"] == scenario]
        if not cost:
            continue
        top = BUDGET / 4 * 500
        grid = [top * f for f in (0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        rows = []
        for name in dict.fromkeys(r["strategy"] for r in cost):
            runs = [r for r in cost if r["strategy"] == name]
            row = {"strategy": name, "model": runs[0].get("model"), "seeds": len(runs),
                   "refit_every": runs[0].get("refit_every")}  # fmt: skip
            for key in ("mae", "experiments", *cheap):
                vals = np.array([_at(r["curve"], "spent", grid, key) for r in runs])
                for i, g in enumerate(grid):
                    if key == "mae" or i == len(grid) - 1:
                        row[f"{key}_{g:g}"] = float(np.median(vals[:, i]))
            rows.append(row)
        out[title] = pd.DataFrame(rows)
    return out


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid_axes = plt.subplots(2, 3, figsize=(16, 9))
    axes = grid_axes.ravel()
    axes[5].axis("off")
    for ax, scenario, x, y, title, ylabel in (
        (axes[0], "learn", "experiments", "mae", "band gaps: learn the map",
         "held-out experimental gap MAE (eV)"),
        (axes[1], "learn_enthalpy", "experiments", "mae", "formation enthalpies: learn the map",
         "held-out experimental MAE (eV/atom)"),
        (axes[2], "window", "experiments", "hits",
         "band gaps: window 1.1-1.7 eV\n(Gaussian AR1; bench_planner has the hurdle)",
         "experiments with a gap in the window"),
        (axes[3], "cost", "spent", "mae", "band gaps: cost-aware (HSE 20, experiment 500)",
         "held-out experimental gap MAE (eV)"),
        (axes[4], "cost_enthalpy", "spent", "mae",
         "formation enthalpies: cost-aware\n(OQMD 20, MP 20, experiment 500)",
         "held-out experimental MAE (eV/atom)"),
    ):
        runs = [r for r in records if r["scenario"] == scenario]
        if not runs:
            ax.set_title(f"{title}\n(not run yet)", fontsize=10)
            ax.axis("off")
            continue
        for name in dict.fromkeys(r["strategy"] for r in runs):
            curves = [pd.DataFrame(r["curve"]) for r in runs if r["strategy"] == name]
            grid = np.unique(np.concatenate([c[x].to_numpy() for c in curves]))
            ys = np.array([np.interp(grid, c[x], c[y]) for c in curves])
            med = np.median(ys, 0)
            model = next(r.get("model", "") for r in runs if r["strategy"] == name)
            label = f"{name} (hurdle)" if model.startswith("HurdleRegressor") else name
            (line,) = ax.plot(grid, med, label=label)
            ax.fill_between(grid, ys.min(0), ys.max(0), alpha=0.15, color=line.get_color())
        ax.set_xlabel("experiments acquired" if x == "experiments" else "cost spent")
        ax.set_ylabel(ylabel)
        ax.set_title(title + "\n(median over seeds; band: min to max)", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    records = read_partial(PARTIAL)
    done = {(r["scenario"], r["seed"]) for r in records}
    only = os.environ.get("SCENARIOS",
                          "learn,learn_enthalpy,window,cost,cost_enthalpy").split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(SEEDS):
            for name in only:
                if name in ("learn", "learn_enthalpy"):  # resumable per strategy
                    ran = frozenset(r["strategy"] for r in records
                                    if r["scenario"] == name and r["seed"] == seed)
                    wanted = _required(name)
                    if LEARN_ONLY:
                        wanted &= set(LEARN_ONLY)
                    if not wanted <= ran:  # a finished seed does not rebuild its world
                        SCENARIOS[name](seed, Path(tmp), skip=ran,
                                        on_cell=lambda item: append_partial(PARTIAL, [item]))
                    continue
                elif name in ("cost", "cost_enthalpy"):  # resumable per strategy, cell by cell
                    ran = frozenset(r["strategy"] for r in records
                                    if r["scenario"] == name and r["seed"] == seed)
                    # a seed whose hurdle cells cannot run (too few nonzero gaps) is
                    # entered again on each run: its world is rebuilt and the skip said
                    if not _required(name) <= ran:
                        SCENARIOS[name](seed, Path(tmp), skip=ran,
                                        on_cell=lambda item: append_partial(PARTIAL, [item]))
                    continue
                elif (name, seed) in done:
                    continue
                else:
                    items = SCENARIOS[name](seed, Path(tmp))
                append_partial(PARTIAL, items)
    records = read_partial(PARTIAL)  # every cell as stamped: with its commit and time
    sections = summarize(records)
    flat = [{k: v for k, v in r.items() if k != "curve"} for r in records]
    write_results(NAME, records, table=pd.DataFrame(flat).drop(columns=["hits_at"],
                  errors="ignore"), sections=sections)  # fmt: skip
    plot(paired(records), RESULTS / f"{NAME}.png")


if __name__ == "__main__":
    main()
