# %% [markdown]
# # Planning experiments: a campaign for photovoltaic band gaps
#
# We look for materials whose experimental band gap lies in 1.1-1.7 eV (single-junction
# photovoltaics). PBE gaps are known for thousands of compositions; experiments are the
# scarce resource. A `Campaign` suggests which compositions to measure next, records the
# results in a SQLite store, and can be closed and reopened at any time: nothing committed is
# lost, and a reopened campaign makes the same next suggestion.
#
# Here the "lab" is the shipped experimental gaps (Matbench `expt_gap`), hidden until asked.
# Open `02_campaign.ipynb` in JupyterLab (`pip install -e ".[notebook]"`) or run the paired
# script, `python examples/02_campaign.py` (its figures are saved to `examples/figures/`).
# `MFGP_FAST=1` shrinks it to a smoke test (run by `tests/test_examples.py`); the first cell's
# output says which mode produced the outputs stored in the notebook (`make notebooks`).

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mfgp import Campaign, Experiments, HitsFound, TableOracle
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.figures import save_figures

FAST = os.environ.get("MFGP_FAST") == "1"
print("mode:", "fast (MFGP_FAST=1): a subsample and few iterations, not the full results"
      if FAST else "full")  # fmt: skip
WINDOW = (1.1, 1.7)

# %% [markdown]
# ## The pool, what is known, and the hidden lab
# The pool: experimental compositions that have a PBE gap. Known at the start: every pool
# composition's PBE gap and 15 measured gaps. The oracle answers with the measured value.

# %%
df = load_bandgap_ladder(["pbe", "expt"])
expt = df[df.fidelity == "expt"].drop_duplicates("composition")
pbe = df[df.fidelity == "pbe"].drop_duplicates("composition")
pool = expt[expt.composition.isin(pbe.composition)].sample(150 if FAST else 1200,
                                                           random_state=1)  # fmt: skip
seed = pool.sample(15, random_state=2)
known = pd.concat([pbe[pbe.composition.isin(pool.composition)], seed], ignore_index=True)
known.attrs["fidelities"] = ["pbe", "expt"]
lab = TableOracle(expt)
inside = pool.value.between(*WINDOW)
print(f"{len(pool)} candidates, {int(inside.sum())} of them in the window "
      f"({inside.mean():.0%}: what random picks find per experiment)")

# %% [markdown]
# ## Create the campaign
# The model is described by an unfitted estimator (its parameters are stored, and it is
# refitted on the observations every `refit_every` new rows, conditioned on them in between).
# For band gaps it is the hurdle (`HurdleRegressor`): about half of all measured gaps are
# exactly 0 (metals), so a gap's predictive is a point mass at 0 with weight P(metal) and a
# positive part; the campaign's table and scores are on the gap's own scale (docs/metals.md).
# The objective `window` scores each candidate by the probability that its measured gap lies
# in the window. It is additive (a row's score does not change with the others in the
# batch), so the batch of 5 is the 5 best rows.

# %%
workdir = Path(tempfile.mkdtemp())
store = workdir / "pv_gaps.db"
gp = {"max_iter": 15 if FAST else 50}
model = HurdleRegressor(regressor_options=gp, progress=False,
                        classifier_options={"num_inducing": 100} if FAST else None,
                        latent=not FAST)  # fast mode: a small classifier without the PBE input
camp = Campaign(model, pool.formula.tolist(), target="expt", costs={"expt": 1.0},
                objective="window", objective_options={"lo": WINDOW[0], "hi": WINDOW[1]},
                data=known, store=store, refit_every=10, seed=0)  # fmt: skip
batch = camp.suggest(5)
print(batch.to_string(index=False))

# %%
# Where the batch lies: predicted experimental gap against the known PBE gap
fig, ax = camp.plot_suggestions(batch, units="eV", quantity="band gap")
ax.axhspan(*WINDOW, color="gold", alpha=0.2, label=f"window {WINDOW[0]}-{WINDOW[1]} eV")
ax.legend(fontsize="small")

# %% [markdown]
# ## Record results, close, reopen
# `observe` takes a frame of `formula, fidelity, value`; a bad row (unknown fidelity, a value
# that is not a number) raises an error that names it, and nothing is recorded.

# %%
camp.observe(lab(batch[["formula", "fidelity"]]))
camp.close()

camp = Campaign.open(store)  # e.g. the next morning, or after a crash
print(camp)
print(camp.status())

# %% [markdown]
# ## Let it run against the simulated lab
# Stopping conditions compose with `&` and `|`: here, 40 experiments or 8 hits, whichever
# comes first. Pending suggestions are answered first, so a run resumes where it stopped.

# %%
n_total = 20 if FAST else 40
camp.run(lab, stop=Experiments(n_total) | HitsFound(8, *WINDOW), q=5)
h = camp.history()
print(h.tail().to_string(index=False))

# %%
# Progress against random picks from the same pool
rng = np.random.default_rng(0)
rest = pool[~pool.composition.isin(seed.composition)]
picks = rest.iloc[rng.permutation(len(rest))[: int(h.experiments.iloc[-1])]]
random_run = pd.DataFrame({"experiments": np.arange(1, len(picks) + 1),
                           "hits": np.cumsum(picks.value.between(*WINDOW).to_numpy())})
fig2, ax2 = camp.plot_progress(metric="hits", baselines={"random picks": random_run},
                               units="eV", quantity="band gap")
print(f"hits: campaign {int(h.hits.iloc[-1])}, random {int(random_run.hits.iloc[-1])} "
      f"after {int(h.experiments.iloc[-1])} experiments")

# %% [markdown]
# ## Cost-aware: computations and experiments together
# With several acquirable fidelities, information objectives (`learn`, `kg`, `mes`) score
# every (composition, fidelity) row per unit cost, so a cheap computation competes with an
# expensive experiment. Here PBE calculations for half the pool are not done yet and cost
# 1; an experiment costs 50. `mes` (max-value entropy search) looks for the largest gap. It
# needs a Gaussian model (the hurdle is refused for `kg`, `mes` and `logei`), so this part uses
# the Gaussian difference model, `MultiFidelityRegressor("ar1")`.

# %%
half = pool.sample(frac=0.5, random_state=3)
known2 = pd.concat([pbe[pbe.composition.isin(half.composition)], seed], ignore_index=True)
known2.attrs["fidelities"] = ["pbe", "expt"]
gauss = MultiFidelityRegressor("ar1", max_iter=15 if FAST else 50, progress=False)
camp2 = Campaign(gauss, pool.formula.tolist(), target="expt", costs={"pbe": 1.0, "expt": 50.0},
                 objective="mes", data=known2, store=workdir / "mixed.db")  # fmt: skip
mixed = camp2.suggest(6)
print(mixed[["rank", "formula", "fidelity", "score", "mean", "std", "cost"]])
camp2.close()
camp.close()

# %% [markdown]
# ## The same from the command line
# ```
# mfgp campaign init run.db --pool pool.csv --data known.csv --cost expt=1 \
#     --objective window --objective-options '{"lo": 1.1, "hi": 1.7}'
# mfgp campaign suggest run.db -q 5 --output batch.csv
# mfgp campaign observe run.db --results measured.csv
# mfgp campaign status run.db
# ```

# %%
# Outside Jupyter the figures are saved as PNG files; in a notebook they are shown above
saved = save_figures("02_campaign")
