"""The architectures table: every mfgp model, with and without deep features, against baselines.

Datasets (targets: experimental values; folds over the experimental compositions):

* ``expt_gap``: all 4,604 Matbench experimental band gaps, MP PBE gaps as the lower fidelity
  (compositions without a PBE value are predicted from their features alone); the ``+hse`` row
  adds the Chen 2021 HSE gaps as a middle fidelity (PBE -> HSE -> experiment).
* ``expt_form``: Kim 2017 experimental formation enthalpies with OQMD and MP as lower fidelities.

Folds: 5-fold seeded random and 5-fold grouped by chemical system, the same for every row
(lower-fidelity values of held-out compositions stay visible: a screening setting, see
``mfgp.calibration.cv``). The reported folds are those of seed 1 (``--seed``); seed 0's folds
are the development split on which defaults were chosen (the latent lengthscale bound,
``training="auto"``, the linear ``k_rho`` term), and are never reported. Deep features: one
extractor per dataset, pretrained once on the large DFT pool (49,546 PBE gaps; 132,752 Matbench
``mp_e_form`` energies) and frozen.

Rows: ``single``, ``ar1``, ``multitask``, ``latent`` on standardised magpie features
("magpie") and on the learned features ("deep"), each with the package defaults (``ar1`` is
fitted level by level, :func:`mfgp.fit.fit_ar1_recursive`); ``ar1_joint`` (all levels'
hyperparameters at once, :func:`mfgp.fit.fit_gp`) on both feature sets and ``ar1_rhox``
(``rho(x)`` linear in the features) on magpie; a random forest on magpie features (target rows
only). Slow rows, on the first ``--slow-folds`` folds of the kinds ``--slow-fold-kinds`` names
(random only by default; each cell takes minutes):
``ar1_finetune/deep`` (the jointly fitted AR1 with its extractor fine-tuned jointly with the
GP, :func:`mfgp.nn.finetune_extractor`), the three-level ``ar1+hse`` row, and BoTorch's
``SingleTaskMultiFidelityGP`` and ``MultiTaskGP`` with their defaults on the learned features.
The BoTorch rows get the rows the mfgp models get and exact Cholesky solves, their
hyperparameters fitted on the same 1,000-row stratified subset as mfgp's joint trainer (see
``baselines.py``); a BoTorch fit still takes 2-30 minutes here, so these rows are compared with
the mfgp rows on their shared folds only (the "shared folds" section).

Aggregation: every figure is the mean over folds of the per-fold metric (each fold's MAE,
NLPD, coverage computed on that fold's predictions), for every row alike. Every cell records
the commit it ran on, its finish time, the fold seed and the configuration.

Results go to ``results/bench_architectures.{json,md}``; finished (dataset, folds, fold, model)
cells are kept in ``results/.bench_architectures.partial.jsonl`` so that an interrupted run
resumes where it stopped (``--fresh`` discards them).

Run: ``make bench-architectures``; ``--quick`` for a smoke run. On 2 cores the rows other than
the slow ones take about 75 minutes for all 5 + 5 folds of both datasets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _common import RESULTS, append_partial, read_partial, seed_partial, write_results
from baselines import BoTorchBaseline, RandomForestBaseline
from mfgp.calibration import GaussianPredictive, cross_validate, evaluate
from mfgp.data import Folds, MultiFidelityDataset, grouped_kfold, kfold
from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy
from mfgp.estimators import MultiFidelityRegressor
from mfgp.nn import pretrain

PARTIAL = RESULTS / ".bench_architectures.partial.jsonl"
GP_OPTIONS = {"max_rows_per_fidelity": 1500, "max_fit_points": 1000, "max_iter": 50}
#: rows run on the first ``--slow-folds`` folds of the ``--slow-fold-kinds`` kinds only
SLOW = ("ar1_finetune/deep", "ar1+hse/magpie", "botorch_stmf/deep", "botorch_mtgp/deep")
#: the mfgp rows a slow row is compared with on its folds
SHARED_WITH = ["ar1/deep", "ar1_joint/deep", "ar1/magpie", "single/deep"]
MFGP_ROWS = ["single", "ar1", "multitask", "latent"]
#: AR1 variants: the joint fit, rho(x), and the joint fit with a fine-tuned extractor
AR1_VARIANTS = {
    "ar1_joint": {"training": "joint"},
    "ar1_rhox": {"rho": "linear"},
    "ar1_finetune": {"finetune": True, "training": "joint"},
    "ar1_effect": {"composition_effect": True},
}
ALL_MODELS = [f"{a}/{f}" for f in ("magpie", "deep") for a in MFGP_ROWS] + [
    "ar1_joint/magpie",
    "ar1_joint/deep",
    "ar1_rhox/magpie",
    "ar1_effect/magpie",
    "ar1_finetune/deep",
    "ar1+hse/magpie",
    "botorch_stmf/deep",
    "botorch_mtgp/deep",
    "rf/magpie",
]


def datasets(names: list[str]) -> dict[str, dict]:
    """Each dataset: the main ladder, optional variants, and the pretraining pool."""
    out = {}
    if "expt_gap" in names:
        ds = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
        X, Y, _ = ds.tensors()
        low = X[:, -1] == 0
        out["expt_gap"] = {
            "main": ds,
            "+hse": lambda: MultiFidelityDataset.from_frame(
                load_bandgap_ladder(["pbe", "hse", "expt"])
            ),
            "pool": (X[low, :-1], Y[low, 0]),
            "nonzero": True,
        }
    if "expt_form" in names:
        ds = MultiFidelityDataset.from_frame(load_formation_enthalpy(["oqmd", "mp", "expt"]))
        pool = MultiFidelityDataset.from_frame(
            load_formation_enthalpy(["mp_e_form"]), duplicates="mean"
        )
        X, Y, _ = pool.tensors()
        out["expt_form"] = {"main": ds, "pool": (X[:, :-1], Y[:, 0]), "nonzero": False}
    return {n: out[n] for n in names if n in out}


def make_model(name: str, extractor, seed: int):
    arch, feats = name.split("/")
    if arch == "rf":
        return RandomForestBaseline(seed=seed)
    if arch.startswith("botorch_"):
        return BoTorchBaseline(arch.removeprefix("botorch_"), extractor, seed=seed,
                               max_rows_per_fidelity=GP_OPTIONS["max_rows_per_fidelity"],
                               max_fit_points=GP_OPTIONS["max_fit_points"])  # fmt: skip
    arch = arch.removesuffix("+hse")
    options = AR1_VARIANTS.get(arch, {})
    return MultiFidelityRegressor(
        "ar1" if options else arch,
        **options,
        deep_features=extractor if feats == "deep" else False,
        seed=seed,
        progress=False,
        **GP_OPTIONS,
    )


def score(cv, nonzero: bool) -> list[dict]:
    p = cv.predictions
    y, mu, sd = p["observed"].to_numpy(), p["mean"].to_numpy(), p["std"].to_numpy()
    subsets = {"all": np.ones(y.shape, bool)}
    if nonzero:
        subsets["nonzero"] = y > 0
    out = []
    for subset, m in subsets.items():
        s = evaluate(y[m], GaussianPredictive(mu[m], sd[m]))
        out.append({"subset": subset, **{k: float(v) for k, v in s.items()}})
    return out


def load_partial(seed: int) -> dict[tuple, list[dict]]:
    """Finished cells of this fold seed (cells from before the seed was recorded were seed 0)."""
    seed_partial(PARTIAL, "bench_architectures", keep=lambda r: r["model"] != "pretrain")
    done: dict[tuple, list[dict]] = {}
    for r in read_partial(PARTIAL):
        if r.get("seed", 0) == seed:
            done.setdefault((r["dataset"], r["folds"], r["fold"], r["model"]), []).append(r)
    return done


def _cells(records: list[dict]) -> pd.DataFrame:
    """The scored cells, in a fixed order: dataset, random before chemsys, subset, model."""
    df = pd.DataFrame([r for r in records if r["model"] != "pretrain"])
    order = {name: i for i, name in enumerate(ALL_MODELS)}
    df["_m"] = df["model"].map(order)
    df["_f"] = df["folds"].map({"random": 0, "chemsys": 1})
    return df.sort_values(["dataset", "_f", "subset", "_m", "fold"], kind="stable")


def overview_table(records: list[dict]) -> pd.DataFrame:
    """MAE per model: mean over the folds run (their number in brackets), one column per split."""
    df = _cells(records)
    cols = {}
    for (dname, kind, subset), g in df.groupby(["dataset", "_f", "subset"], sort=True):
        label = f"{dname} {'random' if kind == 0 else 'chemsys'}" + (
            "" if subset == "all" else f" {subset}"
        )
        stats = g.groupby("model", sort=False)["mae"].agg(["mean", "size"])
        cols[label] = {m: f"{r['mean']:.3f} ({int(r['size'])})" for m, r in stats.iterrows()}
    models = [m for m in ALL_MODELS if any(m in c for c in cols.values())]
    return pd.DataFrame(
        [{"model": m, **{k: c.get(m, "-") for k, c in cols.items()}} for m in models]
    )


def summary_table(records: list[dict]) -> pd.DataFrame:
    df = _cells(records)
    keys = ["dataset", "folds", "subset", "model"]
    rows = []
    for key, g in df.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        for m in ("mae", "rmse", "nlpd", "coverage_90", "fit_seconds"):
            row[m] = f"{g[m].mean():.3f} ± {g[m].std(ddof=1) if len(g) > 1 else 0:.3f}"
        row["folds_run"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)


def shared_folds_table(records: list[dict]) -> pd.DataFrame:
    """Each slow row beside the mfgp rows, on the folds that slow row ran (subset "all")."""
    df = _cells(records)
    df = df[df.subset == "all"]
    rows = []
    for (dname, kind, model), g in df[df.model.isin(SLOW)].groupby(
        ["dataset", "folds", "model"], sort=False
    ):
        folds = sorted(g.fold.unique())
        for other in [model, *SHARED_WITH]:
            h = df[(df.dataset == dname) & (df.folds == kind) & (df.model == other)
                   & df.fold.isin(folds)]  # fmt: skip
            if h.fold.nunique() < len(folds):
                continue  # the comparison row has not run on every one of these folds
            rows.append({"dataset": dname, "folds": kind, "shared folds": ",".join(map(str, folds)),
                         "slow row": model, "model": other,
                         **{m: round(float(h[m].mean()), 4)
                            for m in ("mae", "nlpd", "coverage_90", "fit_seconds")}})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="expt_form,expt_gap")
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--folds", default="random,chemsys")
    ap.add_argument("--n-splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1,
                    help="fold seed (0 is the development split: never report it)")
    ap.add_argument("--quick", action="store_true", help="first fold of each kind only")
    ap.add_argument("--max-folds", type=int, default=None, help="folds of each kind to run")
    ap.add_argument(
        "--slow-folds",
        "--botorch-folds",
        type=int,
        default=1,
        help=f"the slow rows ({', '.join(SLOW)}) run on this many folds of each kind",
    )
    ap.add_argument(
        "--slow-fold-kinds",
        default="random",
        help="the fold kinds the slow rows run on (comma-separated: random, chemsys)",
    )
    ap.add_argument("--fresh", action="store_true", help="discard finished cells")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="write the results of the finished cells without running more",
    )
    args = ap.parse_args()
    if args.fresh and PARTIAL.exists():
        PARTIAL.unlink()
    models = args.models.split(",")
    unknown = set(models) - set(ALL_MODELS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {ALL_MODELS}")
    slow_kinds = set(args.slow_fold_kinds.split(","))
    if unknown_kinds := slow_kinds - {"random", "chemsys"}:
        raise SystemExit(f"--slow-fold-kinds: unknown {sorted(unknown_kinds)}; use random, chemsys")
    done = load_partial(args.seed)
    records: list[dict] = []
    for dname, spec in datasets(args.datasets.split(",")).items():
        ds = spec["main"]
        if args.report_only:
            records += [r for key, rs in done.items() if key[0] == dname for r in rs]
            continue
        extractor, pre_s = None, 0.0
        if any(m.endswith("/deep") for m in models):  # only the deep rows read the extractor
            t0 = time.perf_counter()
            Xp, yp = spec["pool"]
            extractor, report = pretrain(Xp, yp, seed=args.seed, progress=False)
            pre_s = time.perf_counter() - t0
            print(f"{dname}: pretrained on {Xp.shape[0]} rows in {pre_s:.1f} s "
                  f"(val RMSE {np.sqrt(min(report.val_mse)) * report.y_std:.3f})",
                  flush=True)  # fmt: skip
            records.append({"dataset": dname, "model": "pretrain", "folds": "-", "fold": -1,
                            "subset": "all", "pool_rows": int(Xp.shape[0]),
                            "fit_seconds": pre_s})  # fmt: skip
        variants = {}
        for kind in args.folds.split(","):
            folds = (kfold if kind == "random" else grouped_kfold)(ds, args.n_splits, args.seed)
            n_folds = 1 if args.quick else min(len(folds), args.max_folds or len(folds))
            for k in range(n_folds):
                one = Folds((folds.test_compositions[k],), folds.kind, folds.seed)
                for name in models:
                    key = (dname, kind, k, name)
                    if key in done:
                        records += done[key]
                        continue
                    if name == "ar1+hse/magpie" and "+hse" not in spec:
                        continue
                    if name in SLOW and (kind not in slow_kinds or k >= args.slow_folds):
                        continue
                    data = ds
                    if name.endswith("+hse/magpie"):
                        variants.setdefault("+hse", spec["+hse"]())
                        data = variants["+hse"]
                    model = make_model(name, extractor, args.seed)
                    cv = cross_validate(model, data, one, progress=False)
                    config = {**GP_OPTIONS, "n_splits": args.n_splits, "solver": "cholesky"}
                    cell = [
                        {"dataset": dname, "folds": kind, "fold": k, "model": name,
                         "seed": args.seed, "config": config,
                         "fit_seconds": cv.fit_seconds[0], **s,
                         **({"pretrain_seconds": pre_s} if name.endswith("/deep") else {})}
                        for s in score(cv, spec["nonzero"])
                    ]  # fmt: skip
                    append_partial(PARTIAL, cell)
                    records += cell
                    s0 = cell[0]
                    print(f"{dname} {kind} fold {k} {name:<20} mae {s0['mae']:.3f} "
                          f"nlpd {s0['nlpd']:.2f} cov90 {s0['coverage_90']:.2f} "
                          f"fit {s0['fit_seconds']:.1f} s", flush=True)  # fmt: skip
    # the tables hold every finished cell of this seed, also those of rows not run this time
    ran = {(r["dataset"], r["folds"], r["fold"], r["model"]) for r in records}
    records += [r for key, rs in load_partial(args.seed).items() if key not in ran for r in rs]
    table = summary_table(records)
    overview = overview_table(records)
    shared = shared_folds_table(records)
    sections = {f"MAE, mean over folds (folds run), fold seed {args.seed}": overview}
    if len(shared):
        sections["Slow rows beside the mfgp rows on their shared folds (subset all)"] = shared
    write_results("bench_architectures", records, table=table, sections=sections)
    print(overview.to_string(index=False))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
