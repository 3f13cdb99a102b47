"""Calibration of the AR1's sparse-level rule in the campaign regime (a development diagnostic).

A campaign starts with 20 experiments beside every PBE row, which on 132 magpie features is a
sparse top level (fewer rows than the 136 hyperparameters it fits, see
:func:`mfgp.fit.sparse_level`). This measures what the sparse-level rule does to the held-out
predictive there: the default AR1 against ``sparse=False`` and variants of the rule (tokens
joined by ``+``: ``belownoise`` / ``fitnoise``, the level's noise taken from the PBE level /
fitted; ``gammaR``, a ``Gamma(2, R)`` prior on the discrepancy's variance; and the other
tokens of ``_common.sparse_rule``: ``loo``, ``noiseL``, ``rhoS``). The rule until
this diagnostic was ``belownoise+gamma20``; the default is now ``fitnoise+gamma2``. n = 20,
50, 100 and 200 experiments (200 is above the threshold: every variant is the same fit
there, a check), beside the PBE gaps of the 900 pool and test compositions, as in the
learn-the-map campaign. Metrics on the held-out experimental gaps, with observation noise:
MAE, NLPD, coverage of the central 50 and 90% intervals.

Development split only: the compositions are shuffled with ``random_state=7`` (the campaigns
use 0) and the experiments drawn with seeds 100-104, so nothing here is a reported fold.
``cd benchmarks && ../.venv/bin/python diag_sparse_campaign.py`` (``SEEDS=2 NS=20,50`` for
a quick look); writes ``results/diag_sparse_campaign.{json,md}``.
"""

from __future__ import annotations

import functools
import os
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd

import mfgp.fit
from _common import sparse_rule, write_results
from mfgp.calibration import GaussianPredictive, evaluate
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor

SEEDS = [100 + s for s in range(int(os.environ.get("SEEDS", 5)))]
NS = [int(n) for n in os.environ.get("NS", "20,50,100,200").split(",")]
VARIANTS = os.environ.get("VARIANTS", "default,belownoise+gamma20,nosparse").split(",")


@contextmanager
def recursive_options(**kwargs):
    """Let the estimator's recursive trainer run with ``kwargs`` (e.g. ``sparse=False``)."""
    old = mfgp.fit.fit_ar1_recursive
    mfgp.fit.fit_ar1_recursive = functools.partial(old, **kwargs)
    try:
        yield
    finally:
        mfgp.fit.fit_ar1_recursive = old


def main() -> None:
    df = load_bandgap_ladder(["pbe", "expt"])
    e = df[df.fidelity == "expt"]
    ex = e.groupby("composition").agg(formula=("formula", "first"), value=("value", "mean"))
    ex = ex[ex.index.isin(set(df.loc[df.fidelity == "pbe", "composition"]))].reset_index()
    ex = ex.sample(frac=1.0, random_state=7).reset_index(drop=True)
    test, pool = ex.iloc[:300], ex.iloc[300:900]
    comps = set(pool.composition) | set(test.composition)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(comps)][["formula", "fidelity", "value"]]
    records = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pool))
        for n in NS:
            rows = pool.iloc[order[:n]].assign(fidelity="expt")[["formula", "fidelity", "value"]]
            data = pd.concat([pbe, rows], ignore_index=True)
            data.attrs["fidelities"] = ["pbe", "expt"]
            for variant in VARIANTS:
                kwargs = {"sparse": False} if variant == "nosparse" else {}
                t0 = time.perf_counter()
                with recursive_options(**kwargs), sparse_rule(variant.split("+")):
                    reg = MultiFidelityRegressor("ar1", progress=False, seed=seed).fit(data)
                fit_s = time.perf_counter() - t0
                mean, std = reg.predict(test.formula.tolist(), return_std=True,
                                        observation_noise=True)  # fmt: skip
                m = evaluate(test.value.to_numpy(), GaussianPredictive(mean, std))
                gp = getattr(reg.model_, "model", reg.model_)
                noise = gp.likelihood.noise.detach().reshape(-1).numpy()
                scale = float(gp.outcome_transform.stdvs.reshape(-1)[0])
                records.append({"seed": seed, "n_expt": n, "variant": variant,
                                "mae": m["mae"], "nlpd": m["nlpd"],
                                "coverage_50": m["coverage_50"], "coverage_90": m["coverage_90"],
                                "noise_sd_expt_eV": float(np.sqrt(noise[-1]) * scale),
                                "mean_std_eV": float(np.mean(std)), "fit_s": fit_s})  # fmt: skip
                r = records[-1]
                print(f"seed {seed} n {n:>3} {variant:<10} mae {r['mae']:.3f} "
                      f"nlpd {r['nlpd']:.2f} cov50 {r['coverage_50']:.2f} "
                      f"cov90 {r['coverage_90']:.2f} noise {r['noise_sd_expt_eV']:.3f} "
                      f"std {r['mean_std_eV']:.3f} ({fit_s:.1f} s)", flush=True)  # fmt: skip
    cols = ["mae", "nlpd", "coverage_50", "coverage_90", "noise_sd_expt_eV", "mean_std_eV"]
    table = (pd.DataFrame(records).groupby(["n_expt", "variant"])[cols].median().round(3)
             .reset_index())  # fmt: skip
    write_results(os.environ.get("OUT", "diag_sparse_campaign"), records, table=table)


if __name__ == "__main__":
    main()
