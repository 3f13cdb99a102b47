"""Metals and zero gaps: GP classifiers of metallicity, and the hurdle model of band gaps.

Folds: the 5-fold seeded random folds of ``bench_architectures`` over the 4,604 experimental
band-gap compositions and the chemical-system folds (``--folds random`` for the first kind only). The
classification target is "experimental gap == 0" of the held-out compositions.

Classification rows (records carry ``roc_auc``, ``accuracy``, ``brier``, ``log_loss``):

* ``rf/magpie``: random forest on magpie features, the target task only (vote fractions shrunk
  by half a vote towards 1/2, so that no probability is exactly 0 or 1);
* ``gp_single/{magpie,deep}``: variational GP classifier, the target task only, on standardised
  magpie features or on the features learned from PBE gaps;
* ``gp_multitask/magpie``: the same with PBE metallicity (PBE gap == 0) as a second task;
* ``gp_multitask+is_metal/magpie``: also the Matbench ``expt_is_metal`` labels as a third task
  (labels of held-out compositions are hidden: they are experimental);
* ``gp_latent/magpie``: the hurdle model's classifier (the package default): single-task, with
  the PBE gap at the composition as an explicit-latent input (the observed PBE gap where there
  is one, else a GP's predictive of it, integrated over); its fit time is inside the hurdle's.

The four classifier ablations (``gp_single/{magpie,deep}``, ``gp_multitask/magpie`` and
``gp_multitask+is_metal/magpie``) take
about 7 of each fold's 10 minutes on 2 cores; they run on the first ``--ablation-folds`` folds of
each kind (default 1), the forest and the hurdle's classifier on every fold.

Regression rows (``mae``, ``crps``, ``coverage_90``, ... on all compositions and nonzero ones):
``ar1_recursive/magpie`` (the Gaussian multi-fidelity GP of ``bench_architectures``, fitted
level by level, its most accurate row on band gaps; the hurdle's positive part is fitted the same
way),
``hurdle_ar1/magpie`` (the package's ``HurdleRegressor``: P(metal) from ``gp_latent/magpie``
and a softplus-normal AR1 for the nonzero gaps, the default) and ``hurdle_ar1+rf/magpie`` (the
default positive part, P(metal) from the random forest). Point predictions scored by MAE: ``mae`` the
predictive mean, ``mae_median`` the median, ``mae_classify`` 0 where P(metal) >= 0.5 and the
non-metal median elsewhere,
``mae_nonmetal`` the non-metal median alone (the gap of a compound known to be a non-metal).

The reported folds are those of fold seed 1 (``--seed``); seed 0's folds are the development
split on which the hurdle's defaults were chosen, and are never reported. Every record carries
the commit it ran on, its finish time, the fold seed and the configuration.

Table columns are means ± std over folds (the mean of per-fold metrics, for every row);
``coverage_90_abs_error`` is the mean over folds of ``|coverage_90 - 0.90|``. Finished folds are kept in ``results/.bench_metals.partial.jsonl``
(records and out-of-fold probabilities) so that an interrupted run resumes at the next fold
(``--fresh`` discards them); the reliability figure pools the folds whose probabilities are
kept there.

Writes ``results/bench_metals.{json,md}`` and ``docs/figures/metals_reliability.png``.
Run: ``make bench-metals``.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import (  # noqa: E402
    RESULTS,
    append_partial,
    max_coverage_error,
    read_partial,
    write_results,
)
from baselines import ForestClassifier  # noqa: E402
from mfgp.calibration import (  # noqa: E402
    GaussianPredictive,
    PointMassMixture,
    classification_scores,
    evaluate,
)
from mfgp.calibration.metrics import COVERAGE_LEVELS  # noqa: E402
from mfgp.calibration.plots import reliability_diagram  # noqa: E402
from mfgp.data import MultiFidelityDataset, grouped_kfold, kfold  # noqa: E402
from mfgp.datasets import load_bandgap_ladder, load_metallicity  # noqa: E402
from mfgp.estimators import (  # noqa: E402
    HurdleRegressor,
    MetalClassifier,
    MultiFidelityRegressor,
    zero_gap_labels,
)
from mfgp.nn import pretrain  # noqa: E402

FIGURES = Path(__file__).parent.parent / "docs" / "figures"
PARTIAL = RESULTS / ".bench_metals.partial.jsonl"
GP_OPTIONS = {
    "max_rows_per_fidelity": 1500,
    "max_fit_points": 1000,
    "max_iter": 50,
    "training": "recursive",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", default="random,chemsys")
    ap.add_argument("--n-splits", type=int, default=5)
    ap.add_argument("--max-folds", type=int, default=5, help="folds of each kind to run")
    ap.add_argument(
        "--seed",
        type=int,
        default=1,
        help="fold seed (0 is the development split: never report it)",
    )
    ap.add_argument(
        "--ablation-folds",
        type=int,
        default=1,
        help="the classifier ablations (every GP classifier but the hurdle's) run on this many "
        "folds of each kind: about 7 of a fold's 10 minutes on 2 cores",
    )
    ap.add_argument("--fresh", action="store_true", help="discard finished folds")
    args = ap.parse_args()
    if args.fresh and PARTIAL.exists():
        PARTIAL.unlink()

    gaps = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
    labels = MultiFidelityDataset.from_frame(load_metallicity(["pbe", "is_metal", "expt"]))
    extractor = None  # pretrained on the first fold that is not kept
    lab = labels.frame
    records: list[dict] = []
    pooled: dict[str, list] = {}
    kinds = args.folds.split(",")
    splits = {
        kind: list((kfold if kind == "random" else grouped_kfold)(gaps, args.n_splits,
                                                                 args.seed).split(gaps))
        for kind in kinds
    }  # fmt: skip
    # fold k of every kind before fold k + 1, and the results rewritten after each fold, so
    # that a run stopped early still leaves complete, comparable folds behind; finished folds
    # are kept in PARTIAL (records, and the probabilities of the reliability figure)
    # folds of other seeds (items from before the seed was recorded were seed 0) are kept in
    # the file but never read into this seed's tables
    done: dict[tuple, list[dict]] = {}
    for item in read_partial(PARTIAL):
        if item.get("seed", 0) == args.seed:
            done.setdefault((item["folds"], item["fold"]), []).append(item)
    for k in range(min(args.max_folds, args.n_splits)):
        for kind in kinds:
            train, test = splits[kind][k]
            held = gaps.frame["composition"].iloc[test].tolist()
            Xt, Yt, _ = gaps.tensors(test)
            y = Yt[:, 0].numpy()
            base = {"dataset": "expt_gap", "folds": kind, "fold": k, "seed": args.seed,
                    "config": {**GP_OPTIONS, "n_splits": args.n_splits}}  # fmt: skip
            if (kind, k) in done:
                for item in done[(kind, k)]:
                    if item["item"] == "probs":
                        pooled.setdefault(item["model"], []).append(
                            (np.asarray(item["metal"]), np.asarray(item["p"]))
                        )
                    else:
                        records.append({c: v for c, v in item.items() if c != "item"})
                report(records, pooled, args.seed)
                continue
            n_before = len(records)
            metal = (y == 0).astype(float)
            if extractor is None and k < args.ablation_folds:  # only gp_single/deep uses it
                X, Y, _ = gaps.tensors()
                low = X[:, -1] == 0
                t0 = time.perf_counter()
                extractor, _ = pretrain(X[low, :-1], Y[low, 0], seed=args.seed, progress=False)
                print(f"pretrained on {int(low.sum())} PBE gaps in "
                      f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
            # classification ----------------------------------------------------------------
            hidden = lab["composition"].isin(held) & lab["fidelity"].isin(["expt", "is_metal"])
            lab_train = labels.subset(np.flatnonzero(~hidden.to_numpy()))
            two = lab_train.with_frame(
                lab_train.frame[lab_train.frame["fidelity"] != "is_metal"], ["pbe", "expt"]
            )
            probs = {}
            gap_labels = zero_gap_labels(gaps.subset(train))
            t = time.perf_counter()
            forest = ForestClassifier(seed=args.seed).fit(gap_labels)
            probs["rf/magpie"] = (forest.predict_proba(Xt), time.perf_counter() - t)
            ablations = [
                ("gp_single/magpie", False, two, False),
                ("gp_multitask+is_metal/magpie", True, lab_train, False),
                ("gp_multitask/magpie", True, two, False),
                ("gp_single/deep", False, two, extractor),
            ]
            for name, multitask, data, fx in ablations if k < args.ablation_folds else []:
                t = time.perf_counter()
                clf = MetalClassifier(multitask, deep_features=fx, seed=args.seed,
                                      progress=False).fit(data, candidates=held)  # fmt: skip
                probs[name] = (clf.predict_proba(held)[:, 1], time.perf_counter() - t)
            # the hurdle's classifier (single-task GP on magpie + the PBE latent) is fitted
            # inside the hurdle, with the regression rows below
            hurdle_records, hurdle = hurdle_rows(gaps, train, held, Xt, y, forest, base,
                                                 args.seed)  # fmt: skip
            probs["gp_latent/magpie"] = (hurdle.predict_proba(Xt)[:, 1], float("nan"))
            fold_probs: list[dict] = []
            for name, (p, secs) in probs.items():
                s = classification_scores(metal, p)
                records.append({**base, "task": "classification", "model": name,
                                "subset": "all", "fit_seconds": secs, **s})  # fmt: skip
                pooled.setdefault(name, []).append((metal, p))
                fold_probs.append({"item": "probs", **base, "model": name,
                                   "metal": metal.tolist(), "p": np.asarray(p).tolist()})  # fmt: skip
                print(f"{kind} {k} {name:<30} auc {s['roc_auc']:.3f} acc {s['accuracy']:.3f} "
                      f"brier {s['brier']:.3f} ({secs:.0f} s)", flush=True)  # fmt: skip
            t = time.perf_counter()
            plain = MultiFidelityRegressor("ar1", seed=args.seed, progress=False, **GP_OPTIONS)
            plain.fit(gaps.subset(train), candidates=held)
            plain_s = time.perf_counter() - t
            mu, sd = plain.predict(Xt, True, observation_noise=True)
            records += score_regression("ar1_recursive/magpie", GaussianPredictive(mu, sd),
                                        plain_s, y, base)  # fmt: skip
            records += hurdle_records
            append_partial(PARTIAL, [{"item": "record", **r} for r in records[n_before:]]
                           + fold_probs)  # fmt: skip
            report(records, pooled, args.seed)


def score_regression(name: str, pred, secs: float, y: np.ndarray, base: dict) -> list[dict]:
    """Regression records of one model in one fold, on all compositions and the nonzero ones."""
    out = []
    for subset, m in (("all", np.ones_like(y, bool)), ("nonzero", y > 0)):
        part = pred.subset(np.flatnonzero(m))
        s = evaluate(y[m], part)
        s["mae_median"] = float(np.mean(np.abs(part.median() - y[m])))
        if isinstance(part, PointMassMixture):
            nonmetal = part.continuous.median()
            hard = np.where(part.weight >= 0.5, 0.0, nonmetal)
            s["mae_classify"] = float(np.mean(np.abs(hard - y[m])))
            s["mae_nonmetal"] = float(np.mean(np.abs(nonmetal - y[m])))
        out.append({**base, "task": "regression", "model": name, "subset": subset,
                    "fit_seconds": secs, **s})  # fmt: skip
        print(f"{base['folds']} {base['fold']} {name:<28} {subset:<8} mae {s['mae']:.3f} "
              f"(median {s['mae_median']:.3f}, classify {s.get('mae_classify', np.nan):.3f}, "
              f"non-metal {s.get('mae_nonmetal', np.nan):.3f}) crps {s['crps']:.3f} "
              f"cov90 {s['coverage_90']:.3f}", flush=True)  # fmt: skip
    return out


def hurdle_rows(gaps, train, held, Xt, y, forest, base, seed):
    """The hurdle rows of one fold, the package default and the same positive part with the
    forest's P(metal); and the fitted default hurdle (its classifier is ``gp_latent``)."""
    t = time.perf_counter()
    hurdle = HurdleRegressor("ar1", regressor_options=GP_OPTIONS, seed=seed, progress=False)
    hurdle.fit(gaps.subset(train), candidates=held)
    secs = time.perf_counter() - t
    rf_hurdle = copy.copy(hurdle)  # the same positive part with the random forest's P(metal)
    rf_hurdle.classifier_ = forest
    out = score_regression("hurdle_ar1/magpie", hurdle.predictive(Xt), secs, y, base)
    out += score_regression("hurdle_ar1+rf/magpie", rf_hurdle.predictive(Xt), np.nan, y, base)
    return out, hurdle


