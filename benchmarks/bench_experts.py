"""Transfer from the shipped source models: learning curves of the mixture of experts.

Tasks (targets are experimental; no source model saw an experimental label, see the cards in
``mfgp/experts/_library``):

* ``expt_gap``: Matbench experimental band gaps (4,604; 53% exact zeros), target labels only.
* ``expt_gap+pbe``: the same with the MP PBE gaps as a lower fidelity (AR1, the PBE rows of
  every composition, capped at 1,500 plus the test compositions' own).
* ``expt_gap+pbe:hurdle``: the same data through the hurdle model (``HurdleRegressor``: P(gap = 0)
  from a classifier with the PBE gap as a latent input, a softplus-normal AR1 for the nonzero
  gaps), on Magpie (``hurdle/magpie``) and on the experts (``hurdle/moe``: every part on the
  experts, the regression's additive mixture). Its MAE is that of the hurdle predictive's
  *median* (the point that minimises absolute error; the mean's is ``mae_mean``); NLPD and
  coverage are those of the point-mass mixture. Sizes 200 and all.
* ``expt_form``: Kim 2017 experimental formation enthalpies (1,276), target labels only.
* ``expt_form+dft``: the same with Kim 2017's OQMD and MP values as lower fidelities (AR1
  oqmd -> mp -> expt; every DFT row, the test compounds' own included: a candidate's DFT value
  is known before its experiment).
* ``steels``: Matbench steel yield strengths (312 alloys), no computed fidelity: pure transfer.
* ``is_metal``: Matbench experimental metal / non-metal (4,921), ROC-AUC.

Seed 0 is the development split: the design choices (a linear term on each source's
prediction, the Magpie block in ``experts="all"``) were made on its ``expt_form`` curves, so
the tables report seeds 1-5 only. Each seed holds out 20% of the target rows (the same for every row of the table) and draws
nested training sets of 25, 50, 100, 200, 400, 800 and all remaining labels. ``steels`` also
gets the 5-fold cross-validation of the Matbench leaderboard (``--steels-cv``).

Rows: a GP on standardised Magpie features (``gp/magpie``), a GP on each source model's
features alone (``gp/<source>``), the mixtures (``moe/additive``: a kernel per source and one on
the standardised Magpie features, weights by marginal likelihood, the package's
``experts="all"``; ``moe/additive:sources``: the learned sources only; ``moe/gated``: a
softmax gate over the learned sources' features), the shotgun pick (``shotgun``: of the single-source GPs and the Magpie GP, the one
``rank_sources`` ranks first by 3-fold CV on at most 200 of the training labels, never the test
rows), and a random forest
on Magpie features (``rf/magpie``; its std is the trees' spread). Every GP has the package's
defaults and the same solver. MAE, NLPD and 90% coverage of the observation predictive.

Finished cells go to ``results/.bench_experts.partial.jsonl`` and an interrupted run resumes
(a fresh clone starts from the records of the committed ``results/bench_experts.json``);
``TASKS``, ``SIZES``, ``SEEDS``, ``MODELS`` (comma lists) choose cells. ``make bench-experts``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

from _common import RESULTS, append_partial, read_partial, write_partial, write_results
from mfgp import experts
from mfgp.calibration.metrics import evaluate, summary
from mfgp.datasets import (
    load_bandgap_ladder,
    load_expt_is_metal,
    load_formation_enthalpy,
    load_steels_yield,
)
from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor

PARTIAL = RESULTS / ".bench_experts.partial.jsonl"
SIZES = [25, 50, 100, 200, 400, 800, 0]  # 0: all remaining labels
SOURCES = sorted(experts.library._index()["default"])
REG_MODELS = (["gp/magpie"] + [f"gp/{s}" for s in SOURCES]
              + ["moe/additive", "moe/additive:sources", "moe/gated", "shotgun", "rf/magpie"])  # fmt: skip
MF_MODELS = ["gp/magpie", "moe/additive", "rf/magpie"]
HURDLE_MODELS = ["hurdle/magpie", "hurdle/moe"]
CLS_MODELS = ["gp/magpie", "moe/concat"]


def _env(name: str, default: list) -> list:
    raw = os.environ.get(name)
    return default if not raw else [type(default[0])(v) for v in raw.split(",")]


def tasks() -> dict[str, dict]:
    gaps = load_bandgap_ladder(["pbe", "expt"])
    form = load_formation_enthalpy(["oqmd", "mp", "expt"])
    steels = load_steels_yield()
    metal = load_expt_is_metal()

    def target(df, fid):
        return df[df["fidelity"] == fid].reset_index(drop=True)

    return {
        "expt_gap": {"target": target(gaps, "expt"), "low": None, "models": REG_MODELS},
        "expt_gap+pbe": {"target": target(gaps, "expt"), "low": target(gaps, "pbe"),
                         "models": MF_MODELS},
        "expt_gap+pbe:hurdle": {"target": target(gaps, "expt"), "low": target(gaps, "pbe"),
                                "models": HURDLE_MODELS, "sizes": [200, 0]},
        "expt_form": {"target": target(form, "expt"), "low": None, "models": REG_MODELS},
        "expt_form+dft": {"target": target(form, "expt"),
                          "low": form[form["fidelity"] != "expt"].reset_index(drop=True),
                          "models": MF_MODELS},
        "steels": {"target": steels, "low": None, "models": REG_MODELS},
        "is_metal": {"target": metal, "low": None, "models": CLS_MODELS, "classify": True},
    }  # fmt: skip


def _regressor(model: str, architecture: str) -> MultiFidelityRegressor:
    kind, _, what = model.partition("/")
    common = {"progress": False, "seed": 0, "max_rows_per_fidelity": 1500}
    if what == "magpie":
        return MultiFidelityRegressor(architecture, **common)
    if kind == "moe":  # moe/<mixture>[:sources]: all sources (and magpie) or the sources only
        mixture, _, which = what.partition(":")
        return MultiFidelityRegressor(architecture, experts=which or "all", mixture=mixture,
                                      **common)  # fmt: skip
    return MultiFidelityRegressor(architecture, experts=[what], **common)


def _rf(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import RandomForestRegressor

    from mfgp.featurize import CompositionFeaturizer

    f = CompositionFeaturizer("magpie")
    rf = RandomForestRegressor(300, n_jobs=2, random_state=0)
    rf.fit(f.transform(train["formula"].tolist()), train["value"].to_numpy(float))
    trees = np.stack([t.predict(f.transform(test["formula"].tolist())) for t in rf.estimators_])
    return trees.mean(0), np.maximum(trees.std(0), 1e-6)


def run_regression(task: dict, model: str, train: pd.DataFrame, test: pd.DataFrame,
                   done: dict) -> dict:  # fmt: skip
    y = test["value"].to_numpy(float)
    info: dict = {}
    tic = time.perf_counter()
    if model == "rf/magpie":
        mean, std = _rf(train, test)
    elif model.startswith("hurdle/"):
        frame = pd.concat([task["low"], train], ignore_index=True)
        hurdle = HurdleRegressor(experts=None if model == "hurdle/magpie" else "all",
                                 regressor_options={"max_rows_per_fidelity": 1500}, seed=0,
                                 progress=False)  # fmt: skip
        formulas = test["formula"].tolist()
        hurdle.fit(frame[["formula", "fidelity", "value"]], candidates=formulas)
        pred = hurdle.predictive(formulas)
        s = evaluate(y, pred)
        if model == "hurdle/moe":
            w = hurdle.regressor_.source_weights()
            info["weights"] = dict(zip(w[w["level"] == "expt"]["source"],
                                       w[w["level"] == "expt"]["weight"].round(4)))  # fmt: skip
        return {"mae": float(np.mean(np.abs(pred.median() - y))), "mae_mean": s["mae"],
                "rmse": s["rmse"], "nlpd": s["nlpd"], "coverage_90": s["coverage_90"],
                "fit_seconds": time.perf_counter() - tic, **info}  # fmt: skip
    elif model == "shotgun":
        sub = train.sample(min(len(train), 200), random_state=0)
        ranking = experts.rank_sources(sub[["formula", "value"]], folds=3)
        pick = ranking["source"].iloc[0]
        info["pick"] = pick
        info["ranking"] = ranking["source"].tolist()
        cell = done[f"gp/{pick}"]
        return {**{k: cell[k] for k in ("mae", "rmse", "nlpd", "coverage_90")},
                "fit_seconds": time.perf_counter() - tic + cell["fit_seconds"], **info}  # fmt: skip
    else:
        arch = "single" if task["low"] is None else "ar1"
        frame = train
        if task["low"] is not None:
            frame = pd.concat([task["low"], frame], ignore_index=True)
        reg = _regressor(model, arch)
        reg.fit(frame[["formula", "fidelity", "value"]], candidates=test["formula"].tolist())
        mean, std = reg.predict(test["formula"].tolist(), return_std=True,
                                observation_noise=True)  # fmt: skip
        if model.startswith("moe/") and model != "moe/concat":
            w = reg.source_weights()
            top = w[w["level"] == w["level"].iloc[-1]]
            info["weights"] = dict(zip(top["source"], top["weight"].round(4)))
    seconds = time.perf_counter() - tic
    s = summary(y, mean, std).loc["all"]
    return {"mae": s["mae"], "rmse": s["rmse"], "nlpd": s["nlpd"],
            "coverage_90": s["coverage_90"], "fit_seconds": seconds, **info}  # fmt: skip


def run_classification(model: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from sklearn.metrics import roc_auc_score

    tic = time.perf_counter()
    options = {"progress": False, "seed": 0}
    if model == "moe/concat":
        options["experts"] = "all"
    clf = MetalClassifier(**options).fit(train.assign(fidelity="expt")[["formula", "fidelity",
                                                                         "value"]])  # fmt: skip
    p = clf.predict_proba(test["formula"].tolist())
    p = p[:, 1] if p.ndim == 2 else p
    return {"roc_auc": float(roc_auc_score(test["value"].to_numpy() > 0.5, p)),
            "fit_seconds": time.perf_counter() - tic}  # fmt: skip


def splits(target: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(target))
    n_test = int(round(0.2 * len(target)))
    return target.iloc[order[n_test:]].reset_index(drop=True), target.iloc[order[:n_test]]


def steels_cv(models: list[str], folds: int = 5) -> list[dict]:
    from sklearn.model_selection import KFold

    target = load_steels_yield()
    out = []
    for model in models:
        key = {"task": "steels_cv", "model": model}
        if any(all(r.get(k) == v for k, v in key.items()) for r in read_partial(PARTIAL)):
            continue
        done: dict = {}
        per_fold = []
        for k, (tr, te) in enumerate(KFold(folds, shuffle=True, random_state=18012019).split(target)):
            if model == "shotgun":
                continue
            r = run_regression({"low": None}, model, target.iloc[tr], target.iloc[te], done)
            per_fold.append({**r, "fold": k})
        if not per_fold:
            continue
        rec = {**key, "mae": float(np.mean([r["mae"] for r in per_fold])),
               "nlpd": float(np.mean([r["nlpd"] for r in per_fold])),
               "coverage_90": float(np.mean([r["coverage_90"] for r in per_fold])),
               "folds": per_fold}  # fmt: skip
        append_partial(PARTIAL, [rec])
        out.append(rec)
        print(f"steels_cv {model}: MAE {rec['mae']:.1f} MPa", flush=True)
    return out


def main() -> None:
    chosen = _env("TASKS", list(tasks()))
    sizes = _env("SIZES", SIZES)
    seeds = _env("SEEDS", [1, 2, 3, 4, 5])  # seed 0 is the development split
    only = os.environ.get("MODELS")
    all_tasks = tasks()
    committed = RESULTS / "bench_experts.json"
    if not PARTIAL.exists() and committed.exists():  # a fresh clone resumes the committed cells
        write_partial(PARTIAL, json.loads(committed.read_text())["records"])
    have = {(r["task"], r["size"], r["seed"], r["model"]) for r in read_partial(PARTIAL)
            if r["task"] != "steels_cv"}  # fmt: skip
    for name in chosen:
        if name == "steels_cv":
            steels_cv([m for m in REG_MODELS if not only or m in only.split(",")])
            continue
        task = all_tasks[name]
        models = [m for m in task["models"] if not only or m in only.split(",")]
        for seed in seeds:
            pool, test = splits(task["target"], seed)
            for size in task.get("sizes", sizes) if "SIZES" not in os.environ else sizes:
                if size and size >= len(pool):
                    continue
                train = pool if size == 0 else pool.iloc[:size]
                done = {r["model"]: r for r in read_partial(PARTIAL)
                        if (r["task"], r.get("size"), r.get("seed")) == (name, size, seed)}  # fmt: skip
                for model in models:
                    if (name, size, seed, model) in have:
                        continue
                    if task.get("classify"):
                        res = run_classification(model, train, test)
                    else:
                        if model == "shotgun" and any(f"gp/{s}" not in done
                                                      for s in SOURCES + ["magpie"]):
                            continue
                        res = run_regression(task, model, train, test, done)
                    rec = {"task": name, "size": size, "n_train": len(train), "seed": seed,
                           "model": model, **res}  # fmt: skip
                    append_partial(PARTIAL, [rec])
                    have.add((name, size, seed, model))
                    done[model] = rec
                    metric = (f"AUC {res['roc_auc']:.3f}" if "roc_auc" in res
                              else f"MAE {res['mae']:.4g} cov90 {res['coverage_90']:.2f}")
                    print(f"{name} n={len(train)} seed={seed} {model}: {metric} "
                          f"({res['fit_seconds']:.1f} s)", flush=True)
    report()


def _pivot(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Median of ``metric`` over seeds: a row per model, a column per training size."""
    t = df.pivot_table(index="model", columns="n_label", values=metric, aggfunc="median",
                       observed=True)  # fmt: skip
    order = [m for m in dict.fromkeys(REG_MODELS + CLS_MODELS) if m in t.index]
    t = t.reindex(order)
    t.columns = [str(c) for c in t.columns]
    return t.reset_index()


