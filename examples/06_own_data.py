# %% [markdown]
# # Bring your own data: your measurements, the shipped DFT pool, fit, save, reload
#
# You have a spreadsheet of your own band-gap measurements. mfgp joins it to its shipped PBE
# gaps by reduced composition (so `Ga1As1`, `AsGa` and `GaAs` are one compound), fits the
# model for band gaps, the **hurdle** (`HurdleRegressor`: `P(metal)` from a classifier, the gap
# of a non-metal from the difference model PBE -> your lab on a positive scale), and writes one
# file you can reload anywhere: no pickle, the data and the fitted posterior inside. Here
# "your" CSV is cut from the shipped experimental gaps, metals (gap 0) included, so the
# notebook runs anywhere; replace `my_gaps.csv` with yours.
#
# Open `06_own_data.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/06_own_data.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, load_estimator
from mfgp.exceptions import InputDataError
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip
work = Path(tempfile.mkdtemp(prefix="mfgp-own-data-"))

# %%
# Your measurements: a CSV with your own column names, written in your own formula style
shipped = load_bandgap_ladder(["pbe", "expt"])
mine = shipped[shipped.fidelity == "expt"].sample(80 if FAST else 400, random_state=4)
pd.DataFrame({"compound": mine.formula, "gap_eV": mine.value.round(3),
              "lab": "our lab"}).to_csv(work / "my_gaps.csv", index=False)  # fmt: skip
print((work / "my_gaps.csv").read_text().splitlines()[:4])

# %%
# Read it (keep_default_na=False: "NaN", sodium nitride, stays a formula) and add the pool
measured = pd.read_csv(work / "my_gaps.csv", keep_default_na=False)
mine = pd.DataFrame({"formula": measured.compound, "fidelity": "my_lab",
                     "value": measured.gap_eV})  # fmt: skip
pbe = shipped[shipped.fidelity == "pbe"][["formula", "fidelity", "value"]]
new = ["GaN", "ZnSe", "CdTe", "Cu2O", "TiO2", "NiAl"]  # the compounds to predict below
if FAST:  # the PBE rows of your compounds, of the new ones and 2,000 others
    own = pbe.formula.isin(set(mine.formula) | set(new))
    pbe = pd.concat([pbe[own], pbe[~own].sample(2000, random_state=0)])
data = pd.concat([pbe, mine], ignore_index=True)
# fidelities: low to high, the target last (a new name has no order mfgp could guess)
gp = dict(max_rows_per_fidelity=300 if FAST else 1500, max_iter=15 if FAST else 50)
opts = dict(fidelities=["pbe", "my_lab"], regressor_options=gp, progress=not FAST,
            latent=not FAST,  # fast mode: a small classifier without the PBE input
            classifier_options={"num_inducing": 100} if FAST else None)  # fmt: skip

# %%
# A typo in a spreadsheet is reported with its row and value, and nothing is fitted
bad = pd.concat([data, pd.DataFrame({"formula": ["GaAz"], "fidelity": ["my_lab"],
                                     "value": [1.2]})], ignore_index=True)  # fmt: skip
try:
    HurdleRegressor(**opts).fit(bad)
except InputDataError as err:
    message = str(err)
    print("refused:", message)

# %%
# Fit (candidates: the new compounds' own PBE rows are kept), save to one file, reload, and
# check the reloaded model predicts the same numbers
reg = HurdleRegressor(**opts).fit(data, candidates=new)
print(reg.dataset_.summary())
path = reg.save(work / "my_gaps.mfgp")
print(f"saved {path.name}: {path.stat().st_size / 1e6:.1f} MB")

back = load_estimator(path)
table = back.predict_frame(new)
same = np.array_equal(reg.predict(new), back.predict(new))
print(table.round(3).to_string(index=False))
print("reloaded predictions identical:", same)

# %% [markdown]
# `p_metal` is the chance that the compound measures as a metal (gap 0) in your lab; `mean`
# and the 90% interval are those of the whole predictive, the point mass at 0 included, so a
# lower bound is 0 eV where metal is plausible and never below.

# %%
# The new compounds: the predicted gap in your lab (90% interval) beside their PBE gap
pbe_gap = shipped[shipped.fidelity == "pbe"].drop_duplicates("formula").set_index("formula")
pbe_gap = pbe_gap["value"].reindex(new)
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
pos = np.arange(len(new))
ax.errorbar(pos, table["mean"], [table["mean"] - table["lower_90"],
            table["upper_90"] - table["mean"]], fmt="o", capsize=4,
            label="my_lab gap: predicted mean, 90% interval")  # fmt: skip
for i, p_metal in enumerate(table["p_metal"]):
    ax.annotate(f"P(metal) {p_metal:.2f}", (pos[i], table["upper_90"].iloc[i]),
                textcoords="offset points", xytext=(0, 4), ha="center", fontsize="x-small")
ax.plot(pos, pbe_gap.to_numpy(), "kx", ms=8, label="PBE gap (shipped, computed)")
ax.set_xticks(pos, new)
ax.set_xlabel("composition")
ax.set_ylabel("band gap (eV)")
ax.set_title(f"{len(new)} compositions, predicted by the reloaded hurdle")
ax.legend(fontsize="small")

# %% [markdown]
# The same from a terminal:
#
# ```
# mfgp fit data.csv --model hurdle --fidelities pbe,my_lab -o my_gaps.mfgp
# mfgp predict my_gaps.mfgp formulas.csv -o predictions.csv
# ```
#
# where `data.csv` has the long-format columns `formula, fidelity, value` (the frame `data`
# above, `data.to_csv("data.csv", index=False)`).

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("06_own_data")
