"""Fitting mfgp's models: one engine, thin drivers.

* :mod:`mfgp.fit.engine`: L-BFGS and Adam, seeded restarts, Cholesky jitter retries, progress
  bars and the :class:`FitReport` every trainer returns;
* :func:`fit_gp` (:mod:`mfgp.fit.exact`): exact marginal likelihood with Cholesky solves,
  hyperparameters on a stratified subset, the posterior on all rows;
* :func:`fit_ar1_recursive` (:mod:`mfgp.fit.recursive`): the AR1's likelihood level by level;
* :func:`fit_variational` (:mod:`mfgp.fit.variational`): mini-batch Adam on the ELBO.

This package sits below :mod:`mfgp.models`: it knows kernels, never model classes.
"""

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
from mfgp.fit.engine import JITTERS, FitReport, stratified_subset
from mfgp.fit.exact import fit_gp
from mfgp.fit.recursive import fit_ar1_recursive
from mfgp.fit.variational import fit_variational

__all__ = [
    "JITTERS",
    "FitReport",
    "fit_ar1_recursive",
    "fit_gp",
    "fit_variational",
    "stratified_subset",
]
