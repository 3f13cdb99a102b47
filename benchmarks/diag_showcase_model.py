"""Why mfgp's planner trails BoTorch's qMFKG on Augmented Hartmann-6: the model, measured.

A development diagnostic (seeds 100-109, never the showcase's reported seeds 0-9). The
showcase (``bench_showcase.py``) starts every strategy from the tutorial's 16 random points at
random fidelities ``s`` in {0.5, 0.75, 1}; a planner that buys cheap rows then adds rows at
``s = 0.5``. This fits each model on such data and scores its prediction of the *target*
``f(x, 1)`` at 1,000 uniform test points, which is what a multi-fidelity planner's value
rests on (a cheap row is worth buying only if the model carries it to the target):

* designs: ``start`` (the 16 points), ``start + 24 cheap`` (24 uniform points at s = 0.5),
  ``start + 8 target`` (8 uniform points at s = 1, about the same money);
* models: mfgp's default AR1 (``AR1Spec()``: the recursive trainer), the AR1 fitted jointly
  (``training="joint"``), variants of the AR1 (:func:`fit_variant`: the sparse-level prior,
  restarts, the lengthscale prior of BoTorch's tutorial model), and BoTorch's tutorial model
  (``SingleTaskMultiFidelityGP``, fitted with ``fit_gpytorch_mll``);
* metrics at the target: RMSE, NLPD of the noise-free values under the latent predictive
  (variance floored at 1e-6), the Spearman correlation of the mean with the truth, and the
  regret of the test point of highest predicted mean.

``cd benchmarks && ../.venv/bin/python diag_showcase_model.py`` (``SEEDS=3`` for a quick
look); writes ``results/diag_showcase_model.{json,md}``.
"""

from __future__ import annotations

import functools
import os
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _common import write_results
from bench_showcase import (
    FIDELITIES,
    OPTIMUM,
    TK,
    _mfgp_rows,
    fit_botorch,
    fit_mfgp,
    initial,
    problem,
    tutorial_kernel,
)
from scipy.stats import spearmanr

SEEDS = [100 + s for s in range(int(os.environ.get("SEEDS", 10)))]
DESIGNS = {"start": (0, 1.0), "start + 24 cheap": (24, 0.5), "start + 8 target": (8, 1.0)}
MODELS = os.environ.get("MODELS", "AR1 default;AR1 joint+raw;AR1 joint;AR1 gamma20;AR1 nosparse;"
                        "AR1 restarts;AR1 ls36;AR1 joint+ls36+raw;AR1 tut;AR1 joint+tut+raw;"
                        "AR1 tut0;AR1 joint+tut0+raw;AR1 joint+tut0;BoTorch STMF").split(";")
N_TEST = 1000


