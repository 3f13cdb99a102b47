"""Featurization speed: mfgp's vectorised featurizer vs matminer, side by side in one run.

Run: make bench-featurize. Writes results/bench_featurize.{json,md}.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np

from _common import write_results
from mfgp.datasets import load_raw
from mfgp.featurize import CompositionFeaturizer
from mfgp.featurize.composition import _parse_cached


def matminer_seconds(formulas: list[str]) -> float:
    from matminer.featurizers.composition import ElementProperty
    from pymatgen.core import Composition

    ep = ElementProperty.from_preset("magpie")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in formulas:
            ep.featurize(Composition(f))
    return time.perf_counter() - t0


def main() -> None:
    pool = list(load_raw("mp2018_pbe_gaps.csv.gz")["formula"].unique())
    sample = list(np.random.default_rng(0).choice(pool, 1000, replace=False))
    records = []
    repeats = 3
    for preset in ("magpie", "extended"):
        cold, warm = [], []
        for _ in range(repeats):
            _parse_cached.cache_clear()  # cold: pymatgen parses every formula again
            t0 = time.perf_counter()
            CompositionFeaturizer(preset, cache=False).transform(pool)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            CompositionFeaturizer(preset, cache=False).transform(pool)  # parses cached
            warm.append(time.perf_counter() - t0)
        records.append(
            {
                "task": f"{preset}, {len(pool)} MP formulas, cold",
                "seconds": statistics.median(cold),
                "n": len(pool),
            }
        )
        records.append(
            {
                "task": f"{preset}, {len(pool)} MP formulas, parse cached",
                "seconds": statistics.median(warm),
                "n": len(pool),
            }
        )
    # side by side on the same 1,000 formulas
    mm = statistics.median(matminer_seconds(sample) for _ in range(repeats))
    ours = []
    for _ in range(repeats):
        _parse_cached.cache_clear()
        t0 = time.perf_counter()
        CompositionFeaturizer("magpie", cache=False).transform(sample)
        ours.append(time.perf_counter() - t0)
    records.append(
        {"task": "matminer ElementProperty magpie, 1000 formulas", "seconds": mm, "n": 1000}
    )
    records.append(
        {
            "task": "mfgp magpie, same 1000 formulas, cold",
            "seconds": statistics.median(ours),
            "n": 1000,
        }
    )
    records.append(
        {
            "task": "speed-up vs matminer (ratio of medians)",
            "seconds": mm / statistics.median(ours),
            "n": 1000,
        }
    )
    path = write_results("bench_featurize", records, ["task", "seconds", "n"])
    for r in records:
        print(f"{r['task']:<55} {r['seconds']:8.3f}")
    print("wrote", path)


if __name__ == "__main__":
    main()
