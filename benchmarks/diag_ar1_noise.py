"""The experimental noise the default AR1 learns on band gaps, with and without the zeros.

The campaign notes suspected that the AR1's experimental noise "collapses" on gaps with exact
zeros (metals), so that it interpolates outliers. This measures it: the default
``MultiFidelityRegressor("ar1")`` on every PBE row (capped at 1,000 as in the campaigns) and 400
experimental gaps (seeds 0-2), once with the metals and once without, reporting each level's
noise as a standard deviation in eV (the fitted variance times the outcome scale squared).
``cd benchmarks && ../.venv/bin/python diag_ar1_noise.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import write_results
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor


def main() -> None:
    df = load_bandgap_ladder(["pbe", "expt"])
    pbe = df[df.fidelity == "pbe"]
    records = []
    for seed in range(3):
        expt = df[df.fidelity == "expt"].sample(400, random_state=seed)
        for subset, rows in (("with zeros", expt), ("nonzero only", expt[expt.value > 0])):
            reg = MultiFidelityRegressor("ar1", progress=False, max_rows_per_fidelity=1000,
                                         seed=seed).fit(pd.concat([pbe, rows]))  # fmt: skip
            gp = getattr(reg.model_, "model", reg.model_)  # inside the feature map
            noise = gp.likelihood.noise.detach().reshape(-1).numpy()
            scale = float(gp.outcome_transform.stdvs.reshape(-1)[0])
            for level, var in zip(("pbe", "expt"), noise):
                records.append({"seed": seed, "subset": subset, "level": level,
                                "n_expt": len(rows), "noise_standardised": float(var),
                                "noise_sd_eV": float(np.sqrt(var) * scale)})  # fmt: skip
            print(records[-2:], flush=True)
    df = pd.DataFrame(records)
    table = (df.groupby(["subset", "level"])[["noise_standardised", "noise_sd_eV"]].median()
             .round(4).reset_index())  # fmt: skip
    write_results("diag_ar1_noise", records, table=table)


if __name__ == "__main__":
    main()
