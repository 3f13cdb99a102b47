"""The planner's evidence in one place: every campaign scenario's summary in bench_campaign.json.

Issue #33 asks ``benchmarks/results/bench_campaign.json`` for a top-level ``summary``
``{scenario: {strategy: {"af", "af_ci", "ef", "ef_ci", ...}}}`` with the recommended strategy
as ``mfgp``. The scenarios are run by five scripts; this one reads their committed results
and writes the summary (nothing is rerun, nothing is tuned here):

* ``learn``, ``learn_enthalpy`` and ``cost`` from ``bench_campaign.json``'s own records
  (``bench_campaign.py``). ``learn`` (band gaps: the hurdle as ``mfgp``, the Gaussian AR1 as
  an ablation) and ``learn_enthalpy`` (the AR1 on OQMD + MP + experiment): held-out MAE of
  the experimental values against experiments acquired. EF = random's MAE / the strategy's
  after 100 experiments (above 1: better than random), where ``random`` is the recommended
  model with random experiments; AF = 100 / the experiments the strategy's mean curve needs
  to reach the MAE random's mean curve has after 100 (linear between the measured points; 0:
  never reached within 100), by the same rule for random (whose own AF is above 1 where its
  curve flattens early: then AF does not separate the strategies and EF is the number to
  read). ``ef_own`` / ``af_own``: against the strategy's own model with random experiments.
  ``cost`` (the hurdle on PBE + HSE + experiment as ``mfgp``, the Gaussian AR1 as an
  ablation) and ``cost_enthalpy`` (the AR1 on OQMD + MP + experiment, DFT values bought):
  EF = the same model's fixed-fidelity MAE / the strategy's after the budget (12,500) is
  spent, on the seeds that model's three strategies finished.
* ``window`` and ``cold`` from ``bench_planner.json`` (hurdle on PBE + experiment, 10 seeds;
  EF, AF as defined there).
* ``best`` from ``bench_best.json`` (the AR1 on OQMD + MP + experiment, the most negative
  formation enthalpy as regret).
* ``showcase_hartmann6`` from ``bench_showcase.json`` (BoTorch's discrete multi-fidelity
  tutorial problem; regrets and costs to reach them).
* ``showcase_emukit_forrester`` from ``bench_showcase_emukit.json`` (Emukit's multi-fidelity
  BO example, the Forrester function at two fidelities; regrets and costs to reach them).

Every scenario records its source file, the commit its numbers ran on, the model and the
seeds. Scenarios issue #33 names that no script runs yet are listed under ``missing``.

Run: ``make bench-campaign-summary`` (also the last step of ``make bench-campaign``).
"""

from __future__ import annotations

import json
import math

import numpy as np
from _common import RESULTS

from mfgp._io import atomic_write

N_BOOT = 2000
MISSING = {
    "learn_enthalpy": "learn the map on formation enthalpies: not run yet",
    "showcase_emukit_forrester": "Emukit's multi-fidelity BO example: not run yet",
    "cost_enthalpy": "cost-aware on formation enthalpies (MP and OQMD values acquirable at low "
                     "cost beside experiments): not run yet",
}


def _ci(values: np.ndarray) -> list[float]:
    """The 2.5% and 97.5% bootstrap quantiles (no interpolation: an ``inf`` stays one)."""
    return [float(np.quantile(values, q, method="inverted_cdf")) for q in (0.025, 0.975)]


def _commits(payload: dict, scenario: str | None = None) -> list[str]:
    """The commits the records ran on (each record's own), else the file's."""
    recs = [r for r in payload.get("records", [])
            if scenario is None or r.get("scenario", scenario) == scenario]  # fmt: skip
    found = sorted({r["commit"] for r in recs if r.get("commit")})
    return found or [payload.get("commit")]


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _curve(record: dict, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((p[x], p[y]) for p in record["curve"])
    return np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)


def _reach(xs: np.ndarray, ys: np.ndarray, target: float) -> float:
    """The first x at which the (decreasing-is-better) curve reaches ``target``, interpolated;
    ``inf`` if it never does."""
    for i in range(len(xs)):
        if ys[i] <= target:
            if i == 0:
                return float(xs[0])
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1)) if y0 != y1 else float(x1)
    return float("inf")