def report(records: list[dict], pooled: dict[str, list], seed: int) -> None:
    """Write the results table and the reliability figure of the folds finished so far."""
    df = pd.DataFrame(records)
    rows = []
    for (task, folds_kind, subset, model), g in df.groupby(
        ["task", "folds", "subset", "model"], sort=False
    ):
        cols = (
            ["roc_auc", "accuracy", "brier", "log_loss"]
            if task == "classification"
            else [
                "mae",
                "mae_median",
                "mae_classify",
                "mae_nonmetal",
                "crps",
                "nlpd",
                *(f"coverage_{round(100 * q)}" for q in COVERAGE_LEVELS),
            ]
        )
        row = {"task": task, "folds": folds_kind, "subset": subset, "model": model}
        for c in cols + ["fit_seconds"]:
            if c in g and g[c].notna().any():
                row[c] = f"{g[c].mean():.3f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.3f}"
        if task == "regression":
            # distance from the nominal level, fold by fold: a mean coverage near 0.90 can hide
            # folds that miss it in both directions
            err = (g["coverage_90"] - 0.9).abs()
            row["coverage_90_abs_error"] = f"{err.mean():.3f}"
            # the calibration bar of bench_calibration: the largest distance of the mean
            # coverages from nominal over the levels
            means = {q: g[f"coverage_{round(100 * q)}"].mean() for q in COVERAGE_LEVELS}
            row["max_coverage_error"] = f"{max_coverage_error(means):.3f}"
        row["folds_run"] = len(g)
        row["fold_seed"] = seed
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    write_results("bench_metals", records, table=table)
    print(table.to_string(index=False))

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.8, 4.8), layout="constrained")
    n_folds = max((len(parts) for parts in pooled.values()), default=0)
    for name, parts in pooled.items():
        yy = np.concatenate([a for a, _ in parts])
        pp = np.concatenate([b for _, b in parts])
        reliability_diagram(yy, pp, label=name, ax=ax)
    ax.set_title(f"P(metal), out-of-fold (fold seed {seed}, {n_folds} folds pooled)")
    fig.savefig(FIGURES / "metals_reliability.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
