# %% [markdown]
# # mfgp quickstart: experimental band gaps from PBE + a few hundred experiments
#
# Band gaps are never negative and about half of the measured ones are exactly 0 (metals), so
# the model for them is the **hurdle** (`HurdleRegressor`): `P(metal)` from a GP classifier,
# and the gap of a non-metal from a multi-fidelity (PBE -> experiment) GP on a positive scale.
# Its predictions and intervals never go below 0 eV (`04_metals` compares it with a Gaussian
# GP, which puts probability on negative gaps).
#
# Open `01_quickstart.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/01_quickstart.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import pandas as pd

from mfgp.calibration import evaluate
from mfgp.data import MultiFidelityDataset
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip

# %%
# The data: one row per observation, joined by reduced composition
df = load_bandgap_ladder(["pbe", "expt"])
if FAST:
    expt = df[df.fidelity == "expt"].sample(160, random_state=0)
    df = pd.concat([df[(df.fidelity == "pbe") & df.composition.isin(expt.composition)], expt])
ds = MultiFidelityDataset.from_frame(df)
print(ds)
print(ds.summary())

# %%
# Fit the hurdle; recalibrate its predictive on its own 3 folds
# `recalibrate` refits a copy in each fold, keeps the out-of-fold predictions
# (`recalibration_cv_`) and fits an isotonic map of the predictive CDF (and of P(metal)) on
# them: from then on `predictive` gives recalibrated intervals, and `save` keeps the map.
gp = dict(
    max_rows_per_fidelity=200 if FAST else 1500,
    max_fit_points=200 if FAST else 1200,
    max_iter=15 if FAST else 50,
)
new = ["Si", "GaAs", "ZnO", "Cu"]
gaps = HurdleRegressor(regressor_options=gp, progress=not FAST, latent=not FAST,
                       classifier_options={"num_inducing": 100} if FAST else None)  # fmt: skip
gaps.fit(ds, candidates=new)
gaps.recalibrate(3, seed=0)
cv = gaps.recalibration_cv_
scores = pd.Series(evaluate(cv.predictions.observed, cv.predictive()))
print("out-of-fold (3 folds), raw hurdle predictive:")
print(scores[["n", "mae", "crps", "coverage_50", "coverage_90"]].round(3).to_string())

# %%
# Predict new compounds: P(metal), mean, std and the recalibrated 90% interval (eV)
pred = gaps.predictive(new)
table = pd.DataFrame({"formula": new, **pred.table(0.9)}).rename(columns={"p_zero": "p_metal"})
print(table.round(3).to_string(index=False))

# %% [markdown]
# Cu is a metal: most of its probability is the point mass at 0 eV, so its interval starts at
# 0. A lower bound is never below 0 eV.

# %%
# Figures people look at: out-of-fold parity with 90% intervals; calibration before and after
from mfgp.calibration.plots import calibration_curve, parity_plot

raw = cv.predictive()
fig, ax = parity_plot(cv.predictions.observed, pred=raw, units="eV",
                      quantity="experimental band gap", folds=3)  # fmt: skip
fig2, ax2 = calibration_curve(cv.predictions.observed, pred=raw, label="raw hurdle")
calibration_curve(cv.predictions.observed, pred=gaps.recalibration_.transform(raw), ax=ax2,
                  label="recalibrated (in-sample: the map was fitted on these points)",
                  title="out-of-fold band gaps, 3 folds")  # fmt: skip

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("01_quickstart")
