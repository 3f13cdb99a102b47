# %% [markdown]
# # The architectures compared, and whether their intervals can be trusted
#
# Four ways to use cheap DFT values for experimental formation enthalpies (Kim et al. 2017,
# with OQMD and MP values as lower fidelities), on the same cross-validation folds:
#
# * `single`: a GP on the experimental labels only (the baseline);
# * `ar1`: the difference model, `f_expt(x) = rho * f_mp(x) + delta(x)`, level by level;
# * `multitask`: the fidelities as correlated tasks (a coregionalisation matrix);
# * `latent`: the explicit latent chain, each level fed the level below's value as an input.
#
# Then the calibration question: do 90% intervals hold 90% of the held-out values, and if not,
# how to fix them without touching the fit.
#
# Open `07_architectures.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/07_architectures.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfgp.calibration import VarianceScaling, cross_validate, summary
from mfgp.calibration.plots import calibration_curve, pit_histogram
from mfgp.data import MultiFidelityDataset, kfold
from mfgp.datasets import load_formation_enthalpy
from mfgp.estimators import MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip

# %%
# The data, and one set of folds for every architecture
df = load_formation_enthalpy(["oqmd", "mp", "expt"])
if FAST:
    keep = df[df.fidelity == "expt"].composition.drop_duplicates().sample(120, random_state=0)
    df = df[df.composition.isin(keep)]
ds = MultiFidelityDataset.from_frame(df, conflict_warn=None)  # repeated measurements: averaged
folds = kfold(ds, 2 if FAST else 5, seed=0)
print(ds.summary())

# %%
# Cross-validate each architecture (out-of-fold predictions of new measurements)
opts = dict(max_iter=10 if FAST else 100, progress=False)
results = {arch: cross_validate(MultiFidelityRegressor(arch, **opts), ds, folds,
                                progress=not FAST)
           for arch in ["single", "ar1", "multitask", "latent"]}  # fmt: skip
columns = ["mae", "rmse", "nlpd", "coverage_50", "coverage_90", "miscalibration_area"]
table = pd.DataFrame({a: r.summary().loc["all", columns] for a, r in results.items()}).T
table["fit_seconds"] = [np.mean(r.fit_seconds) for r in results.values()]
print(table.round(3).to_string())

# %% [markdown]
# Lower is better for MAE, RMSE and NLPD (the negative log predictive density, a proper score
# of the whole distribution); coverage should sit at its nominal level. The lower-fidelity
# models use each composition's own DFT value, so they beat the single-fidelity baseline
# wherever OQMD or MP computed the compound.

# %%
# Calibration curves of all four, and the PIT histogram of the difference model
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for arch, r in results.items():
    p = r.predictions
    calibration_curve(p.observed, p["mean"], p["std"], ax=axes[0], label=arch)
p = results["ar1"].predictions
axes[0].set_title(f"out-of-fold formation enthalpies, {len(folds)} folds")
pit_histogram(p.observed, p["mean"], p["std"], ax=axes[1], label="ar1, out-of-fold")
axes[1].set_title("ar1: PIT (flat when calibrated)")
fig.tight_layout()

# %%
# Recalibrate: a variance scale learned on some folds' predictions, checked on the others
first = p["fold"] == 0
scaler = VarianceScaling().fit(p.observed[first], p["mean"][first], p["std"][first])
rest = p[~first]
before = summary(rest.observed, rest["mean"], rest["std"]).loc["all"]
after = summary(rest.observed, rest["mean"], scaler.transform_std(rest["std"])).loc["all"]
recalibrated = pd.DataFrame({"raw": before, "scaled": after}).loc[
    ["nlpd", "coverage_50", "coverage_90", "miscalibration_area"]]  # fmt: skip
print(recalibrated.round(3).to_string())

# %% [markdown]
# `VarianceScaling` multiplies every standard deviation by one learned factor (per fidelity if
# asked); `IsotonicRecalibration` maps the whole predictive CDF. Both are fitted on
# out-of-fold predictions, never on the points they are judged on.

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("07_architectures")
