# %% [markdown]
# # Metals and zero gaps: the hurdle model
#
# About half of the experimental band gaps are exactly 0: the compound is a metal. A Gaussian
# GP puts probability on negative gaps and blurs "0, or an insulator of unknown gap" into one
# wide bell. The hurdle model says it properly: `P(gap = 0)` from a GP classifier (which also
# sees the compound's PBE gap as an input), and for the non-metals a softplus-normal AR1 fitted
# to the nonzero gaps. Its predictive is a point mass at 0 plus a positive continuous part.
#
# Open `04_metals.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/04_metals.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfgp.calibration import GaussianPredictive, evaluate
from mfgp.calibration.plots import reliability_diagram
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip
gp = dict(max_rows_per_fidelity=150 if FAST else 1500, max_iter=10 if FAST else 100)

# %%
# Experimental gaps (held-out 20%) and the PBE gap of every composition
df = load_bandgap_ladder(["pbe", "expt"])
expt = df[df.fidelity == "expt"].sample(frac=1.0, random_state=0)
if FAST:
    expt = expt.iloc[:200]
n_test = len(expt) // 5
test, train_expt = expt.iloc[:n_test], expt.iloc[n_test:]
pbe = df[df.fidelity == "pbe"]
if FAST:
    pbe = pbe[pbe.composition.isin(expt.composition)]
train = pd.concat([pbe, train_expt], ignore_index=True)
formulas = test.formula.tolist()
y = test.value.to_numpy()
print(f"{len(train_expt)} training gaps ({(train_expt.value == 0).mean():.0%} metals), "
      f"{len(test)} held out")  # fmt: skip

# %%
# The hurdle model, and a Gaussian AR1 on the same rows for comparison
small = {"num_inducing": 100}  # the fast mode's classifier, without the PBE-gap input
hurdle = HurdleRegressor(regressor_options=gp, classifier_options=small if FAST else None,
                         latent=not FAST, progress=not FAST).fit(train, candidates=formulas)
gauss = MultiFidelityRegressor("ar1", progress=not FAST, **gp).fit(train, candidates=formulas)

pred = hurdle.predictive(formulas)
mean, std = gauss.predict(formulas, return_std=True, observation_noise=True)
rows = {"hurdle": evaluate(y, pred), "gaussian ar1": evaluate(y, GaussianPredictive(mean, std))}
scores = pd.DataFrame(rows).T[["mae", "crps", "nlpd", "coverage_90"]]
scores["mae_median"] = [np.abs(pred.median() - y).mean(), np.abs(mean - y).mean()]
scores["p(gap < 0)"] = [0.0, GaussianPredictive(mean, std).cdf(np.zeros_like(y)).mean()]
print(scores.round(3))

# %% [markdown]
# The median of the hurdle predictive is 0 wherever `P(metal) >= 0.5`: it is the point to report
# when errors are scored by absolute value. The Gaussian puts a share of its probability on
# negative gaps, which no material has.

# %%
# Is P(metal) calibrated? And what do three predictives look like?
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
reliability_diagram(y == 0, hurdle.predict_proba(formulas)[:, 1], ax=axes[0], label="hurdle",
                    event="metal")  # fmt: skip
axes[0].set_title(f"P(metal) on the {len(y)} held-out compositions")
grid = np.linspace(0, 4, 200)
picks = {"most metallic": int(np.argmax(pred.weight)),
         "most uncertain": int(np.argmin(np.abs(pred.weight - 0.5))),
         "widest gap": int(np.argmax(pred.median()))}  # fmt: skip
for name, i in picks.items():
    cdf = pred.subset(np.repeat(i, grid.size)).cdf(grid)
    axes[1].step(grid, cdf, where="post",
                 label=f"{formulas[i]} ({name}; measured {y[i]:.2f} eV)")  # fmt: skip
axes[1].set(xlabel="experimental band gap x (eV)", ylabel="P(gap <= x)",
            title="hurdle predictive CDFs of three held-out compounds")
axes[1].legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# A CDF that starts above 0 at `x = 0` has a point mass there: the probability that the compound
# is a metal. `hurdle.nonmetal_predictive(formulas)` is the continuous part alone, for a
# compound known to be a semiconductor.

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("04_metals")
