"""A feature cache keyed by (featurizer version, formula), in memory and optionally on disk."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mfgp._io import atomic_write
from mfgp.exceptions import InputDataError

__all__ = ["FeatureCache"]


class FeatureCache:
    """Feature rows keyed by featurizer version and formula string.

    On disk each version is one ``<version>.npz`` file (formulas and a float64 matrix), rewritten
    atomically on each :meth:`put` so that an interrupted run never corrupts it.

    Args:
        directory: where to keep the ``.npz`` files; ``None`` keeps the cache in memory only.
        max_rows: the most rows kept per featurizer version; beyond it the oldest are dropped
            (first in, first out), so screening millions of formulas holds bounded memory.

    Example:
        >>> cache = FeatureCache()
        >>> cache.put("magpie-v1", ["NaCl"], np.ones((1, 3)))
        >>> cache.get("magpie-v1", "NaCl")
        array([1., 1., 1.])
    """

    def __init__(self, directory: str | os.PathLike | None = None,
                 max_rows: int = 200_000) -> None:  # fmt: skip
        if max_rows < 1:
            raise InputDataError(f"max_rows must be >= 1; got {max_rows}")
        self.directory = Path(directory) if directory is not None else None
        self.max_rows = int(max_rows)
        self._rows: dict[str, dict[str, np.ndarray]] = {}

    def _table(self, version: str) -> dict[str, np.ndarray]:
        if version not in self._rows:
            table: dict[str, np.ndarray] = {}
            path = self._path(version)
            if path is not None and path.exists():
                with np.load(path, allow_pickle=False) as data:
                    for key, row in zip(data["formulas"].tolist(), data["X"]):
                        table[key] = row
            self._rows[version] = table
        return self._rows[version]

    def _path(self, version: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{version}.npz"

    def get(self, version: str, formula: str) -> np.ndarray | None:
        """The cached row, or ``None``."""
        return self._table(version).get(formula)

    def put(self, version: str, formulas: Sequence[str], X: np.ndarray) -> None:
        """Store rows (and rewrite the version's file when the cache has a directory)."""
        table = self._table(version)
        for key, row in zip(formulas, np.asarray(X, dtype=np.float64)):
            table.pop(key, None)  # a re-put row counts as new
            table[key] = row.copy()
        excess = len(table) - getattr(self, "max_rows", 200_000)  # older pickles lack it
        if excess > 0:
            for key in list(itertools.islice(table, excess)):
                del table[key]
        path = self._path(version)
        if path is not None and table:
            keys = list(table)
            with atomic_write(path, "wb") as fh:
                np.savez(
                    fh, formulas=np.array(keys, dtype=str), X=np.stack([table[k] for k in keys])
                )

    def __getstate__(self) -> dict:
        # a pickled cache carries its settings, not its rows (they are recomputed on demand;
        # a fitted estimator's pickle would otherwise hold every training formula's features
        # twice, once here and once in its dataset)
        return {"directory": self.directory, "max_rows": self.max_rows, "_rows": {}}

    def __len__(self) -> int:
        return sum(len(t) for t in self._rows.values())

    def clear(self) -> None:
        """Forget the in-memory rows (files on disk stay)."""
        self._rows.clear()
