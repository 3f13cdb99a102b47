"""How noisy the experimental labels are: the disagreement of repeated measurements.

Kim et al. 2017 lists some compounds more than once (different experiments). The pooled
within-compound standard deviation of those repeats estimates the measurement noise, and
``sd * sqrt(2 / pi)`` is the MAE that even the true value would score against one measurement:
a floor under any model's MAE on these labels. Matbench ``expt_gap`` has no repeated
compositions, so no floor can be read from it. ``cd benchmarks && ../.venv/bin/python
diag_label_noise.py``.
"""

from __future__ import annotations

import numpy as np

from _common import write_results
from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy


def repeats(values) -> dict:
    groups = values.groupby("composition")["value"]
    size = groups.size()
    rep = size[size > 1]
    if rep.empty:
        return {"compositions": int(size.size), "repeated": 0}
    var = groups.var(ddof=1)[rep.index]
    pooled = float(np.sqrt((var * (rep - 1)).sum() / (rep - 1).sum()))
    return {"compositions": int(size.size), "repeated": int(rep.size),
            "rows_in_repeats": int(rep.sum()), "pooled_sd": pooled,
            "mae_floor": pooled * float(np.sqrt(2 / np.pi))}  # fmt: skip


def main() -> None:
    form = load_formation_enthalpy(["expt"])
    gaps = load_bandgap_ladder(["expt"])
    records = [{"labels": "Kim 2017 formation enthalpies (eV/atom)", **repeats(form)},
               {"labels": "Matbench expt_gap band gaps (eV)", **repeats(gaps)}]  # fmt: skip
    for r in records:
        print(r)
    write_results("diag_label_noise", records)


if __name__ == "__main__":
    main()
