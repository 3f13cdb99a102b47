# %% [markdown]
# # Reaction energies with correlated uncertainty: errors that cancel
#
# A reaction energy is a difference of formation enthalpies, and a model's errors on chemically
# similar compounds are correlated: when it overestimates `AlNi` it tends to overestimate
# `AlNi3` too. The variance of the difference is `w^T Sigma w` from the *joint* posterior, smaller
# than what adding the two compounds' own uncertainties gives (Hutchinson et al. 2017 exploit
# exactly this). Here the Al-Ni and Al-Fe intermetallics are hidden from the experimental
# training labels (their DFT values are kept: a DFT calculation is cheap), and the model
# predicts their decomposition energies.
#
# Open `05_reactions.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/05_reactions.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfgp.data import parse_reaction
from mfgp.datasets import load_formation_enthalpy
from mfgp.estimators import MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip

# %%
# Kim 2017 enthalpies (eV/atom) with OQMD and MP; hide the Al-Ni and Al-Fe experiments
df = load_formation_enthalpy(["oqmd", "mp", "expt"])
hidden_systems = {"Al-Ni", "Al-Fe"}
elements = df.formula.str.findall(r"[A-Z][a-z]?").map(lambda e: "-".join(sorted(set(e))))
hidden = elements.isin(hidden_systems)
expt = df[(df.fidelity == "expt") & ~hidden]
if FAST:
    expt = expt.sample(150, random_state=0)
train = df[(df.fidelity != "expt") & (df.composition.isin(expt.composition) | hidden)]
train = pd.concat([train, expt], ignore_index=True)
truth = df[(df.fidelity == "expt") & hidden].groupby("formula")["value"].mean()
print(f"{len(expt)} experimental labels; hidden: {sorted(truth.index)}")

# %%
reg = MultiFidelityRegressor("ar1", progress=not FAST, max_iter=15 if FAST else 100)
reg.fit(train, conflict_warn=None)  # repeated measurements are averaged

reactions = ["Al + Ni -> AlNi", "AlNi3 -> AlNi + 2 Ni", "Al2Ni3 -> 2 AlNi + Ni",
             "Al2Fe3 -> AlFe + AlFe2", "Al5Fe2 -> 2 Al2Fe + Al"]  # fmt: skip
table = reg.reaction_energy(reactions)
table["measured"] = [float(parse_reaction(r).weights @ truth[parse_reaction(r).formulas])
                     for r in reactions]  # fmt: skip
table["z"] = (table["measured"] - table["mean"]) / table["std"]
table["z_independent"] = (table["measured"] - table["mean"]) / table["std_independent"]
print(table.drop(columns="reaction").round(3).to_string(index=False))

# %% [markdown]
# The formation reaction `Al + Ni -> AlNi` has one term, so its two standard deviations agree.
# The decompositions combine two compounds of the same system: their correlated errors cancel
# and `std` is well below `std_independent`. The `z` columns say whether the measured energy
# lies where each standard deviation says it should (|z| < 1.64 for 90% of reactions).

# %%
# The two uncertainties side by side, with the measured energies
fig, ax = plt.subplots(figsize=(7, 3.6))
pos = np.arange(len(table))
ax.errorbar(pos - 0.1, table["mean"], 1.645 * table["std_independent"], fmt="none", capsize=4,
            color="0.6", label="90%, terms independent")  # fmt: skip
ax.errorbar(pos + 0.1, table["mean"], 1.645 * table["std"], fmt="o", capsize=4,
            color="C0", label="90%, joint posterior")  # fmt: skip
ax.plot(pos, table["measured"], "k*", ms=9, label="measured")
ax.set_xticks(pos, table["equation"], rotation=20, ha="right", fontsize="small")
ax.set_ylabel("reaction energy (eV per reaction)")
ax.set_xlabel("reaction (Al-Ni and Al-Fe experiments hidden)")
ax.axhline(0, color="0.85", lw=0.8)
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# Any linear combination: the experiment-minus-DFT correction of one compound
mean, std, std_independent = reg.predict_combination(["AlNi", "AlNi"], [1.0, -1.0],
                                                     fidelity=["expt", "mp"])  # fmt: skip
print(f"AlNi expt - MP: {mean:.3f} +- {std:.3f} eV/atom (independent terms: "
      f"+- {std_independent:.3f})")  # fmt: skip

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("05_reactions")
