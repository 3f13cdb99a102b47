"""The planner's evidence in one place: every campaign scenario's summary in bench_campaign.json.

Issue #33 asks ``benchmarks/results/bench_campaign.json`` for a top-level ``summary``
``{scenario: {strategy: {"af", "af_ci", "ef", "ef_ci", ...}}}`` with the recommended strategy
as ``mfgp``. The scenarios are run by three scripts; this one reads their committed results
and writes the summary (nothing is rerun, nothing is tuned here):

* ``learn`` and ``cost`` from ``bench_campaign.json``'s own records (``bench_campaign.py``;
  the Gaussian AR1 on band gaps, 5 and 4 seeds). ``learn``: held-out MAE of the experimental
  gaps against experiments acquired. EF = random's MAE / the strategy's after 100
  experiments (above 1: better than random); AF = 100 / the experiments the strategy's mean
  curve needs to reach the MAE random's mean curve has after 100 (linear between the
  measured points; 0: never reached within 100; random's is 1 by definition). Random's mean
  curve is nearly flat after 20 experiments (0.49 to 0.46 eV), so this AF mostly says how
  early a strategy's curve drops below random's end point: EF is the steadier number.
  ``cost``: EF = fixed fidelity's MAE / the strategy's after the budget (12,500) is spent.
* ``window`` and ``cold`` from ``bench_planner.json`` (hurdle on PBE + experiment, 10 seeds;
  EF, AF as defined there).
* ``showcase_hartmann6`` from ``bench_showcase.json`` (BoTorch's discrete multi-fidelity
  tutorial problem; regrets and costs to reach them).

Every scenario records its source file, the commit its numbers ran on, the model and the
seeds. Scenarios issue #33 names that no script runs yet are listed under ``missing``.

Run: ``make bench-campaign-summary`` (also the last step of ``make bench-campaign``).
"""

from __future__ import annotations

import json

import numpy as np
from _common import RESULTS

from mfgp._io import atomic_write

N_BOOT = 2000
MISSING = {
    "best": "find the best (the most negative formation enthalpy, regret): not run yet",
    "learn_enthalpy": "learn the map on formation enthalpies: not run yet",
    "showcase_emukit": "Emukit's multi-fidelity BO example: not run yet",
}


def _ci(values: np.ndarray) -> list[float]:
    """The 2.5% and 97.5% bootstrap quantiles (no interpolation: an ``inf`` stays one)."""
    return [float(np.quantile(values, q, method="inverted_cdf")) for q in (0.025, 0.975)]


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


def _mean_curves(records: list[dict], x: str, y: str, at: float) -> tuple[np.ndarray, np.ndarray]:
    xs = None
    rows = []
    for r in records:
        cx, cy = _curve(r, x, y)
        grid = cx if xs is None else xs
        xs = grid
        rows.append(np.interp(grid, cx, cy))
    return xs, np.mean(rows, 0)


def _learn(campaign: dict) -> dict:
    recs = [r for r in campaign["records"] if r["scenario"] == "learn"]
    by = {}
    for r in recs:
        by.setdefault(r["strategy"], {})[r["seed"]] = r
    seeds = sorted(set.intersection(*(set(v) for v in by.values())))
    budget = 100
    out = {}
    rng = np.random.default_rng(0)
    boots = [rng.choice(seeds, len(seeds)) for _ in range(N_BOOT)]

    def stats(strategy, sample):
        xs, m = _mean_curves([by[strategy][s] for s in sample], "experiments", "mae", budget)
        _, mr = _mean_curves([by["random"][s] for s in sample], "experiments", "mae", budget)
        final, final_r = float(np.interp(budget, xs, m)), float(np.interp(budget, xs, mr))
        need = _reach(xs, m, final_r)
        if strategy == "random":  # by definition: the reference needs the whole budget
            need = float(budget)
        return final_r / final, budget / need if need > 0 else float("inf"), final

    for strategy in by:
        if strategy.startswith("random, "):
            continue
        ef, af, final = stats(strategy, seeds)
        bs = np.array([stats(strategy, b)[:2] for b in boots])
        out[strategy] = {"seeds": len(seeds), "mae_100": final, "ef": ef, "ef_ci": _ci(bs[:, 0]),
                         "af": af, "af_ci": _ci(bs[:, 1])}  # fmt: skip
    out["mfgp"] = dict(out.get("mfgp", {}))
    return {"source": "bench_campaign.json", "commit": campaign.get("commit"),
            "model": "Gaussian AR1 (MultiFidelityRegressor, PBE + experiment): the ablation "
                     "model; the hurdle (recommended for gaps) is not run in this scenario",
            "metric": "held-out experimental-gap MAE (eV); EF = random's MAE / the "
                      "strategy's after 100 experiments; AF = 100 / experiments the strategy needs to reach random's MAE "
                      "after 100 (0: not reached within 100); random's curve is nearly flat "
                      "after 20 experiments, so EF is the steadier number",
            "strategies": out}  # fmt: skip


