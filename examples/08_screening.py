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
# The model is the one to trust for band gaps: the ready-made hurdle, `mfgp.pretrained("expt_gap")`,
# fitted on every shipped gap (PBE and experiment; 5,932 rows in its regression), which gives
# metals their point mass at 0 eV. It loads in seconds. Its predictive variances are computed
# with a low-rank cache for the whole pool, and the best 4,000 candidates are rescored exactly,
# so every number in the table is exact (`docs/screening.md`). On 2 CPU cores a million
# candidates take about ten minutes with it (`make bench-screen`); the cell below prints how
# long this run took.
#
# Open `08_screening.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/08_screening.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os
import time

import matplotlib.pyplot as plt

import mfgp
from mfgp.datasets import load_bandgap_ladder
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a small pool, not the full results"
      if FAST else "full")  # fmt: skip

# %%
# The ready-made model of experimental gaps given PBE (the hurdle: P(metal), then the gap)
model = mfgp.pretrained("expt_gap")
df = load_bandgap_ladder(["pbe", "expt"])  # what it was fitted on: left out of the pool

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
t0 = time.perf_counter()
best = mfgp.screen(model, pool, score="window",
                   window=(1.1, 1.7), top_k=50 if FAST else 1000, progress=not FAST)  # fmt: skip
print(f"screened in {(time.perf_counter() - t0) / 60:.1f} min")
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
# that is confidently inside, and `p_zero`, the probability of a metal, counts against it. The same call runs on a Dask cluster with `client=`
# (`docs/screening.md`), and from a shell as `mfgp screen gaps.mfgp --elements ...`.

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("08_screening")
