# %% [markdown]
# # Which computed source helps? A mixture of pretrained source models on two targets
#
# mfgp ships five source models, each a network trained on one abundant computed property
# (PBE, HSE, GLLB-SC and SCAN band gaps; PBE formation energies). A mixture-of-experts GP takes
# all of them as its input space, one kernel per source, and learns by marginal likelihood how
# much each contributes. Here: 200 experimental band gaps, and 200 experimental formation
# enthalpies. The learned weights say which source explains each target, and the shotgun
# ranking (cross-validation of each source alone) is the check on that reading.
#
# Open `03_experts.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/03_experts.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os

import matplotlib.pyplot as plt

from mfgp import experts
from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy
from mfgp.estimators import MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip
N = 60 if FAST else 200
opts = dict(progress=False, max_iter=15 if FAST else 100)

# %%
# The library: what each source model saw, and how well it predicts its own property
print(experts.available()[["name", "property", "arch", "n_train", "val_mae", "unit"]])

# %%
# Two targets, 200 labels each (nonzero gaps: the hurdle model handles metals separately)
gaps = load_bandgap_ladder(["expt"])
gaps = gaps[gaps.value > 0].sample(N, random_state=0)
form = load_formation_enthalpy(["expt"]).sample(N, random_state=0)

weights = {}
for name, frame in {"band gap": gaps, "formation enthalpy": form}.items():
    reg = MultiFidelityRegressor("single", experts="all", **opts).fit(frame)
    weights[name] = reg.source_weights()
    print(name, weights[name][["source", "weight"]].round(3).to_dict("records"))

# %%
# The learned weights, side by side
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
for ax, (name, w) in zip(axes, weights.items()):
    experts.plot_source_weights(w, ax=ax, title=name)
fig.tight_layout()

# %% [markdown]
# Reading: the band-gap target puts its weight on the band-gap sources and the formation
# enthalpy on `mp_e_form`; a weight is a share of the prior variance, so a source with a small
# weight can still matter through its lengthscales, and two sources that carry the same
# information split the weight between them. The shotgun ranking below scores each source on
# its own by 3-fold cross-validation on the same labels.

# %%
sources = ["mp_pbe_gap", "mp_e_form"] if FAST else "all"
ranking = experts.rank_sources(form[["formula", "value"]], sources, folds=3, **opts)
print(ranking)

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("03_experts")