def _mean_curves(records: list[dict], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """The records' mean curve on the first record's x grid."""
    xs = _curve(records[0], x, y)[0]
    return xs, np.mean([np.interp(xs, *_curve(r, x, y)) for r in records], 0)


def _learn(campaign: dict, scenario: str = "learn") -> dict:
    """EF and AF of every strategy of a learn-the-map scenario against ``random``.

    ``random`` is the recommended model with random experiments. A strategy with its own
    random twin (``random, <strategy>``: the same acquisitions, its own model) also gets
    ``ef_own`` / ``af_own`` against it, so an ablation model's planner is judged on its model.
    """
    recs = [r for r in campaign["records"] if r["scenario"] == scenario]
    by = {}
    for r in recs:
        by.setdefault(r["strategy"], {})[r["seed"]] = r
    seeds = sorted(set.intersection(*(set(v) for v in by.values())))
    budget = 100
    unit = "eV/atom" if scenario == "learn_enthalpy" else "eV"
    out = {}
    rng = np.random.default_rng(0)
    boots = [rng.choice(seeds, len(seeds)) for _ in range(N_BOOT)]

    def stats(strategy, reference, sample):
        xs, m = _mean_curves([by[strategy][s] for s in sample], "experiments", "mae")
        _, mr = _mean_curves([by[reference][s] for s in sample], "experiments", "mae")
        final, final_r = float(np.interp(budget, xs, m)), float(np.interp(budget, xs, mr))
        need = _reach(xs, m, final_r)  # the same rule for every strategy, random included
        return final_r / final, budget / need if need > 0 else float("inf"), final

    for strategy in by:
        if strategy.startswith("random, "):
            continue
        ef, af, final = stats(strategy, "random", seeds)
        bs = np.array([stats(strategy, "random", b)[:2] for b in boots])
        first = by[strategy][seeds[0]]
        model = first.get("model") or ("MultiFidelityRegressor('single')"  # cells run before
                                       if strategy.startswith("single") else  # the column
                                       "MultiFidelityRegressor('ar1')")  # fmt: skip
        out[strategy] = {"seeds": len(seeds), "model": model,
                         "mae_100": final, "ef": ef, "ef_ci": _ci(bs[:, 0]),
                         "af": af, "af_ci": _ci(bs[:, 1])}  # fmt: skip
        twin = f"random, {strategy}"
        if twin in by:
            ef_own, af_own, _ = stats(strategy, twin, seeds)
            bs = np.array([stats(strategy, twin, b)[:2] for b in boots])
            out[strategy].update({"ef_own": ef_own, "ef_own_ci": _ci(bs[:, 0]),
                                  "af_own": af_own, "af_own_ci": _ci(bs[:, 1]),
                                  "mae_100_own_random": stats(twin, twin, seeds)[2]})  # fmt: skip
    models = {s: c["model"] for s, c in out.items()}
    return {"source": "bench_campaign.json", "commit": _commits(campaign, scenario),
            "model": ("the recommended model (mfgp and random): " + str(models.get("mfgp"))
                      + "; the others: " + ", ".join(f"{s}: {m}" for s, m in models.items()
                                                     if s not in ("mfgp", "random"))),
            "metric": f"held-out experimental MAE ({unit}); EF = random's MAE / the "
                      "strategy's after 100 experiments; AF = 100 / experiments the strategy's "
                      "mean curve needs to reach random's MAE after 100 (0: not reached within "
                      "100; the same rule gives random its own AF, which is above 1 where "
                      "random's curve flattens early); random is the recommended model with "
                      "random experiments; ef_own / af_own: against the strategy's own model "
                      "with random experiments",
            "strategies": out}  # fmt: skip


def _cost(campaign: dict, scenario: str = "cost") -> dict:
    recs = [r for r in campaign["records"] if r["scenario"] == scenario]
    by: dict[str, dict] = {}
    for r in recs:
        by.setdefault(r["strategy"], {})[r["seed"]] = r
    budget = 12500.0

    def final(strategy, sample):
        vals = []
        for s in sample:
            xs, ys = _curve(by[strategy][s], "spent", "mae")
            vals.append(ys[xs <= budget + 1e-9][-1])
        return float(np.mean(vals))

    out = {}
    # each model's trio (the planner, "fixed fidelity[, model]", "random[, model]") on the
    # seeds all three finished; EF against the same model's fixed fidelity
    for reference in [n for n in by if n.startswith("fixed fidelity")]:
        suffix = reference.removeprefix("fixed fidelity")
        group = [n for n in by if n in (suffix.removeprefix(", ") or "mfgp", reference,
                                        f"random{suffix}")]  # fmt: skip
        seeds = sorted(set.intersection(*(set(by[n]) for n in group)))
        if not seeds:
            print(f"{scenario}: {group} share no seed: not summarised")
            continue
        rng = np.random.default_rng(0)
        boots = [rng.choice(seeds, len(seeds)) for _ in range(N_BOOT)]
        for strategy in group:
            ef = final(reference, seeds) / final(strategy, seeds)
            bs = [final(reference, b) / final(strategy, b) for b in boots]
            out[strategy] = {"seeds": len(seeds), "mae_at_budget": final(strategy, seeds),
                             "ef": ef, "ef_ci": _ci(np.array(bs)), "reference": reference,
                             "model": by[strategy][seeds[0]].get("model")}  # fmt: skip
    if left := sorted(set(by) - set(out)):  # a planner or random without its fixed fidelity
        print(f"{scenario}: {left} have no reference on their seeds: not summarised")
    if scenario == "cost_enthalpy":
        return {"source": "bench_campaign.json", "commit": _commits(campaign, scenario),
                "model": "AR1 on OQMD + MP + experiment (a DFT value 20, an experiment 500; "
                         "the pool's DFT values bought, the held-out ones known)",
                "metric": "held-out experimental formation-enthalpy MAE (eV/atom) after 12,500 "
                          "spent; EF = fixed fidelity's MAE / the strategy's (above 1: the "
                          "cheap levels helped)",
                "strategies": out}  # fmt: skip
    return {"source": "bench_campaign.json", "commit": _commits(campaign, "cost") if any(
                r.get("commit") for r in recs) else ["c8bc2e4 (docs/campaigns.md; these records "
                                                     "carry no commit and were not rerun)"],
            "model": ("the hurdle on PBE + HSE + experiment as mfgp, fixed fidelity and random "
                      "(refitted every 25 rows; not run on seeds whose seed experiments hold "
                      "fewer than 2 nonzero gaps); " if "mfgp" in out else "the hurdle: not "
                      "run yet; ") + "the Gaussian AR1 as the ablation (its own fixed fidelity "
                     "and random, refitted every 10); HSE 20, experiment 500; each model's EF "
                     "on the seeds its three strategies finished",
            "metric": "held-out experimental-gap MAE (eV) after 12,500 spent; EF = the same "
                      "model's fixed-fidelity MAE / the strategy's (above 1: the cheap level "
                      "helped)",
            "strategies": out}  # fmt: skip


def main() -> None:
    campaign = _load("bench_campaign")
    if campaign is None:
        raise SystemExit("results/bench_campaign.json is missing: run make bench-campaign")
    summary: dict = {}
    for scenario in ("learn", "learn_enthalpy"):
        if any(r["scenario"] == scenario for r in campaign["records"]):
            summary[scenario] = _learn(campaign, scenario)
    for scenario in ("cost", "cost_enthalpy"):
        if any(r["scenario"] == scenario for r in campaign["records"]):
            summary[scenario] = _cost(campaign, scenario)
    planner = _load("bench_planner")
    if planner is not None:
        for scenario, cells in planner.get("summary", {}).items():
            summary[scenario] = {
                "source": "bench_planner.json", "commit": _commits(planner, scenario),
                "model": "HurdleRegressor() on PBE + experiment (mfgp); the Gaussian AR1 as "
                         "'ar1 window'",
                "metric": "window hits (experimental gap in [1.1, 1.7] eV) after 50 "
                          "experiments; EF and AF against random (Rohr et al. 2020)",
                "strategies": cells}  # fmt: skip
    best = _load("bench_best")
    if best is not None:
        for scenario, cells in best.get("summary", {}).items():
            seeds = max((c.get("seeds", 0) for c in cells.values()), default=0)
            summary[scenario] = {
                "source": "bench_best.json", "commit": _commits(best),
                "model": "MultiFidelityRegressor('ar1') on OQMD + MP + experiment, objective "
                         f"{cells.get('mfgp', {}).get('objective')} (lowest value)" + (f"; only {seeds} seeds so far (resumable)"
                                                if seeds < 10 else ""),
                "metric": "simple regret (eV/atom) of the most negative experimental formation "
                          "enthalpy found after 50 experiments; EF = random's expected regret "
                          "/ the strategy's mean",
                "strategies": cells}  # fmt: skip
    showcase = _load("bench_showcase")
    if showcase is not None:
        for scenario, cells in showcase.get("summary", {}).items():
            summary[scenario] = {
                "source": "bench_showcase.json", "commit": _commits(showcase),
                "model": "mfgp AR1Spec() on the pool; BoTorch SingleTaskMultiFidelityGP",
                "metric": "simple regret of the posterior-mean recommendation against the "
                          "money spent (cost 0.25 + s)",
                "strategies": cells}  # fmt: skip
    emukit = _load("bench_showcase_emukit")
    if emukit is not None:
        for scenario, cells in emukit.get("summary", {}).items():
            summary[scenario] = {
                "source": "bench_showcase_emukit.json", "commit": _commits(emukit),
                "model": "mfgp AR1Spec() on the notebook's 1,000-point grid; Emukit's "
                         "GPyLinearMultiFidelityModel as its notebook sets it",
                "metric": "simple regret of the posterior-mean recommendation at high fidelity "
                          "against the money spent (low 1, high 5)",
                "strategies": cells}  # fmt: skip
    summary["missing"] = {k: v for k, v in MISSING.items() if k not in summary}
    campaign["summary"] = summary
    with atomic_write(RESULTS / "bench_campaign.json") as fh:
        json.dump(campaign, fh, indent=1)
    text = render(summary)
    with atomic_write(RESULTS / "bench_campaign_summary.md") as fh:
        fh.write(text)
    print(text)


def _fmt(v) -> str:
    if isinstance(v, list):
        return "-".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.3g}"
    return str(v)


