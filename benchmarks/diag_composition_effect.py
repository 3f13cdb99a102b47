"""Development check of the composition effect: on or off, on the dev folds only.

The default of ``MultiFidelityRegressor(composition_effect=...)`` (``False``) was chosen here, on fold seed
0 (the development split of ``bench_architectures``, whose tables report seed 1), never on
the reported folds. Rows: the AR1 on magpie features with ``composition_effect`` True and
False, the architectures table's settings (``GP_OPTIONS``), and the hurdle (band gaps) with
its regression's effect on and off, on the first ``--max-folds`` random and chemical-system
folds of both datasets. Besides MAE, NLPD and 90% coverage of the
held-out experiments, each cell records how far the model's prediction *at the lowest
fidelity* is from the held-out compositions' own lowest-fidelity value (``own_low_mae``: a
composition's own PBE gap, or OQMD enthalpy, which the model was given) and the fitted share
of the lowest level's residual variance put in the composition effect.

Run: ``python benchmarks/diag_composition_effect.py`` (about 40 minutes on 2 cores);
finished cells are kept in ``results/.diag_composition_effect.partial.jsonl``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _common import RESULTS, append_partial, read_partial, write_results
from bench_architectures import GP_OPTIONS, datasets
from mfgp.calibration import evaluate
from mfgp.data import Folds, grouped_kfold, kfold
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.kernels.effect import WithCompositionEffect

PARTIAL = RESULTS / ".diag_composition_effect.partial.jsonl"
ROWS = ("ar1_effect", "ar1_noeffect", "hurdle_effect", "hurdle_noeffect")


def effect_share(model: MultiFidelityRegressor) -> float:
    """``s^2 / (s^2 + sigma_0^2)`` of the lowest level (``nan`` without an effect)."""
    gp = model.model_.model
    k0 = gp.covar_module.data_kernels[0]
    if not isinstance(k0, WithCompositionEffect):
        return float("nan")
    s2 = float(k0.effect.variance.detach())
    return s2 / (s2 + float(gp.likelihood.noise.reshape(-1)[0]))


def make(name: str, seed: int):
    effect = name.endswith("_effect")
    if name.startswith("hurdle"):
        return HurdleRegressor(seed=seed, progress=False, regressor_options={
            **GP_OPTIONS, "composition_effect": effect})  # fmt: skip
    return MultiFidelityRegressor("ar1", composition_effect=effect, seed=seed, progress=False,
                                  **GP_OPTIONS)  # fmt: skip


def run_cell(ds, folds, k: int, name: str, seed: int, nonzero: bool) -> list[dict]:
    (train, test), = list(Folds((folds.test_compositions[k],), folds.kind, folds.seed).split(ds))
    model = make(name, seed)
    held = ds.frame["composition"].iloc[test].tolist()
    t0 = time.perf_counter()
    model.fit(ds.subset(train), candidates=held)
    seconds = time.perf_counter() - t0
    X, Y, _ = ds.tensors(test)
    y = Y[:, 0].numpy()
    pred = model.predictive(X)
    subsets = {"all": np.arange(y.size)}
    if nonzero:
        subsets["nonzero"] = np.flatnonzero(y > 0)
    # each held-out composition's own lowest-fidelity value, and the model's prediction there
    f = ds.frame
    low = f[(f["fidelity_index"] == 0) & f["composition"].isin(set(held))]
    own_mae = float("nan")
    if len(low) and not name.startswith("hurdle"):
        own = model.predict(low["composition"].tolist(), fidelity=ds.fidelities[0])
        own_mae = float(np.mean(np.abs(own - low["value"].to_numpy())))
    regressor = getattr(model, "regressor_", model)
    return [{"dataset": None, "folds": folds.kind, "fold": k, "seed": seed, "model": name,
             "subset": subset, "fit_seconds": seconds, "own_low_mae": own_mae,
             "own_low_rows": int(len(low)), "effect_share": effect_share(regressor),
             **{m: float(v) for m, v in evaluate(y[idx], pred.subset(idx)).items()}}
            for subset, idx in subsets.items()]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="expt_gap,expt_form")
    ap.add_argument("--max-folds", type=int, default=1)
    ap.add_argument("--folds", default="random,chemsys")
    ap.add_argument("--models", default=",".join(ROWS))
    ap.add_argument("--seed", type=int, default=0, help="fold seed (0: the development split)")
    args = ap.parse_args()
    done = {(r["dataset"], r["folds"], r["fold"], r["model"]): r for r in read_partial(PARTIAL)
            if r.get("seed") == args.seed and r["subset"] == "all"}  # fmt: skip
    records = [r for r in read_partial(PARTIAL) if r.get("seed") == args.seed]
    for dname, spec in datasets(args.datasets.split(",")).items():
        ds = spec["main"]
        for kind in args.folds.split(","):
            folds = (kfold if kind == "random" else grouped_kfold)(ds, 5, args.seed)
            for k in range(args.max_folds):
                for name in ROWS:
                    if (dname, kind, k, name) in done or name not in args.models.split(","):
                        continue
                    if name.startswith("hurdle") and not spec["nonzero"]:
                        continue
                    cell = run_cell(ds, folds, k, name, args.seed, spec["nonzero"])
                    for r in cell:
                        r["dataset"] = dname
                    append_partial(PARTIAL, cell)
                    records += cell
                    r = cell[0]
                    print(f"{dname} {kind} {k} {name:<13} mae {r['mae']:.3f} nlpd "
                          f"{r['nlpd']:.2f} cov90 {r['coverage_90']:.2f} own-low "
                          f"{r['own_low_mae']:.3f} share {r['effect_share']:.2f} "
                          f"fit {r['fit_seconds']:.0f} s", flush=True)  # fmt: skip
    df = pd.DataFrame(records)
    table = (df.groupby(["dataset", "folds", "subset", "model"])[
        ["mae", "nlpd", "coverage_90", "own_low_mae", "effect_share", "fit_seconds"]]
        .mean().round(3).reset_index())  # fmt: skip
    write_results("diag_composition_effect", records, table=table)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
