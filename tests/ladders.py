"""Small band-gap ladders for the facade tests, cut from the shipped data."""

import pandas as pd

from mfgp.datasets import load_bandgap_ladder


def small_ladder(n_expt: int, n_extra: int = 0, seed: int = 0, also=()) -> pd.DataFrame:
    """``n_expt`` nonzero experimental gaps with their PBE rows, ``n_extra`` other PBE rows, and
    the PBE rows of the compositions in ``also``."""
    df = load_bandgap_ladder(["pbe", "expt"])
    pbe_rows = df[df.fidelity == "pbe"]
    expt = df[(df.fidelity == "expt") & (df.value > 0)].sample(n_expt, random_state=seed)
    parts = [pbe_rows[pbe_rows.composition.isin(expt.composition)]]
    if n_extra:
        parts.append(pbe_rows[~pbe_rows.composition.isin(expt.composition)]
                     .sample(n_extra, random_state=seed))  # fmt: skip
    if also:
        parts.append(pbe_rows[pbe_rows.composition.isin(list(also))])
    parts.append(expt)
    return pd.concat(parts, ignore_index=True).drop_duplicates()
