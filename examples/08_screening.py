# %% [markdown]
# # Screening a million candidates for band gaps in a window
#
# A fitted model ranks a pool far larger than its training data. Here: every charge-balanced
# binary and ternary composition (up to 20 atoms per formula) over 60 elements, 1,036,171
# formulas, less those already measured or computed, scored by the
# probability that the experimental gap lies in [1.1, 1.7] eV. The candidates are enumerated
# lazily in chunks and streamed through the model; memory holds one batch and the running top
# 1,000.
#
# The model is campaign-sized: 500 measured compositions with their PBE values and 1,000 other
# PBE rows (about 1,850 training rows). An exact predictive variance costs a triangular solve
# against every training row, `n^2` flops per candidate, so on 2 CPU cores a million candidates
# take about 8 minutes with this model and would take about half an hour with all 4,604
# measured gaps (about 9,000 rows); on a GPU the large model is the one to use
# (`docs/screening.md`).
#
# Open `08_screening.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/08_screening.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import matplotlib.pyplot as plt

import mfgp
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip

# %%
# A model of experimental gaps given PBE (the difference model on shipped data)
df = load_bandgap_ladder(["pbe", "expt"])
expt = df[df.fidelity == "expt"].sample(150 if FAST else 500, random_state=0)
pbe = df.fidelity == "pbe"
if FAST:  # only the PBE rows of the sampled compositions
    pbe &= df.composition.isin(expt.composition)
train = df[(df.fidelity == "expt") & df.index.isin(expt.index) | pbe]
reg = MultiFidelityRegressor("ar1", max_rows_per_fidelity=200 if FAST else 1000,
                             max_iter=10 if FAST else 100, progress=not FAST).fit(train)  # fmt: skip

# %%
# The pool: charge-balanced binaries and ternaries, never held as one list
from pymatgen.core import Element

noble = {"He", "Ne", "Ar", "Kr", "Xe", "Tc", "Pm"}  # no common oxidation states, or radioactive
elements = [e.symbol for e in Element if e.Z <= 83 and e.symbol not in noble][:60]
if FAST:
    elements = ["Li", "Na", "Mg", "Zn", "Ga", "O", "S", "Se", "I", "Cl"]
options = dict(n_elements=(2, 3), max_atoms_per_formula=6 if FAST else 20, charge_balanced=True)
n = mfgp.count_compositions(elements, **options)
print(f"{len(elements)} elements: {n:,} charge-balanced candidates")

# %%
# Stream them through the model and keep the 1,000 most likely to have a gap in the window
pool = mfgp.enumerate_compositions(elements, **options, exclude=df.formula)  # known: left out
best = mfgp.screen(reg, pool, score="window",
                   window=(1.1, 1.7), top_k=50 if FAST else 1000, progress=not FAST)  # fmt: skip
print(best.head(15).round(3).to_string(index=False))

# %%
# The top candidates' predicted gaps with their 90% intervals
top = best.head(25)
fig, ax = plt.subplots(figsize=(8, 3.6))
ax.errorbar(range(len(top)), top["mean"], [top["mean"] - top["lower_90"],
            top["upper_90"] - top["mean"]], fmt="o", capsize=3,
            label="predicted mean, 90% interval")  # fmt: skip
ax.axhspan(1.1, 1.7, color="C2", alpha=0.15, label="window 1.1-1.7 eV")
ax.set_xticks(range(len(top)), top["formula"], rotation=60, ha="right", fontsize="small")
ax.set_ylabel("experimental band gap (eV)")
ax.set_xlabel("candidate, by rank (score: P(gap in the window))")
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# The score is a probability, so it already weighs the prediction against its uncertainty: a
# candidate whose mean sits in the window but whose interval spans 0 to 3 eV ranks below one
# that is confidently inside. The same call runs on a Dask cluster with `client=`
# (`docs/screening.md`), and from a shell as `mfgp screen gaps.mfgp --elements ...`.

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("08_screening")
