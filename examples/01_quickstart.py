# %% [markdown]
# # mfgp quickstart: experimental band gaps from PBE + a few hundred experiments
#
# Run as a script (`python examples/01_quickstart.py`) or open as a notebook (jupytext percent
# format). `MFGP_FAST=1` shrinks it to a smoke test (used by `tests/test_examples.py`).

# %%
import os

import pandas as pd

from mfgp.data import MultiFidelityDataset
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor

FAST = os.environ.get("MFGP_FAST") == "1"

# %% The data: one row per observation, joined by reduced composition
df = load_bandgap_ladder(["pbe", "expt"])
if FAST:
    expt = df[df.fidelity == "expt"].sample(120, random_state=0)
    df = pd.concat([df[(df.fidelity == "pbe") & df.composition.isin(expt.composition)], expt])
ds = MultiFidelityDataset.from_frame(df)
print(ds)
print(ds.summary())

# %% Fit the difference (AR1) model; recalibrate its intervals on its own 3 folds
# `recalibrate` refits a copy in each fold, keeps the out-of-fold predictions
# (`recalibration_cv_`) and fits an isotonic map of the predictive CDF on them: from then on
# `predictive` and `predict_frame` give recalibrated intervals, and `save` keeps the map.
opts = dict(
    max_rows_per_fidelity=200 if FAST else 1500,
    max_fit_points=200 if FAST else 1200,
    max_iter=15 if FAST else 50,
    progress=not FAST,
)
reg = MultiFidelityRegressor("ar1", **opts).fit(ds, candidates=["Si", "GaAs"])
reg.recalibrate(3, seed=0)
cv = reg.recalibration_cv_
print(cv.summary())

# %% Predict new compounds: mean, std and the recalibrated 90% interval
table = reg.predict_frame(["Si", "GaAs"])
print(table)

# %% Figures people look at: parity with error bars, calibration before and after
from mfgp.calibration.plots import calibration_curve, parity_plot

p = cv.predictions
fig, ax = parity_plot(p.observed, p["mean"], p["std"], units="eV")
fig2, ax2 = calibration_curve(p.observed, p["mean"], p["std"], label="raw")
calibration_curve(p.observed, pred=reg.recalibration_.transform(cv.predictive()), ax=ax2,
                  label="recalibrated (in-sample: the map was fitted on these points)")
ax2.legend()
