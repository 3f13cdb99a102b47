"""P(metal) by interpolated moments against every quadrature node, on the ready-made gap model.

The hurdle's classifier takes the PBE gap as an input; at a composition without a PBE value
``P(metal)`` integrates the classifier over the gap's predictive with 64 equal-probability
nodes. :class:`~mfgp.models.LatentInputClassifier` interpolates the classifier's latent moments
in ``z`` from 16 (then 32) Chebyshev points per composition and keeps the interpolation where
its estimated error is at most 1e-4 (``docs/metals.md``). This script measures, on candidate
compositions that the shipped data do not hold (charge-balanced binaries and ternaries of 24
common elements, a seeded sample), the share of rows that keep 16 points, the largest and the
99th-percentile change of ``P(metal)`` against evaluating every node, and the time of both
paths, side by side in one run (``SPREAD``: the gap's predictive spread is also widened by
these factors, a stress test of the interpolation).

Writes results/diag_classifier_quadrature.{json,md}. Run: ``python diag_classifier_quadrature.py``
(``N=2000``, ``SPREAD=1,3``; a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from _common import write_results

N = int(os.environ.get("N", 2000))
SPREAD = [float(s) for s in os.environ.get("SPREAD", "1,3").split(",")]
ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Zn", "Cd", "Ga", "In", "Al", "Ti", "Cu",
            "O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P"]  # fmt: skip


def candidates() -> list[str]:
    import mfgp
    from mfgp.datasets import load_bandgap_ladder

    known = load_bandgap_ladder(["pbe", "expt"]).formula
    pool = mfgp.enumerate_compositions(ELEMENTS, n_elements=(2, 3), max_atoms_per_formula=12,
                                       charge_balanced=True, exclude=known)  # fmt: skip
    every = [f for chunk in pool for f in chunk]
    pick = np.random.default_rng(0).choice(len(every), min(N, len(every)), replace=False)
    return [every[i] for i in sorted(pick)]


def main() -> None:
    import mfgp
    from mfgp.models.classifier import LatentInputClassifier

    model = mfgp.pretrained("expt_gap")
    formulas = candidates()
    seen = {}
    original = LatentInputClassifier.quadrature

    def spy(self, Z, mean, std, batch_size=4096):  # the classifier's inputs of the candidates
        seen.update(head=self, Z=Z, mean=mean, std=std)
        return original(self, Z, mean, std, batch_size)

    LatentInputClassifier.quadrature = spy
    try:
        model.classifier_._p_metal(formulas)
    finally:
        LatentInputClassifier.quadrature = original
    head, Z, mean, std = seen["head"], seen["Z"], seen["mean"], seen["std"]
    records = []
    for spread in SPREAD:
        s = std * spread
        points = head.interpolation
        head.interpolation = None
        t0 = time.perf_counter()
        every = head.quadrature(Z, mean, s)
        t_every = time.perf_counter() - t0
        head.interpolation = points
        t0 = time.perf_counter()
        fast = head.quadrature(Z, mean, s)
        t_fast = time.perf_counter() - t0
        _, kept16 = head._interpolated(Z, mean, s, head._nodes(mean), points, 4096)
        err = (fast - every).abs().numpy()
        records.append({
            "spread": spread, "rows": len(formulas), "rows_without_pbe": int((s > 0).sum()),
            "latent_std_median": float(s[s > 0].median()), "points": points,
            "tolerance": head.tolerance, "kept_16": float(kept16.double().mean()),
            "max_abs_change": float(err.max()), "q99_abs_change": float(np.quantile(err, 0.99)),
            "seconds_every_node": round(t_every, 2), "seconds_interpolated": round(t_fast, 2),
            "speedup": round(t_every / t_fast, 2), "threads": torch.get_num_threads()})  # fmt: skip
        print(records[-1], flush=True)
    write_results("diag_classifier_quadrature", records)


if __name__ == "__main__":
    main()
