"""Why mfgp's default AR1 loses to Emukit's AR1 on Park: the candidate causes, on the dev seeds.

``bench_synthetic`` found Emukit's AR1 on standardised outputs 1.3x more accurate on Park (30 low,
5 high points in 4-D) than mfgp's default. The two models differ in three ways, each tried here
alone on top of mfgp's default, on the *development* seeds of ``bench_synthetic`` (100-104,
never reported), for every function (a change must not lose elsewhere):

* ``rbf``: squared-exponential data kernels (Emukit's) instead of Matern-5/2, with the same
  lengthscale prior;
* ``noprior``: no lengthscale prior (Emukit's GPy kernels have none);
* ``noise``: the noise fixed at 1e-6 of the output variance instead of learned;
* ``restarts``: four extra seeded starts of L-BFGS (Emukit uses 5 starts in all);
* ``joint``: the joint trainer (Emukit's AR1 is one joint GP), with its priors
  (:func:`mfgp.models.specs.joint_priors`); ``joint+raw``: without them (the joint AR1
  before they were added);
* ``nosparse``: the recursive trainer without its rule for sparse levels
  (``fit_ar1_recursive(sparse=False)``: every level fits its own noise and an unpenalised
  discrepancy variance, the default before the rule);
* ``belownoise`` / ``fitnoise``: the sparse level takes the noise of the level below / fits
  its own (the default since the campaign diagnostic; before it, the rule took the noise from
  below: that rule is ``belownoise+gamma20``);
* ``gammaR`` (e.g. ``gamma5``): the sparse level's prior on its discrepancy variance
  ``Gamma(2, R)`` instead of the default ``Gamma(2, 2)`` (mode ``1 / R``);

and combinations (``VARIANTS=rbf+noprior+noise+joint``).

Run: ``cd benchmarks && ../.venv/bin/python diag_synthetic.py`` (a few minutes); results in
``results/diag_synthetic.{json,md}``. The sparse-level rule was chosen from
``VARIANTS=default,nosparse OUT=diag_synthetic_sparse`` (every function, committed).
Nothing here changes a default by itself: a change is adopted only if it wins on these seeds
and then the reported seeds of ``bench_synthetic`` are rerun.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from _common import sparse_rule, write_results
from bench_synthetic import DESIGNS, emukit_available, metrics, nested_design, run_emukit
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.priors import LogNormalPrior

import mfgp.models.multifidelity as mf_models
from mfgp.fit import fit_ar1_recursive
from mfgp.models.specs import AR1Spec, FitOptions

torch.set_default_dtype(torch.float64)

SEEDS = [int(s) for s in os.environ.get("SEEDS", "100,101,102,103,104").split(",")]
FUNCTIONS = os.environ.get("FUNCTIONS", ",".join(DESIGNS)).split(",")
OUT = os.environ.get("OUT", "diag_synthetic")


def data_kernel_of(tokens: set[str]):
    """The default data kernel, with an RBF base (``rbf``) and/or no lengthscale prior."""

    def make(d, batch_shape=None, active_dims=None):
        from gpytorch.constraints import GreaterThan

        batch_shape = torch.Size() if batch_shape is None else batch_shape
        prior = None if "noprior" in tokens else LogNormalPrior(
            loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))  # fmt: skip
        kw = dict(ard_num_dims=d, batch_shape=batch_shape, lengthscale_prior=prior,
                  lengthscale_constraint=GreaterThan(2.5e-2))  # fmt: skip
        base = RBFKernel(**kw) if "rbf" in tokens else MaternKernel(nu=2.5, **kw)
        dims = None if active_dims is None else torch.tensor(list(active_dims))
        return ScaleKernel(base, batch_shape=batch_shape, active_dims=dims)

    return make


@contextmanager
def data_kernel(make):
    old = mf_models.default_data_kernel
    mf_models.default_data_kernel = make
    try:
        yield
    finally:
        mf_models.default_data_kernel = old


@contextmanager
def raw_joint(on: bool):
    """``AR1Spec(training="joint")`` without its priors (``on``)."""
    import mfgp.models.specs as specs

    old = specs.joint_priors
    if on:
        specs.joint_priors = lambda *args: None
    try:
        yield
    finally:
        specs.joint_priors = old


def run(variant: str, X, Y, X_test, T):
    """A variant is ``default`` or tokens joined by ``+``: ``rbf``, ``noprior`` (no lengthscale
    prior), ``noise`` (noise fixed at 1e-6 of the output variance), ``restarts`` (4 more
    starts), ``joint`` (the joint trainer), ``nosparse`` (no sparse-level rule), ``belownoise`` /
    ``fitnoise`` (the sparse level's noise from the level below / its own), ``gammaR``
    (the sparse level's prior on its discrepancy variance ``Gamma(2, R)``), and the other
    tokens of ``_common.sparse_rule`` (``loo``, ``noiseL``, ``rhoS``)."""
    tokens = set(variant.split("+")) - {"default"}
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    Yvar = torch.full_like(Yt, 1e-6 * float(Yt.var())) if "noise" in tokens else None
    opts = FitOptions(restarts=4 if "restarts" in tokens else 0)
    spec = AR1Spec(training="joint" if "joint" in tokens else "auto")
    t0 = time.perf_counter()
    make = data_kernel_of(tokens) if tokens & {"rbf", "noprior"} else mf_models.default_data_kernel
    with data_kernel(make), sparse_rule(tokens), raw_joint("raw" in tokens):
        model = spec.build(Xt, Yt, Yvar)
        if "nosparse" in tokens:
            if spec.training == "joint":
                raise ValueError("nosparse is a rule of the recursive trainer; drop joint")
            fit_ar1_recursive(model, **opts.kwargs(), sparse=False)
        else:
            spec.fit(model, opts)
    fit_s = time.perf_counter() - t0
    Xq = torch.as_tensor(np.hstack([X_test, np.full((len(X_test), 1), T - 1)]))
    with torch.no_grad():
        post = model.posterior(Xq, observation_noise=True)
    return post.mean.squeeze(-1).numpy(), post.variance.squeeze(-1).numpy(), fit_s


VARIANTS = os.environ.get("VARIANTS", "default,rbf,noise,restarts").split(",")


def main() -> None:
    if not emukit_available():
        raise SystemExit("diag_synthetic needs emukit and GPy: pip install 'mfgp[compare]'")
    records = []
    for name in FUNCTIONS:
        T = len(DESIGNS[name])
        for seed in SEEDS:
            X, Y, X_test, y_test = nested_design(name, seed)
            for row in [*VARIANTS, "emukit AR1 normalised"]:
                try:
                    if row in VARIANTS:
                        mean, var, fit_s = run(row, X, Y, X_test, T)
                    else:
                        mean, var, fit_s = run_emukit("ar1", X, Y, X_test, T, normalise=True)
                    rec, error = metrics(y_test, mean, var), ""
                except Exception as exc:  # a failed fit is a result
                    rec, fit_s, error = {"rmse": math.nan, "mnll": math.nan}, math.nan, repr(exc)[:200]
                records.append({"function": name, "seed": seed, "model": row, **rec,
                                "fit_s": fit_s, "error": error})  # fmt: skip
                print(f"{name:10s} {seed} {row:22s} rmse {rec['rmse']:.4g} mnll {rec['mnll']:.4g} "
                      f"fit {fit_s:.2f}s {error}", flush=True)  # fmt: skip
    df = pd.DataFrame(records)
    table = (df.groupby(["function", "model"], sort=False)
             .agg(rmse=("rmse", "median"), mnll=("mnll", "median"), fit_s=("fit_s", "median"))
             .reset_index())  # fmt: skip
    write_results(OUT, records, table=table)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
