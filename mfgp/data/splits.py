"""Cross-validation folds over target-fidelity compositions, reusable across models.

A fold holds out the *target-fidelity* observations of a set of compositions. By default the
lower-fidelity observations of those compositions stay in training: computed data exist for the
material one wants to predict, and using them is the point of multi-fidelity learning. Pass
``hold_out_lower=True`` to :meth:`Folds.split` to hide them too (a material never computed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mfgp._io import atomic_write
from mfgp.data.dataset import MultiFidelityDataset
from mfgp.exceptions import InputDataError
from mfgp.featurize.composition import chemical_system

__all__ = ["ELEMENT_FAMILIES", "Folds", "element_family_folds", "kfold", "grouped_kfold"]

#: groups of the periodic table held out whole by :func:`element_family_folds`
ELEMENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "alkali metals": ("Li", "Na", "K", "Rb", "Cs"),
    "alkaline earths": ("Be", "Mg", "Ca", "Sr", "Ba"),
    "3d transition metals": ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"),
    "4d and 5d transition metals": ("Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
                                    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg"),
    "lanthanides and actinides": ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy",
                                  "Ho", "Er", "Tm", "Yb", "Lu", "Ac", "Th", "Pa", "U", "Np",
                                  "Pu"),
    "triels": ("B", "Al", "Ga", "In", "Tl"),
    "tetrels": ("C", "Si", "Ge", "Sn", "Pb"),
    "pnictogens": ("N", "P", "As", "Sb", "Bi"),
    "chalcogens": ("O", "S", "Se", "Te"),
    "halogens": ("F", "Cl", "Br", "I"),
}  # fmt: skip


@dataclass(frozen=True)
class Folds:
    """Held-out compositions per fold.

    Attributes:
        test_compositions: for each fold, the compositions whose target values it holds out.
        kind: ``"random"``, ``"chemsys"`` or ``"family"`` (:func:`element_family_folds`,
            whose folds may share compositions).
        seed: the seed that made them.
    """

    test_compositions: tuple[tuple[str, ...], ...]
    kind: str
    seed: int

    def __len__(self) -> int:
        return len(self.test_compositions)

    def split(
        self, dataset: MultiFidelityDataset, hold_out_lower: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_rows, test_rows)`` row indices of ``dataset`` for each fold.

        Test rows are the target-fidelity rows of the fold's compositions.
        """
        comp = dataset.frame["composition"].to_numpy()
        is_target = dataset.frame["fidelity_index"].to_numpy() == len(dataset.fidelities) - 1
        for held in self.test_compositions:
            in_fold = np.isin(comp, np.array(held, dtype=object))
            test = in_fold & is_target
            train = ~in_fold if hold_out_lower else ~test
            yield np.flatnonzero(train), np.flatnonzero(test)

    def to_json(self, path: str | os.PathLike) -> None:
        """Save the folds (atomically) so that other models and sessions reuse them."""
        with atomic_write(path) as fh:
            json.dump(
                {
                    "kind": self.kind,
                    "seed": self.seed,
                    "folds": [list(f) for f in self.test_compositions],
                },
                fh,
            )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Folds:
        """Load folds saved by :meth:`to_json`."""
        with open(path) as fh:
            data = json.load(fh)
        return cls(tuple(tuple(f) for f in data["folds"]), data["kind"], int(data["seed"]))


def _targets(data: MultiFidelityDataset | Sequence[str]) -> list[str]:
    if isinstance(data, MultiFidelityDataset):
        f = data.frame
        comps = f.loc[f["fidelity_index"] == len(data.fidelities) - 1, "composition"]
        return list(dict.fromkeys(comps))
    return list(dict.fromkeys(data))


def _check(n_items: int, n_splits: int, what: str) -> None:
    if n_splits < 2 or n_splits > n_items:
        raise InputDataError(
            f"n_splits={n_splits} needs 2 <= n_splits <= the number of {what} ({n_items})"
        )