def design(seed: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    X, Y = initial(seed)
    extra, s = DESIGNS[name]
    if extra:
        g = torch.Generator().manual_seed(10_000 + seed)
        x = torch.rand(extra, 6, generator=g, **TK)
        new = torch.cat([x, torch.full((extra, 1), s, **TK)], 1)
        X, Y = torch.cat([X, new]), torch.cat([Y, problem()(new).unsqueeze(-1)])
    return X, Y


def fit_variant(name: str, X, Y):
    """Development variants of the AR1, ``"AR1 tok+tok"``: ``joint`` (else recursive),
    ``ls36`` (the lengthscale prior of BoTorch's tutorial model), ``tut`` (its lengthscale and
    output scale priors on every level, :func:`bench_showcase.tutorial_kernel`), ``tut0``
    (the output scale prior on level 0 only, :func:`bench_showcase.tutorial_ar1_kernel`),
    ``gammaR`` (a sparse level's ``Gamma(2, R)`` discrepancy prior), ``nosparse`` (no sparse
    rule), ``restarts`` (5 extra starts); ``joint`` has the priors of
    ``AR1Spec(training="joint")`` (:func:`mfgp.models.specs.joint_priors`) unless ``raw``."""
    import mfgp.fit
    from _common import sparse_rule

    from mfgp.kernels.means import FidelityMean
    from mfgp.models import AR1GP
    from mfgp.models.specs import joint_priors

    tokens = set(name.split()[1].split("+"))
    Xm = _mfgp_rows(X)
    kernel = (tutorial_kernel if "tut" in tokens else
              functools.partial(tutorial_kernel, outputscale=False) if "ls36" in tokens
              else None)  # fmt: skip
    restarts = 5 if "restarts" in tokens else 0
    if "tut0" in tokens:  # the showcase's "tutorial prior": output scale prior on level 0 only
        from bench_showcase import tutorial_ar1_kernel

        extra = {"covar_module": tutorial_ar1_kernel()}
    else:
        extra = {"data_kernel": kernel}
    if "joint" in tokens:
        model = AR1GP(Xm, Y, **extra)
        if "raw" not in tokens:  # AR1Spec(training="joint")'s priors
            joint_priors(model.covar_module, Xm[:, -1])
        mfgp.fit.fit_gp(model, restarts=restarts)
        return model
    model = AR1GP(Xm, Y, mean_module=FidelityMean(3).to(Xm), **extra)
    with sparse_rule([t for t in tokens if t.startswith("gamma")]):
        mfgp.fit.fit_ar1_recursive(model, sparse=False if "nosparse" in tokens else "auto",
                                   restarts=restarts)  # fmt: skip
    return model


def moments(model_name: str, X, Y, test: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    at = torch.cat([test, torch.ones(len(test), 1, **TK)], 1)  # s = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model_name == "BoTorch STMF":
            model = fit_botorch(X, Y)
            rows = at
        elif model_name in ("AR1 default", "AR1 joint"):  # AR1Spec(training=...)
            model = fit_mfgp(X, Y, "joint" if model_name == "AR1 joint" else "auto")
            rows = _mfgp_rows(at)
        else:
            model = fit_variant(model_name, X, Y)
            rows = _mfgp_rows(at)
        with torch.no_grad():
            post = model.posterior(rows)
    return post.mean.reshape(-1).numpy(), post.variance.reshape(-1).clamp_min(1e-6).numpy()


def main() -> None:
    f = problem()
    records = []
    for seed in SEEDS:
        test = torch.rand(N_TEST, 6, generator=torch.Generator().manual_seed(20_000 + seed), **TK)
        truth = f(torch.cat([test, torch.ones(N_TEST, 1, **TK)], 1)).numpy()
        for name in DESIGNS:
            X, Y = design(seed, name)
            for model_name in MODELS:
                t0 = time.perf_counter()
                mean, var = moments(model_name, X, Y, test)
                err = mean - truth
                records.append({
                    "seed": seed, "design": name, "model": model_name,
                    "rmse": float(np.sqrt(np.mean(err**2))),
                    "nlpd": float(np.mean(0.5 * np.log(2 * np.pi * var) + err**2 / (2 * var))),
                    "spearman": float(spearmanr(mean, truth).statistic),
                    "argmax_regret": float(OPTIMUM - truth[int(np.argmax(mean))]),
                    "seconds": time.perf_counter() - t0,
                })  # fmt: skip
                r = records[-1]
                print(f"seed {seed} {name:<18} {model_name:<13} rmse {r['rmse']:.3f} "
                      f"nlpd {r['nlpd']:7.2f} rho_s {r['spearman']:.2f} "
                      f"regret {r['argmax_regret']:.2f} ({r['seconds']:.1f} s)", flush=True)
    cols = ["rmse", "nlpd", "spearman", "argmax_regret"]
    table = (pd.DataFrame(records).groupby(["design", "model"], sort=False)[cols].median()
             .round(3).reset_index())  # fmt: skip
    write_results(os.environ.get("OUT", "diag_showcase_model"), records, table=table)
    print(table.to_string(index=False))


if __name__ == "__main__":
    assert FIDELITIES[-1] == 1.0
    main()
