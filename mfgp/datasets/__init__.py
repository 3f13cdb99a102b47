"""Real materials data shipped with mfgp, loaded offline in one long format.

Every loader returns a :class:`pandas.DataFrame` with one row per observation and the columns

========================  ====================================================================
``formula``               the formula as the source wrote it
``composition``           pymatgen's reduced formula: the key for every join (``"Fe2O3"``)
``fidelity``              the fidelity (or property) name, e.g. ``"pbe"``, ``"expt"``
``value``                 the observed value (float64)
``source``                short name of the source file
``material_id``           Materials Project id where the source has one, else ``""``
========================  ====================================================================

plus loader-specific columns documented on each loader. Sources, licences and how each table was
derived are in ``mfgp/datasets/_data/ATTRIBUTION.md`` (:func:`attribution`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from mfgp.exceptions import InputDataError, UnknownFidelityError
from mfgp.featurize.composition import parse_formulas

__all__ = [
    "BANDGAP_FIDELITIES",
    "FORMATION_FIDELITIES",
    "attribution",
    "load_bandgap_ladder",
    "load_expt_is_metal",
    "load_formation_enthalpy",
    "load_metallicity",
    "load_steels_yield",
    "load_raw",
]

#: Band-gap fidelities, ordered from the cheapest / least accurate to the target (experiment).
BANDGAP_FIDELITIES: tuple[str, ...] = ("pbe", "scan", "gllb-sc", "hse", "expt")
#: Formation-enthalpy fidelities, low to high. ``"mp_e_form"`` is the large Matbench DFT pool.
FORMATION_FIDELITIES: tuple[str, ...] = ("mp_e_form", "oqmd", "mp", "expt")

COLUMNS = ["formula", "composition", "fidelity", "value", "source", "material_id"]


def _path(name: str):
    return resources.files("mfgp.datasets").joinpath("_data", name)


def attribution() -> str:
    """The sources, licences and derivation notes of the shipped data."""
    return _path("ATTRIBUTION.md").read_text(encoding="utf-8")


@cache
def _read(name: str) -> pd.DataFrame:
    with _path(name).open("rb") as fh:
        # keep_default_na=False: 'NaN' (sodium nitride) and 'NA' are formulas, not missing values
        return pd.read_csv(
            fh,
            compression="gzip" if name.endswith(".gz") else None,
            keep_default_na=False,
            na_values={"target": [""], "band_gap": [""], "e_above_hull": [""]},
        )


def load_raw(name: str) -> pd.DataFrame:
    """A shipped file as it is (a copy), e.g. ``load_raw("matbench_expt_gap.csv")``."""
    return _read(name).copy()


def _with_composition(df: pd.DataFrame, column: str = "formula") -> pd.DataFrame:
    res = parse_formulas(df[column].tolist())
    res.raise_first()  # shipped data parse in full; a failure here is a packaging bug
    out = df.copy()
    out["composition"] = [p.reduced for p in res.parsed]  # type: ignore[union-attr]
    return out


@cache
def _mp2018() -> pd.DataFrame:
    """MP 2018 entries with compositions, sorted so the ground state comes first per composition."""
    mp = _with_composition(_read("mp2018_pbe_gaps.csv.gz"))
    return mp.sort_values(["composition", "e_above_hull", "material_id"], kind="stable")


def _ground_state(df: pd.DataFrame) -> pd.DataFrame:
    """One row per composition: the polymorph with the lowest energy above hull."""
    return df.drop_duplicates("composition", keep="first")


def _long(
    df: pd.DataFrame, fidelity: str, value: str, source: str, extra: Sequence[str] = ()
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "formula": df["formula"].astype(str).to_numpy(),
            "composition": df["composition"].to_numpy(),
            "fidelity": fidelity,
            "value": df[value].astype(np.float64).to_numpy(),
            "source": source,
            "material_id": (
                df["material_id"].astype(str).to_numpy() if "material_id" in df else ""
            ),
        }
    )
    for col in extra:
        out[col] = df[col].to_numpy()
    return out


def _check_fidelities(asked: Sequence[str], known: Sequence[str]) -> list[str]:
    asked = list(asked)
    for name in asked:
        if name not in known:
            raise UnknownFidelityError(
                f"unknown fidelity {name!r}; this data set has {list(known)}"
            )
    return [f for f in known if f in asked]  # always low to high


@cache
def _bandgap_levels() -> dict[str, pd.DataFrame]:
    mp = _mp2018()
    levels: dict[str, pd.DataFrame] = {}
    expt = _with_composition(_read("matbench_expt_gap.csv"))
    levels["expt"] = _long(expt, "expt", "target", "matbench_expt_gap")
    pbe = _ground_state(mp)
    levels["pbe"] = _long(pbe, "pbe", "band_gap", "mp2018", extra=["e_above_hull"])
    chen = _read("chen2021_dft_gaps.csv.gz")
    ids = mp[["material_id", "formula", "composition", "e_above_hull"]]
    for method in ("scan", "gllb-sc", "hse"):
        rows = chen[chen["method"] == method].merge(ids, on="material_id", how="inner")
        rows = rows.sort_values(["composition", "e_above_hull", "material_id"], kind="stable")
        levels[method] = _long(
            _ground_state(rows), method, "band_gap", "chen2021", extra=["e_above_hull"]
        )
    return levels


def _ordered(df: pd.DataFrame, fidelities: Sequence[str]) -> pd.DataFrame:
    """Record the fidelity order, low to high, in ``df.attrs["fidelities"]``.

    :meth:`mfgp.data.MultiFidelityDataset.from_frame` reads it when no ``fidelities=`` is
    given, so the target of a shipped frame is its highest level however the rows are sorted.
    """
    df.attrs["fidelities"] = tuple(fidelities)
    return df


def load_bandgap_ladder(fidelities: Sequence[str] = BANDGAP_FIDELITIES) -> pd.DataFrame:
    """Band gaps at several fidelities, experiment being the target.

    * ``expt``: the 4,604 experimental gaps of Matbench ``expt_gap`` (Zhuo et al. 2018), one row
      per source row (53% are exactly 0: metals).
    * ``pbe``: Materials Project 2018 PBE gaps, one row per composition, the ground-state
      polymorph (lowest ``e_above_hull``).
    * ``scan``, ``gllb-sc``, ``hse``: the DFT gaps of Chen et al. 2021, joined to formulas through
      their Materials Project ids (ids absent from the 2018 snapshot are dropped), one row per
      composition, the polymorph with the lowest MP ``e_above_hull``.

    Args:
        fidelities: which levels to return, any subset of :data:`BANDGAP_FIDELITIES`; the rows come
            ordered low to high fidelity whatever the order given.

    Returns:
        The long format (see module docs) plus ``e_above_hull`` (NaN for experiment), in eV.

    Example:
        >>> df = load_bandgap_ladder(["pbe", "expt"])
        >>> int(df.groupby("fidelity").size()["expt"])
        4604
    """
    chosen = _check_fidelities(fidelities, BANDGAP_FIDELITIES)
    levels = _bandgap_levels()
    out = pd.concat([levels[f] for f in chosen], ignore_index=True)
    if "e_above_hull" not in out:
        out["e_above_hull"] = np.nan
    return _ordered(out, chosen)


def load_formation_enthalpy(
    fidelities: Sequence[str] = ("oqmd", "mp", "expt"),
    *,
    repeats: str = "resolve",
) -> pd.DataFrame:
    """Formation enthalpies (eV/atom): Kim et al. 2017 experiment with its MP and OQMD values.

    * ``expt``, ``mp``, ``oqmd``: the three columns of Kim 2017, one row per composition where
      not missing (1,132 / 632 / 674 compositions). The table lists 89 compounds more than once
      (AlCo as entries 68 and 82, Y5Si3 twice, ...): their experimental values differ (Y5Si3:
      -0.7431 and -0.8333) while the MP and OQMD values repeat. **Rule:** a composition's
      value at a level is the *median* of its repeats (the mean of two), so one compound
      counts once and a frame of this loader raises no
      :class:`~mfgp.exceptions.ConflictingDuplicatesWarning`.
    * ``mp_e_form``: optional large DFT pool (Matbench ``mp_e_form``), polymorphs repeat per
      formula in the source. **Rule:** the *lowest* energy per composition (the ground state,
      as for the band-gap ladder's PBE level and the ``mp_e_form`` source model): 95,118
      compositions. Ask for it explicitly, e.g.
      ``load_formation_enthalpy(["mp_e_form", "mp", "expt"])``.

    Args:
        fidelities: which levels, any subset of :data:`FORMATION_FIDELITIES`, returned low to
            high.
        repeats: ``"resolve"`` (the default): one row per composition and level by the rules
            above; ``"keep"``: every source row (1,196 / 701 / 746 and 132,752 rows).

    Returns:
        The long format (see module docs) plus ``oqmd_id`` where known and ``entry``, the
        (first) row of the Kim 2017 table of the compound (pivot on ``composition``, or on
        ``entry``, to pair the three values of one compound).

    Example:
        >>> df = load_formation_enthalpy()
        >>> bool(df.duplicated(["composition", "fidelity"]).any())
        False
    """
    if repeats not in ("resolve", "keep"):
        raise InputDataError(f"repeats={repeats!r}: choose 'resolve' (one row per composition "
                             "and level) or 'keep' (every source row)")  # fmt: skip
    chosen = _check_fidelities(fidelities, FORMATION_FIDELITIES)
    parts = []
    if any(f in chosen for f in ("oqmd", "mp", "expt")):
        kim = _with_composition(_read("kim2017_formation_enthalpy.csv"))
        kim = kim.rename(columns={"mpid": "material_id"})
        kim["oqmd_id"] = kim["oqmdid"].astype(str)
        kim["entry"] = np.arange(len(kim))
        col = {"expt": "e_form expt", "mp": "e_form mp", "oqmd": "e_form oqmd"}
    for fid in chosen:
        if fid == "mp_e_form":
            pool = _with_composition(_read("matbench_mp_e_form.csv.gz"))
            part = _long(pool, fid, "target", "matbench_mp_e_form")
            if repeats == "resolve":  # the ground state: the lowest energy per composition
                part = part.sort_values(["composition", "value"], kind="stable")
                part = part.drop_duplicates("composition").sort_index()
        else:
            rows = kim[pd.to_numeric(kim[col[fid]], errors="coerce").notna()]
            rows = rows.assign(**{col[fid]: pd.to_numeric(rows[col[fid]])})
            part = _long(rows, fid, col[fid], "kim2017", extra=["oqmd_id", "entry"])
            if repeats == "resolve":  # one compound counts once: the median of its repeats
                first = kim.groupby("composition")["entry"].min()  # same entry at every level
                median = part.groupby("composition")["value"].median()
                part = part.drop_duplicates("composition").copy()
                part["value"] = part["composition"].map(median).to_numpy()
                part["entry"] = part["composition"].map(first).to_numpy()
        parts.append(part)
    return _ordered(pd.concat(parts, ignore_index=True), chosen)


def load_expt_is_metal() -> pd.DataFrame:
    """Experimental metal (1) / non-metal (0) labels, Matbench ``expt_is_metal`` (4,921 rows).

    Returns:
        The long format with fidelity ``"is_metal"`` and ``value`` 0.0 or 1.0.
    """
    df = _with_composition(_read("matbench_expt_is_metal.csv"))
    return _long(df, "is_metal", "target", "matbench_expt_is_metal")


def load_metallicity(tasks: Sequence[str] = ("pbe", "is_metal", "expt")) -> pd.DataFrame:
    """Metal (1) / non-metal (0) labels from several sources, one task each, for classification.

    * any band-gap fidelity (``"pbe"``, ``"hse"``, ..., ``"expt"``): 1 where the gap is exactly
      0 (:func:`load_bandgap_ladder`);
    * ``"is_metal"``: the Matbench ``expt_is_metal`` labels (:func:`load_expt_is_metal`).

    Args:
        tasks: the tasks, in the order given (the last is the target of a classifier).

    Returns:
        The long format with one fidelity per task and ``value`` 0.0 or 1.0.

    Example:
        >>> df = load_metallicity(["pbe", "expt"])
        >>> sorted(df["value"].unique().tolist())
        [0.0, 1.0]
    """
    tasks = list(tasks)
    known = set(BANDGAP_FIDELITIES) | {"is_metal"}
    unknown = [t for t in tasks if t not in known]
    if unknown or not tasks:
        raise UnknownFidelityError(
            f"unknown metallicity task {unknown[0] if unknown else None!r}; choose from "
            f"{sorted(known)}"
        )
    gaps = [t for t in tasks if t != "is_metal"]
    parts = {}
    if gaps:
        ladder = load_bandgap_ladder(gaps)
        for t in gaps:
            part = ladder[ladder["fidelity"] == t]
            parts[t] = part.assign(value=(part["value"] == 0).astype(np.float64))
    if "is_metal" in tasks:
        parts["is_metal"] = load_expt_is_metal()
    return _ordered(pd.concat([parts[t] for t in tasks], ignore_index=True), tasks)


def load_steels_yield() -> pd.DataFrame:
    """Steel yield strengths in MPa (Matbench ``steels``, 312 rows, fractional formulas).

    Returns:
        The long format with fidelity ``"yield_strength"``.
    """
    df = _with_composition(_read("matbench_steels_yield.csv"))
    return _long(df, "yield_strength", "target", "matbench_steels")
