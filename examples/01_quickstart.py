# %% [markdown]
# # mfgp quickstart: experimental band gaps from PBE + a few hundred experiments
#
# Run as a script (`python examples/01_quickstart.py`) or open as a notebook (jupytext percent
# format). `MFGP_FAST=1` shrinks it to a smoke test (used by `tests/test_examples.py`).

# %%
import os

import pandas as pd

from mfgp.calibration import VarianceScaling, cross_validate
from mfgp.data import MultiFidelityDataset, kfold
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

# %% Cross-validate the difference (AR1) model on the experimental gaps
opts = dict(
    max_rows_per_fidelity=200 if FAST else 1500,
    max_fit_points=200 if FAST else 1200,
    max_iter=15 if FAST else 50,
    progress=not FAST,
)
cv = cross_validate(
    MultiFidelityRegressor("ar1", **opts), ds, kfold(ds, 3, seed=0), progress=not FAST
)
print(cv.summary())

# %% Recalibrate on the out-of-fold predictions, then predict new compounds
p = cv.predictions
scaler = VarianceScaling().fit(p.observed, p["mean"], p["std"])
reg = MultiFidelityRegressor("ar1", **opts).fit(ds, candidates=["Si", "GaAs"])
table = reg.predict_frame(["Si", "GaAs"])
table["std"] = scaler.transform_std(table["std"])
print(table)

# %% Figures people look at
from mfgp.calibration.plots import calibration_curve, parity_plot

fig, ax = parity_plot(p.observed, p["mean"], scaler.transform_std(p["std"]), units="eV")
fig2, ax2 = calibration_curve(p.observed, p["mean"], p["std"], label="raw")