def plot_curves(df: pd.DataFrame) -> None:
    """``results/bench_experts.png``: median MAE against labels, one panel per regression task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfgp.calibration.plots import learning_curve

    shown = ["gp/magpie", "rf/magpie", "shotgun", "moe/additive", "moe/gated"]
    tasks_ = [t for t in ("expt_gap", "expt_form", "steels") if t in set(df["task"])]
    fig, axes = plt.subplots(1, len(tasks_), figsize=(4.2 * len(tasks_), 3.4), squeeze=False)
    units = {"expt_gap": "eV", "expt_form": "eV/atom", "steels": "MPa"}
    for ax, task in zip(axes[0], tasks_):
        part = df[(df["task"] == task) & df["model"].isin(shown)]
        part = part.sort_values("model", key=lambda m: m.map(shown.index), kind="stable")
        learning_curve(part, highlight="moe/additive", band=False, ax=ax, units=units[task],
                       title=task)  # fmt: skip
        ax.set_ylabel(f"MAE ({units[task]})")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench_experts.png", dpi=110)
    plt.close(fig)


def report() -> None:
    records = read_partial(PARTIAL)
    curves = [r for r in records if r["task"] != "steels_cv"]
    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("weights", "ranking", "folds")}
                       for r in curves])  # fmt: skip
    sections = {}
    if not df.empty:
        df["n_label"] = [str(n) if s else f"all ({n})" for n, s in zip(df["n_train"], df["size"])]
        df["n_label"] = pd.Categorical(df["n_label"], sorted(
            df["n_label"].unique(), key=lambda v: int(v.split("(")[-1].rstrip(")"))))
        for task, part in df.groupby("task", sort=False):
            seeds = part.groupby(["n_label", "model"], observed=True).size()
            note = f"{task}: median over seeds ({seeds.min()}-{seeds.max()} per cell)"
            metrics = ["roc_auc"] if "roc_auc" in part and part["roc_auc"].notna().any() else [
                "mae", "nlpd", "coverage_90"]  # fmt: skip
            for metric in metrics:
                sections[f"{note}, {metric}"] = _pivot(part, metric)
    cv = [r for r in records if r["task"] == "steels_cv"]
    if cv:
        sections["steels, 5-fold CV (Matbench protocol), mean over folds"] = pd.DataFrame(
            [{k: r[k] for k in ("model", "mae", "nlpd", "coverage_90")} for r in cv])
    weights = [{"task": r["task"], "n_train": r["n_train"], "size": r["size"],
                "model": r["model"], **r["weights"]} for r in curves if r.get("weights")]  # fmt: skip
    if weights:
        w = pd.DataFrame(weights)
        sections["source weights of the mixtures (target level), median over seeds"] = (
            w.groupby(["task", "model", "size"]).median(numeric_only=True)
            .drop(columns="n_train").round(3).reset_index())  # fmt: skip
    picks = [{"task": r["task"], "size": r["size"], "pick": r["pick"]}
             for r in curves if r.get("pick")]  # fmt: skip
    if picks:
        p = pd.DataFrame(picks)
        sections["shotgun picks (count over seeds)"] = (
            p.groupby(["task", "size"])["pick"]
            .agg(lambda s: ", ".join(f"{k} {v}" for k, v in s.value_counts().items()))
            .reset_index())  # fmt: skip
    cards = experts.available(all_architectures=True)
    sections["the source models"] = cards
    if not df.empty:
        plot_curves(df)
    write_results("bench_experts", records, table=df if not df.empty else cards,
                  sections=sections)  # fmt: skip


if __name__ == "__main__":
    main()
