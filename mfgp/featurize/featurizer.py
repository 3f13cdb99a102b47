"""Vectorised composition featurizers over matminer's own elemental tables.

matminer computes Magpie-style features one composition at a time in Python (about 33 s for
5,000 formulas on a 2-core machine). The statistics are weighted reductions over the elements of
each composition, so here they are computed for all compositions at once with NumPy on a padded
``n x max_elements`` layout, from the very tables matminer ships (``MagpieData``). The results
agree with matminer to 1e-8 (``tests/featurize/test_featurizer.py``) at about 30x the speed
(``benchmarks/results/bench_featurize.md``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mfgp.exceptions import InputDataError
from mfgp.featurize.cache import FeatureCache
from mfgp.featurize.composition import ParsedFormula, ParseResult, memoising, parse_formulas

__all__ = ["CompositionFeaturizer", "FeaturizeResult", "PRESETS", "MAGPIE_PROPERTIES"]

MAGPIE_PROPERTIES: tuple[str, ...] = (
    "Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
    "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence",
    "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa",
    "GSbandgap", "GSmagmom", "SpaceGroupNumber",
)  # fmt: skip
MAGPIE_STATS: tuple[str, ...] = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
STOICHIOMETRY_P: tuple[int, ...] = (0, 2, 3, 5, 7, 10)
ORBITALS: tuple[str, ...] = ("s", "p", "d", "f")
N_ELEMENTS = 118

#: preset name -> (blocks, version). Bump the version when a preset's numbers change:
#: it is part of every cache key. Version 2: elements in order of atomic number and row sums
#: left to right (the same bits however a formula is spelled or batched; last-bit changes).
PRESETS: dict[str, tuple[tuple[str, ...], int]] = {
    "magpie": (("element_property",), 2),
    "extended": (("element_property", "stoichiometry", "valence_orbital", "element_fraction"), 2),
}

_WARD_2016 = (
    "@article{ward_agrawal_choudary_wolverton_2016, title={A general-purpose machine learning "
    "framework for predicting properties of inorganic materials}, volume={2}, "
    "DOI={10.1038/npjcompumats.2017.28}, number={1}, journal={npj Computational Materials}, "
    "author={Ward, Logan and Agrawal, Ankit and Choudhary, Alok and Wolverton, Christopher}, "
    "year={2016}}"
)
_MATMINER_2018 = (
    "@article{ward_matminer_2018, title={Matminer: An open source toolkit for materials data "
    "mining}, volume={152}, DOI={10.1016/j.commatsci.2018.05.018}, journal={Computational "
    "Materials Science}, author={Ward, Logan and others}, year={2018}, pages={60--69}}"
)


@lru_cache(maxsize=4)
def _element_table(impute_nan: bool) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Symbols for Z = 1..118 and matminer's Magpie property columns (length 118 each)."""
    from matminer.utils.data import MagpieData  # heavy import: only when first featurizing
    from pymatgen.core import Element

    data = MagpieData(impute_nan=impute_nan)
    symbols = tuple(Element.from_Z(z).symbol for z in range(1, N_ELEMENTS + 1))
    needed = set(MAGPIE_PROPERTIES) | {f"N{o}Valence" for o in ORBITALS} | {"NValence"}
    columns = {
        prop: np.array(
            [float(data.all_elemental_props[prop].get(s, np.nan)) for s in symbols],
            dtype=np.float64,
        )
        for prop in sorted(needed)
    }
    return symbols, columns


@dataclass
class FeaturizeResult:
    """Features with a per-row failure report.

    Attributes:
        X: ``n x d`` float64 features; rows that failed are NaN.
        valid: ``n`` boolean mask of the rows that were featurized.
        errors: row index -> reason for each failed row.
        labels: the ``d`` feature names.
    """

    X: np.ndarray
    valid: np.ndarray
    errors: dict[int, str]
    labels: list[str]

    def raise_first(self, labels: Sequence[object] | None = None) -> None:
        """Raise the error of the first failed row, if any, naming it by ``labels``."""
        ParseResult([None] * len(self.valid), self.errors).raise_first(labels)

    def to_frame(self, index: Sequence | None = None) -> pd.DataFrame:
        """The features as a DataFrame with the feature labels as columns."""
        return pd.DataFrame(self.X, columns=self.labels, index=index)