def kfold(data: MultiFidelityDataset | Sequence[str], n_splits: int = 5, seed: int = 0) -> Folds:
    """Seeded K-fold over the target-fidelity compositions.

    Args:
        data: a dataset (its target compositions are split) or a list of compositions.
        n_splits: number of folds.
        seed: the permutation seed.

    Example:
        >>> folds = kfold(["NaCl", "KCl", "LiF", "MgO", "CaO"], n_splits=5)
        >>> sorted(len(f) for f in folds.test_compositions)
        [1, 1, 1, 1, 1]
    """
    comps = sorted(_targets(data))
    _check(len(comps), n_splits, "target compositions")
    order = np.random.default_rng(seed).permutation(len(comps))
    parts = np.array_split(order, n_splits)
    return Folds(tuple(tuple(comps[i] for i in sorted(p)) for p in parts), "random", seed)


def grouped_kfold(
    data: MultiFidelityDataset | Sequence[str], n_splits: int = 5, seed: int = 0
) -> Folds:
    """K-fold in which all compositions of one chemical system share a fold.

    ``Fe2O3`` and ``Fe3O4`` (system ``Fe-O``) are never split between training and test, so the
    score measures extrapolation to unseen chemistries. Groups are shuffled with ``seed`` and
    assigned largest first to the currently smallest fold, which balances fold sizes.
    """
    comps = sorted(_targets(data))
    systems = chemical_system(comps)
    groups: dict[str, list[str]] = {}
    for c, s in zip(comps, systems):
        groups.setdefault(s, []).append(c)
    _check(len(groups), n_splits, "chemical systems")
    names = sorted(groups)
    rng = np.random.default_rng(seed)
    names = [names[i] for i in rng.permutation(len(names))]
    names.sort(key=lambda s: -len(groups[s]))  # stable: ties keep the shuffled order
    folds: list[list[str]] = [[] for _ in range(n_splits)]
    for s in names:
        smallest = min(range(n_splits), key=lambda k: len(folds[k]))
        folds[smallest].extend(groups[s])
    return Folds(tuple(tuple(sorted(f)) for f in folds), "chemsys", seed)


def element_family_folds(
    data: MultiFidelityDataset | Sequence[str],
    families: dict[str, Sequence[str]] | None = None,
    min_size: int = 20,
) -> Folds:
    """One fold per element family: every composition containing one of its elements.

    An out-of-distribution test: with the halogens held out, no halide is in training, so the
    model meets Cl, Br and I only in the test set. Unlike :func:`kfold` the folds overlap
    (``NaCl`` is in the alkali fold and in the halogen fold); each fold is its own experiment,
    so score folds one at a time (the ``fold`` column of
    :func:`mfgp.calibration.cross_validate`'s predictions), not pooled.

    Args:
        data: a dataset (its target compositions) or a list of compositions.
        families: name -> element symbols (default :data:`ELEMENT_FAMILIES`).
        min_size: families with fewer target compositions are left out.

    Returns:
        Folds of kind ``"family"``, in the order of ``families``; their names are
        :func:`element_family_names` of the same arguments.

    Example:
        >>> folds = element_family_folds(["NaCl", "KBr", "MgO", "Fe2O3", "CuCl"], min_size=2)
        >>> element_family_names(["NaCl", "KBr", "MgO", "Fe2O3", "CuCl"], min_size=2)
        ['alkali metals', '3d transition metals', 'chalcogens', 'halogens']
        >>> tuple(len(f) for f in folds.test_compositions)
        (2, 2, 2, 3)
    """
    return Folds(tuple(f for _, f in _family_folds(data, families, min_size)), "family", 0)


def element_family_names(
    data: MultiFidelityDataset | Sequence[str],
    families: dict[str, Sequence[str]] | None = None,
    min_size: int = 20,
) -> list[str]:
    """The family of each fold of :func:`element_family_folds` with the same arguments."""
    return [name for name, _ in _family_folds(data, families, min_size)]


def _family_folds(data, families, min_size) -> list[tuple[str, tuple[str, ...]]]:
    from mfgp.featurize.composition import parse_formula

    families = ELEMENT_FAMILIES if families is None else families
    comps = sorted(_targets(data))
    elements = [{s for s, _ in parse_formula(c).amounts} for c in comps]
    out = []
    for name, members in families.items():
        members = set(members)
        held = tuple(c for c, els in zip(comps, elements) if els & members)
        if len(held) >= max(min_size, 1) and len(held) < len(comps):
            out.append((name, held))
    if not out:
        raise InputDataError(
            f"no element family has at least min_size={min_size} of the {len(comps)} target "
            "compositions; lower min_size or pass families="
        )
    return out
