"""The README quickstart as a new user runs it, measured: which model for band gaps, and why.

Fits, on the shipped PBE + experimental band gaps (49,546 + 4,604 rows), the model the README
recommends for band gaps (``HurdleRegressor``, defaults) and the Gaussian difference model it
recommends for signed properties (``MultiFidelityRegressor("ar1")``, defaults), and predicts
2,000 new compositions: a seeded sample of PBE compositions without an experimental gap (their
PBE rows are known, and are used by both models' predictions). Counted per model: predictions
with a negative mean gap, and with a negative lower bound of the 90% central interval; and the
fit and prediction times.

The ready-made models (``mfgp.pretrained``), as the README's quickstart starts: each in a
fresh Python process (what a new user's first cell pays), timed step by step: ``import mfgp``,
``mfgp.pretrained(name)`` (load, no refit), the first prediction of the README's formulas, and
then the same 2,000 new formulas (band gaps; for the enthalpy model, which has no PBE level,
its card's reference formulas only).

Writes results/bench_quickstart.{json,md}. Run: ``make bench-quickstart``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from _common import write_results
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor

N_NEW = 2000
#: the formulas of the README's first prediction with each ready-made model
README_FORMULAS = {"expt_gap": ["Si", "GaAs", "ZnO", "Cu"],
                   "expt_formation_enthalpy": ["TiAl", "TiNi"]}  # fmt: skip

#: run in a fresh interpreter: argv[1] the model, argv[2] and argv[3] JSON lists of the new
#: formulas and of the README's
_COLD = """
import json, sys, time
t0 = time.perf_counter()
import mfgp
t1 = time.perf_counter()
model = mfgp.pretrained(sys.argv[1])
t2 = time.perf_counter()
model.predict(json.loads(sys.argv[3]))
t3 = time.perf_counter()
new = json.loads(sys.argv[2])
pred = model.predictive(new)
t4 = time.perf_counter()
mean, lower = pred.mean(), pred.interval(0.9)[0]
print(json.dumps({"import_seconds": t1 - t0, "load_seconds": t2 - t1,
                  "first_predict_seconds": t3 - t2, "n_first": len(json.loads(sys.argv[3])),
                  "predict_seconds": t4 - t3, "new_formulas": len(new),
                  "negative_mean": int((mean < 0).sum()),
                  "negative_lower_90": int((lower < 0).sum())}))
"""


def pretrained_record(name: str, new: list[str]) -> dict:
    """A ready-made model timed in a fresh process: import, load, first and bulk predictions."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _COLD, name, json.dumps(new),
                           json.dumps(README_FORMULAS[name])],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "MFGP_QUIET": "1"})  # fmt: skip
    wall = time.perf_counter() - t
    record = {"model": f"pretrained {name}", **json.loads(done.stdout.splitlines()[-1]),
              "process_seconds": wall}  # fmt: skip
    if name != "expt_gap":  # signed values: the negative counts say nothing
        record["negative_mean"] = record["negative_lower_90"] = None
    return record


def main() -> None:
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = set(df.loc[df.fidelity == "expt", "composition"])
    pool = df[(df.fidelity == "pbe") & ~df.composition.isin(expt)]
    new = pool.sample(N_NEW, random_state=0).formula.tolist()
    records = []
    for name, est in (("ar1", MultiFidelityRegressor("ar1", progress=False)),
                      ("hurdle", HurdleRegressor(progress=False))):  # fmt: skip
        t = time.perf_counter()
        est.fit(df, candidates=new)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        if name == "ar1":
            table = est.predict_frame(new)
            mean, lower = table["mean"].to_numpy(), table["lower_90"].to_numpy()
        else:
            pred = est.predictive(new)
            mean, lower = pred.mean(), pred.interval(0.9)[0]
        predict_s = time.perf_counter() - t
        record = {"model": name, "new_formulas": N_NEW,
                  "negative_mean": int((mean < 0).sum()),
                  "negative_lower_90": int((lower < 0).sum()),
                  "fit_seconds": fit_s, "predict_seconds": predict_s}  # fmt: skip
        print(record, flush=True)
        records.append(record)
    from mfgp.pretrained import card

    for name in ("expt_gap", "expt_formation_enthalpy"):
        asked = new if name == "expt_gap" else card(name)["reference"]["formulas"]
        record = pretrained_record(name, asked)
        print(record, flush=True)
        records.append(record)
    write_results("bench_quickstart", records)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