def _padded(parsed: Sequence[ParsedFormula], z_of: dict[str, int]) -> tuple[np.ndarray, ...]:
    """Element indices, amounts and mask, ``n x m`` with m the largest element count.

    Each row's elements are in order of atomic number, whatever order the formula wrote them
    in, and padded with zeros at the end: with :func:`_rowsum`, a composition's features are
    then the same bits however it is spelled and whatever else is in the batch (the
    composition key of :mod:`mfgp.kernels.effect` hashes those bits).
    """
    m = max(len(p.amounts) for p in parsed)
    n = len(parsed)
    idx = np.zeros((n, m), dtype=np.int64)
    amt = np.zeros((n, m), dtype=np.float64)
    for i, p in enumerate(parsed):
        for j, (sym, a) in enumerate(sorted(p.amounts, key=lambda item: z_of[item[0]])):
            idx[i, j] = z_of[sym]
            amt[i, j] = a
    return idx, amt, amt > 0


def _rowsum(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Row sums added left to right: trailing zeros (the padding) leave every bit unchanged.

    NumPy's ``sum`` adds 8 or more terms pairwise, so a row's sum would depend on how wide the
    batch's padding is.
    """
    acc = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        acc = acc + x[:, j]
    return acc[:, None] if keepdims else acc


def _element_property_block(
    idx: np.ndarray, amt: np.ndarray, mask: np.ndarray, columns: dict[str, np.ndarray]
) -> np.ndarray:
    """Magpie statistics, ordered property-major as matminer's ``ElementProperty``."""
    n = idx.shape[0]
    total = _rowsum(amt, keepdims=True)
    w = amt / total
    is_mode = mask & np.isclose(amt, amt.max(1, keepdims=True))  # matminer: isclose to max weight
    out = np.empty((n, len(MAGPIE_PROPERTIES) * len(MAGPIE_STATS)), dtype=np.float64)
    for k, prop in enumerate(MAGPIE_PROPERTIES):
        vals = columns[prop][idx]  # n x m
        present = np.where(mask, vals, 0.0)
        vmin = np.where(mask, vals, np.inf).min(1)
        vmax = np.where(mask, vals, -np.inf).max(1)
        mean = _rowsum(w * present)
        avg_dev = _rowsum(w * np.abs(present - mean[:, None]))
        mode = np.where(is_mode, vals, np.inf).min(1)
        # a NaN element value makes every statistic NaN, as in matminer
        has_nan = np.isnan(np.where(mask, vals, 0.0)).any(1)
        block = np.stack([vmin, vmax, vmax - vmin, mean, avg_dev, mode], axis=1)
        block[has_nan] = np.nan
        out[:, k * len(MAGPIE_STATS) : (k + 1) * len(MAGPIE_STATS)] = block
    return out


def _stoichiometry_block(amt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    frac = amt / _rowsum(amt, keepdims=True)
    cols = []
    for p in STOICHIOMETRY_P:
        if p == 0:
            cols.append(mask.sum(1).astype(np.float64))
        else:
            cols.append(_rowsum(frac**p) ** (1.0 / p))
    return np.stack(cols, axis=1)


def _valence_block(idx: np.ndarray, amt: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    w = amt / _rowsum(amt, keepdims=True)
    avg = np.stack([_rowsum(w * columns[f"N{o}Valence"][idx]) for o in ORBITALS], axis=1)
    total = _rowsum(w * columns["NValence"][idx], keepdims=True)
    return np.concatenate([avg, avg / total], axis=1)


def _fraction_block(idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
    n = idx.shape[0]
    out = np.zeros((n, N_ELEMENTS), dtype=np.float64)
    w = amt / _rowsum(amt, keepdims=True)
    np.add.at(out, (np.repeat(np.arange(n), idx.shape[1]), idx.ravel()), w.ravel())
    return out


class CompositionFeaturizer:
    """Composition features with named presets, in the scikit-learn transformer style.

    Presets:
        ``"magpie"``: matminer's ``ElementProperty.from_preset("magpie")`` (132 features: six
        stoichiometry-weighted statistics of 22 elemental properties).
        ``"extended"``: magpie + ``Stoichiometry`` p-norms (6) + ``ValenceOrbital`` (8) +
        ``ElementFraction`` (118): 264 features.

    Args:
        preset: a name from :data:`PRESETS`.
        impute_nan: replace missing elemental data by the mean over elements, as matminer's
            ``impute_nan=True`` (its default). With ``False``, compositions with an element that
            lacks a property get NaN for that property's statistics, as in matminer.
        cache: ``True`` for an in-memory cache, a directory path to also keep features on disk,
            a :class:`FeatureCache` to share one, or ``False`` for none.

    Example:
        >>> fz = CompositionFeaturizer("magpie")
        >>> fz.transform(["NaCl", "Fe2O3"]).shape
        (2, 132)
    """

    def __init__(
        self,
        preset: str = "magpie",
        impute_nan: bool = True,
        cache: bool | str | os.PathLike | FeatureCache = True,
    ) -> None:
        self.preset = preset
        self.impute_nan = impute_nan
        self.cache = cache

    # -- scikit-learn contract -------------------------------------------------------------
    def fit(self, X: object = None, y: object = None) -> CompositionFeaturizer:
        """No-op (the featurizer has no fitted state); returns ``self``."""
        self._blocks()
        return self

    def transform(self, formulas: Sequence[object]) -> np.ndarray:
        """Features of each formula, ``n x d`` float64.

        Raises:
            InvalidFormulaError: naming the first row that cannot be parsed; use
                :meth:`featurize` to get a mask of failed rows instead.
        """
        res = self.featurize(formulas)
        res.raise_first()
        return res.X

    def fit_transform(self, formulas: Sequence[object], y: object = None) -> np.ndarray:
        """Same as :meth:`transform`."""
        return self.transform(formulas)

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Constructor arguments (scikit-learn contract)."""
        return {"preset": self.preset, "impute_nan": self.impute_nan, "cache": self.cache}

    # -- matminer contract -----------------------------------------------------------------
    def feature_labels(self) -> list[str]:
        """Feature names, identical to matminer's labels for the same featurizers."""
        labels: list[str] = []
        for block in self._blocks():
            if block == "element_property":
                labels += [f"MagpieData {s} {p}" for p in MAGPIE_PROPERTIES for s in MAGPIE_STATS]
            elif block == "stoichiometry":
                labels += [f"{p}-norm" for p in STOICHIOMETRY_P]
            elif block == "valence_orbital":
                labels += [f"{k} {o} valence electrons" for k in ("avg", "frac") for o in ORBITALS]
            elif block == "element_fraction":
                labels += list(_element_table(self.impute_nan)[0])
        return labels

    def citations(self) -> list[str]:
        """BibTeX entries to cite when publishing results made with these features."""
        return [_WARD_2016, _MATMINER_2018]

    @property
    def version(self) -> str:
        """Preset name and version: the cache key prefix."""
        blocks, version = PRESETS[self.preset]
        return f"{self.preset}-v{version}-impute{int(self.impute_nan)}"

    # -- work ------------------------------------------------------------------------------
    def featurize(self, formulas: Sequence[object]) -> FeaturizeResult:
        """Features and a per-row failure report; failed rows are NaN and listed in ``errors``."""
        formulas = list(formulas)
        labels = self.feature_labels()
        d = len(labels)
        X = np.full((len(formulas), d), np.nan, dtype=np.float64)
        valid = np.zeros(len(formulas), dtype=bool)
        cache = self._cache()
        keys = [f.strip() if isinstance(f, str) else None for f in formulas]
        todo: list[int] = []
        for i, key in enumerate(keys):
            row = cache.get(self.version, key) if (cache is not None and key is not None) else None
            if row is not None:
                X[i] = row
                valid[i] = True
            else:
                todo.append(i)
        errors: dict[int, str] = {}
        if todo:
            res = parse_formulas([formulas[i] for i in todo])
            for j, reason in res.errors.items():
                errors[todo[j]] = reason
            ok = [(i, p) for i, p in zip(todo, res.parsed) if p is not None]
            if ok:
                rows = np.array([i for i, _ in ok])
                X[rows] = self._compute([p for _, p in ok])
                # impute_nan=False: an element without a tabulated property gives NaN features;
                # such a row is a failed row, not a valid one that breaks a model later
                missing = np.isnan(X[rows]).any(1)
                for i in rows[missing]:
                    cols = [labels[j] for j in np.flatnonzero(np.isnan(X[i]))]
                    errors[int(i)] = (
                        f"formula {formulas[i]!r} has no tabulated value for "
                        f"{len(cols)} feature(s) ({', '.join(cols[:3])}"
                        f"{', ...' if len(cols) > 3 else ''}): an element lacks Magpie data; "
                        "featurize with impute_nan=True or drop the row"
                    )
                rows = rows[~missing]
                valid[rows] = True
                if cache is not None and len(rows) and memoising():
                    cache.put(self.version, [keys[i] for i in rows], X[rows])
        return FeaturizeResult(X, valid, errors, labels)

    def featurize_dataframe(
        self, df: pd.DataFrame, col_id: str = "formula", errors: str = "raise"
    ) -> pd.DataFrame:
        """Append feature columns to ``df`` (matminer's method of the same name).

        Args:
            df: a frame with a formula column.
            col_id: the formula column.
            errors: ``"raise"`` on the first bad row, or ``"mask"`` to keep NaN rows and add a
                boolean ``featurized`` column and an ``error`` column.
        """
        if col_id not in df.columns:
            raise InputDataError(f"column {col_id!r} not in the frame; columns: {list(df.columns)}")
        res = self.featurize(df[col_id].tolist())
        if errors == "raise":
            res.raise_first(list(df.index))
        out = pd.concat([df, res.to_frame(index=df.index)], axis=1)
        if errors == "mask":
            out["featurized"] = res.valid
            out["error"] = [res.errors.get(i, "") for i in range(len(df))]
        return out

    def _blocks(self) -> tuple[str, ...]:
        if self.preset not in PRESETS:
            raise InputDataError(
                f"unknown featurizer preset {self.preset!r}; choose one of {sorted(PRESETS)}"
            )
        return PRESETS[self.preset][0]

    def _cache(self) -> FeatureCache | None:
        if self.cache is False or self.cache is None:
            return None
        if not hasattr(self, "_cache_obj"):
            if isinstance(self.cache, FeatureCache):
                self._cache_obj = self.cache
            elif self.cache is True:
                self._cache_obj = FeatureCache()
            else:
                self._cache_obj = FeatureCache(directory=self.cache)
        return self._cache_obj

    def _compute(self, parsed: Sequence[ParsedFormula], chunk: int = 16384) -> np.ndarray:
        symbols, columns = _element_table(self.impute_nan)
        z_of = {s: i for i, s in enumerate(symbols)}
        parts = []
        for start in range(0, len(parsed), chunk):
            idx, amt, mask = _padded(parsed[start : start + chunk], z_of)
            blocks = []
            for block in self._blocks():
                if block == "element_property":
                    blocks.append(_element_property_block(idx, amt, mask, columns))
                elif block == "stoichiometry":
                    blocks.append(_stoichiometry_block(amt, mask))
                elif block == "valence_orbital":
                    blocks.append(_valence_block(idx, amt, columns))
                elif block == "element_fraction":
                    blocks.append(_fraction_block(idx, amt))
            parts.append(np.concatenate(blocks, axis=1))
        return np.concatenate(parts, axis=0)