#: the headline number of each scenario: (key, CI key, what it is, larger is better)
HEADLINE = {
    "learn": ("ef", "ef_ci", "EF (random's MAE / the strategy's after 100)", True),
    "learn_enthalpy": ("ef", "ef_ci", "EF (random's MAE / the strategy's after 100)", True),
    "cost": ("ef", "ef_ci", "EF (the same model's fixed-fidelity MAE / the strategy's at the "
             "budget)", True),
    "cost_enthalpy": ("ef", "ef_ci", "EF (fixed fidelity's MAE / the strategy's at the budget)",
                      True),
    "window": ("ef", "ef_ci", "EF (hits / random's expected hits after 50)", True),
    "cold": ("ef", "ef_ci", "EF (hits / random's expected hits after 50)", True),
    "best": ("ef", "ef_ci", "EF (random's expected regret / the strategy's after 50)", True),
    "showcase_hartmann6": ("regret_final_median", "regret_final_ci",
                           "median simple regret after spending 30", False),
    # every strategy ends near the search grid's floor (regret 1.3e-4): the cost of getting
    # there is what separates them
    "showcase_emukit_forrester": ("cost_to_0.01_median", "cost_to_0.01_ci",
                                  "median money spent to reach a regret of 0.01", False),
}


def render(summary: dict) -> str:
    """One markdown table per scenario: every strategy's headline number, best first."""
    out = ["# bench_campaign summary", "",
           "Written by `benchmarks/campaign_summary.py` from the committed scenario results "
           "(nothing rerun). `mfgp` is the recommended strategy of each scenario.", ""]  # fmt: skip
    for scenario, cell in summary.items():
        if scenario == "missing":
            continue
        key, ci, what, larger = HEADLINE.get(scenario, ("ef", "ef_ci", "EF", True))
        rows = [(name, c) for name, c in cell["strategies"].items()
                if isinstance(c, dict) and key in c and not name.startswith("_")]  # fmt: skip
        mine = cell["strategies"].get("mfgp")
        alias = [n for n, c in rows if n != "mfgp" and c == mine]
        if alias:  # "mfgp" names another row (the showcase's "mfgp kg"): show it once
            rows = [(f"{n} (mfgp)" if n == alias[0] else n, c) for n, c in rows if n != "mfgp"]
        rows.sort(key=lambda r: -r[1][key] if larger else r[1][key])
        out += [f"## {scenario}", "", f"{cell['model']}. Metric: {cell['metric']}. Source: "
                f"`{cell['source']}` (records ran on {', '.join(map(str, cell.get('commit', [])))}).",
                "",
                f"| strategy | seeds | {what} | 95% CI |", "|---|---|---|---|"]  # fmt: skip
        for name, c in rows:
            out.append(f"| {name} | {c.get('seeds', '')} | {_fmt(c[key])} | {_fmt(c.get(ci, ''))} |")
        out.append("")
    if summary.get("missing"):
        out += ["## Not run yet", ""] + [f"- `{k}`: {v}" for k, v in summary["missing"].items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
