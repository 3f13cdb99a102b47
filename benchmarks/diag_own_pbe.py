"""The shipped band-gap model asked about formulas it was not told of: its own PBE gap or not.

A user of ``mfgp.pretrained("expt_gap")`` asks about formulas after the fit: most have a PBE
gap in the shipped table. The hurdle's regression conditions each on its own PBE row; its
classifier's input, the PBE gap, came from a latent GP whose dataset held only the rows it was
fitted on (the target compositions and a sample of 1,500 others), so at any other composition
it was the GP's predictive of a new PBE value (GaN: 0.73 +- 0.92 eV for its PBE 1.74), not
the value. Now the
latent GP's dataset holds every PBE row and the classifier reads a composition's own value.

Protocol: the exact shipped estimator, ``HurdleRegressor()`` (every default), on the shipped
ladder (PBE + experiment), 5 random folds and 5 folds grouped by chemical system, of fold seed
1. Each fold is fitted on the other
folds' rows, the held-out compositions' PBE rows included, **not** passed as candidates (as the
shipped model meets a new formula); the held-out experimental gaps are predicted twice from
the same fit:

* ``own PBE``: this commit's predictive (``hurdle.predictive``);
* ``before``: the same model with the classifier's input as the code before this change
  computed it: the value where the latent GP was fitted on the composition's row, elsewhere
  the latent GP's predictive without the composition's own row. The regression part is the
  same in both (it conditioned on own rows before too), so the difference is the classifier's
  input alone.

Metrics per fold: the hurdle's MAE, NLPD, CRPS and coverage (``mfgp.calibration.evaluate``), and
P(metal)'s Brier score, log loss and ROC-AUC, on every held-out composition and on those whose
PBE row the latent GP was not fitted on (``affected``). The records of path ``own PBE`` are
the cross-validation of the exact shipped model that its card cites.

Resumable (``results/diag_own_pbe.partial.jsonl``, one fold per line). Run alone, about
4 minutes a fold on 2 cores: ``cd benchmarks && python diag_own_pbe.py``; ``KINDS=random``
runs one kind of folds, ``FOLDS=0,1`` some folds; ``--report-only`` rewrites the tables from
the partial file.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from _common import RESULTS, append_partial, read_partial, write_results
from mfgp.calibration import evaluate
from mfgp.data import MultiFidelityDataset, grouped_kfold, kfold
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor

PARTIAL = RESULTS / "diag_own_pbe.partial.jsonl"
SEED = 1
N_FOLDS = 5
PATHS = ("own PBE", "before")
KINDS = ("random", "chemsys")


def old_p_metal(hurdle: HurdleRegressor, formulas: list[str]) -> np.ndarray:
    """P(metal) with the classifier's input as before: no composition's own left-out row."""
    clf = hurdle.classifier_
    raw, keys = clf._asked(formulas, None)
    lat = clf.latent
    fitted = lat.dataset_.frame.iloc[lat.train_rows_]
    known = pd.Series(list(keys), dtype=object).isin(set(fitted["composition"])).to_numpy()
    none = np.array([None] * len(keys), dtype=object)

    def marginals(Xl, noise):  # no own rows: the old latent GP's dataset held none of these
        return lat._marginals(Xl, none, observation_noise=noise)

    prop = clf.model_.latent
    mean, std = prop.moments(None, raw, marginals=marginals)  # the fitted rows' table first
    new_mean, new_std = clf._property_moments(raw, keys, prop)
    # where the fit saw the row, before and now agree: a check of the emulation
    k = torch.as_tensor(known)
    if not torch.allclose(mean[k], new_mean[k]) or bool((std[k] != 0).any()):
        raise AssertionError("the fitted rows' latent input differs between the two paths")
    Z = clf._task_inputs(clf._inputs(raw))
    return clf.model_.quadrature(Z, mean, std).cpu().numpy(), ~known


def classifier_metrics(metal: np.ndarray, p: np.ndarray) -> dict:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return {"brier": float(np.mean((p - metal) ** 2)),
            "log_loss": float(-np.mean(metal * np.log(q) + (1 - metal) * np.log(1 - q))),
            "auc": float(roc_auc_score(metal, p)) if 0 < metal.sum() < metal.size else None}  # fmt: skip


def run_fold(ds: MultiFidelityDataset, kind: str, k: int, train: np.ndarray,
             test: np.ndarray) -> list[dict]:  # fmt: skip
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hurdle = HurdleRegressor(progress=False).fit(ds.subset(train))
    fit_seconds = time.perf_counter() - tic
    frame = ds.frame.iloc[test]
    formulas = frame["composition"].tolist()
    y = frame["value"].to_numpy()
    metal = (y == 0).astype(float)
    new = hurdle.predictive(formulas)
    p_old, affected = old_p_metal(hurdle, formulas)
    mu, sd = hurdle.regressor_.predict(formulas, True, observation_noise=True)
    old = hurdle.spec_.predictive(p_old, mu, sd)
    has_pbe = frame["composition"].isin(
        set(ds.frame.loc[ds.frame["fidelity_index"] == 0, "composition"])).to_numpy()
    out = []
    for path, pred in zip(PATHS, (new, old)):
        for subset, mask in (("all", np.ones_like(affected)), ("affected", affected & has_pbe)):
            rec = {"dataset": "expt_gap", "folds": kind, "fold": k, "seed": SEED,
                   "model": "hurdle", "estimator": "HurdleRegressor()", "path": path,
                   "subset": subset, "candidates": False, "fit_seconds": fit_seconds,
                   "n_affected": int((affected & has_pbe).sum()), "n_test": int(len(y))}  # fmt: skip
            idx = np.flatnonzero(mask)
            part = pred.subset(idx)
            rec.update(evaluate(y[idx], part))
            rec.update(classifier_metrics(metal[idx], np.asarray(part.weight)))
            out.append(rec)
    return out


def report() -> None:
    items = read_partial(PARTIAL)
    if not items:
        print("no folds run yet")
        return
    df = pd.DataFrame(items)
    cols = ["mae", "nlpd", "crps", "coverage_90", "brier", "log_loss", "auc"]
    table = (df.groupby(["folds", "subset", "path"], sort=False)
             .agg(n_folds=("fold", "nunique"), n=("n", "sum"),
                  **{c: (c, "mean") for c in cols}).reset_index())  # fmt: skip
    paired = df.pivot_table(index=["folds", "subset", "fold"], columns="path", values=cols)
    diff = pd.DataFrame({
        c: (paired[(c, "own PBE")] - paired[(c, "before")]).groupby(["folds", "subset"]).agg(
            lambda s: f"{s.median():+.4f} ({s.min():+.4f} to {s.max():+.4f})")
        for c in cols if (c, "own PBE") in paired.columns}).reset_index()  # fmt: skip
    write_results("diag_own_pbe", items, table=table,
                  sections={"own PBE less before, per fold: median (range)": diff})


def main() -> None:
    if "--report-only" in sys.argv:
        report()
        return
    ds = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
    done = {(i["folds"], i["fold"]) for i in read_partial(PARTIAL)}
    kinds = [k for k in os.environ.get("KINDS", "").split(",") if k] or KINDS
    wanted = [int(f) for f in os.environ.get("FOLDS", "").split(",") if f] or range(N_FOLDS)
    for kind in kinds:
        folds = list((kfold if kind == "random" else grouped_kfold)(ds, N_FOLDS, SEED).split(ds))
        for k in wanted:
            if (kind, k) in done:
                continue
            print(f"{kind} fold {k + 1} of {N_FOLDS}: fitting HurdleRegressor() ...", flush=True)
            items = run_fold(ds, kind, k, *folds[k])
            append_partial(PARTIAL, items)
            print(f"{kind} fold {k + 1}: fitted in {items[0]['fit_seconds']:.0f} s", flush=True)
    report()


if __name__ == "__main__":
    main()