def _cost(campaign: dict) -> dict:
    recs = [r for r in campaign["records"] if r["scenario"] == "cost"]
    by = {}
    for r in recs:
        by.setdefault(r["strategy"], {})[r["seed"]] = r
    seeds = sorted(set.intersection(*(set(v) for v in by.values())))
    budget = 12500.0

    def final(strategy, sample):
        vals = []
        for s in sample:
            xs, ys = _curve(by[strategy][s], "spent", "mae")
            vals.append(ys[xs <= budget + 1e-9][-1])
        return float(np.mean(vals))

    rng = np.random.default_rng(0)
    boots = [rng.choice(seeds, len(seeds)) for _ in range(N_BOOT)]
    out = {}
    for strategy in by:
        ef = final("fixed fidelity", seeds) / final(strategy, seeds)
        bs = [final("fixed fidelity", b) / final(strategy, b) for b in boots]
        out[strategy] = {"seeds": len(seeds), "mae_at_budget": final(strategy, seeds),
                         "ef": ef, "ef_ci": _ci(np.array(bs))}  # fmt: skip
    return {"source": "bench_campaign.json", "commit": campaign.get("commit"),
            "model": "Gaussian AR1 on PBE + HSE + experiment (HSE 20, experiment 500)",
            "metric": "held-out experimental-gap MAE (eV) after 12,500 spent; EF = fixed "
                      "fidelity's MAE / the strategy's (above 1: the cheap level helped)",
            "strategies": out}  # fmt: skip


def main() -> None:
    campaign = _load("bench_campaign")
    if campaign is None:
        raise SystemExit("results/bench_campaign.json is missing: run make bench-campaign")
    summary: dict = {}
    if any(r["scenario"] == "learn" for r in campaign["records"]):
        summary["learn"] = _learn(campaign)
    if any(r["scenario"] == "cost" for r in campaign["records"]):
        summary["cost"] = _cost(campaign)
    planner = _load("bench_planner")
    if planner is not None:
        for scenario, cells in planner.get("summary", {}).items():
            summary[scenario] = {
                "source": "bench_planner.json", "commit": planner.get("commit"),
                "model": "HurdleRegressor() on PBE + experiment (mfgp); the Gaussian AR1 as "
                         "'ar1 window'",
                "metric": "window hits (experimental gap in [1.1, 1.7] eV) after 50 "
                          "experiments; EF and AF against random (Rohr et al. 2020)",
                "strategies": cells}  # fmt: skip
    showcase = _load("bench_showcase")
    if showcase is not None:
        for scenario, cells in showcase.get("summary", {}).items():
            summary[scenario] = {
                "source": "bench_showcase.json", "commit": showcase.get("commit"),
                "commits": showcase.get("commits"),
                "model": "mfgp AR1Spec() on the pool; BoTorch SingleTaskMultiFidelityGP",
                "metric": "simple regret of the posterior-mean recommendation against the "
                          "money spent (cost 0.25 + s)",
                "strategies": cells}  # fmt: skip
    summary["missing"] = {k: v for k, v in MISSING.items() if k not in summary}
    campaign["summary"] = summary
    with atomic_write(RESULTS / "bench_campaign.json") as fh:
        json.dump(campaign, fh, indent=1)
    for scenario, cell in summary.items():
        if scenario == "missing":
            continue
        mf = cell["strategies"].get("mfgp", {})
        print(f"{scenario:22s} mfgp: " + ", ".join(
            f"{k}={v:.3g}" for k, v in mf.items() if isinstance(v, float)))  # fmt: skip


if __name__ == "__main__":
    main()
