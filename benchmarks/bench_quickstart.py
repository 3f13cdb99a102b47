"""The README quickstart as a new user runs it, measured: which model for band gaps, and why.

Fits, on the shipped PBE + experimental band gaps (49,546 + 4,604 rows), the model the README
recommends for band gaps (``HurdleRegressor``, defaults) and the Gaussian difference model it
recommends for signed properties (``MultiFidelityRegressor("ar1")``, defaults), and predicts
2,000 new compositions: a seeded sample of PBE compositions without an experimental gap (their
PBE rows are known, and are used by both models' predictions). Counted per model: predictions
with a negative mean gap, and with a negative lower bound of the 90% central interval; and the
fit and prediction times.

Writes results/bench_quickstart.{json,md}. Run: ``make bench-quickstart``.
"""

from __future__ import annotations

import time

import numpy as np

from _common import write_results
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor

N_NEW = 2000


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
    write_results("bench_quickstart", records)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
