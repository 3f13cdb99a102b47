"""Candidate compositions for screening: enumerated from elements, in chunks, never all at once.

:func:`enumerate_compositions` walks every combination of ``k`` elements and every reduced
stoichiometry with at most ``max_atoms_per_formula`` atoms, optionally keeping only the
charge-balanced ones (some assignment of one common oxidation state per element sums to zero:
pymatgen's ``common_oxidation_states``, checked for all stoichiometries of a combination at
once as one integer matrix product, not one ``oxi_state_guesses()`` call per formula), and
skipping compositions given in ``exclude`` (e.g. those already measured). It yields lists of
at most ``chunk_size`` formulas.

Example:
    >>> chunks = enumerate_compositions(["Na", "Cl"], n_elements=(2,), max_atoms_per_formula=3,
    ...                                 charge_balanced=True)
    >>> [f for chunk in chunks for f in chunk]
    ['NaCl']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

from mfgp.exceptions import InputDataError

__all__ = ["count_compositions", "enumerate_compositions", "stoichiometries"]


@lru_cache(maxsize=64)
def stoichiometries(k: int, max_atoms: int) -> np.ndarray:
    """Every vector of ``k`` positive integers with sum ``<= max_atoms`` and gcd 1, ``m x k``.

    Example:
        >>> stoichiometries(2, 3).tolist()
        [[1, 1], [1, 2], [2, 1]]
    """
    rows = [c for total in range(k, max_atoms + 1)
            for c in _compositions_of(total, k) if math.gcd(*c) == 1]  # fmt: skip
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, k)


def _compositions_of(total: int, k: int) -> Iterator[tuple[int, ...]]:
    """Ordered ``k``-tuples of positive integers summing to ``total``."""
    for cuts in itertools.combinations(range(1, total), k - 1):
        edges = (0, *cuts, total)
        yield tuple(b - a for a, b in zip(edges, edges[1:]))


@lru_cache(maxsize=256)
def _oxidation_states(symbol: str) -> tuple[int, ...]:
    from pymatgen.core import Element

    try:
        states = Element(symbol).common_oxidation_states
    except ValueError as err:
        raise InputDataError(f"unknown element {symbol!r}") from err
    return tuple(int(s) for s in states) or (0,)


@lru_cache(maxsize=256)
def _electronegativity(symbol: str) -> float:
    from pymatgen.core import Element

    x = Element(symbol).X
    return float(x) if math.isfinite(x) else math.inf


def _balanced(elements: Sequence[str], stoich: np.ndarray) -> np.ndarray:
    """Which rows of ``stoich`` admit a charge-neutral choice of one state per element."""
    states = [_oxidation_states(e) for e in elements]
    if any(s == (0,) for s in states):  # noble gases: no compound
        return np.zeros(stoich.shape[0], dtype=bool)
    choices = np.array(list(itertools.product(*states)), dtype=np.int64)  # t x k
    return (stoich @ choices.T == 0).any(axis=1)


def _key(amounts: Iterable[tuple[str, float]]) -> tuple:
    """A composition's order-free key: sorted (element, fraction) pairs."""
    pairs = [(e, float(a)) for e, a in amounts if a > 0]
    total = sum(a for _, a in pairs)
    return tuple(sorted((e, round(a / total, 9)) for e, a in pairs))


def _formula(elements: Sequence[str], counts: Sequence[int]) -> str:
    return "".join(e if n == 1 else f"{e}{n}" for e, n in zip(elements, counts))


def _validated(elements: Sequence[str], n_elements, max_atoms: int, chunk_size: int):
    if isinstance(elements, str):
        raise InputDataError(f"elements must be a list of symbols, not the string {elements!r}")
    symbols = list(dict.fromkeys(str(e).strip() for e in elements))
    for e in symbols:
        _oxidation_states(e)  # names an unknown symbol
    symbols.sort(key=lambda e: (_electronegativity(e), e))  # formulas read "NaCl", "Fe2O3"
    ks = (n_elements,) if isinstance(n_elements, int) else tuple(n_elements)
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise InputDataError(f"n_elements must be positive integers; got {n_elements!r}")
    if max_atoms < max(ks):
        raise InputDataError(
            f"max_atoms_per_formula={max_atoms} cannot hold {max(ks)} elements"
        )
    if chunk_size < 1:
        raise InputDataError(f"chunk_size must be >= 1; got {chunk_size}")
    return symbols, sorted(set(int(k) for k in ks))


def enumerate_compositions(
    elements: Sequence[str],
    *,
    n_elements: int | Sequence[int] = (2, 3),
    max_atoms_per_formula: int = 8,
    charge_balanced: bool = False,
    exclude: Iterable[str] | None = None,
    chunk_size: int = 100_000,
) -> Iterator[list[str]]:
    """Yield lists of candidate formulas (see the module).

    Args:
        elements: element symbols to combine.
        n_elements: how many distinct elements a formula has (one number or several).
        max_atoms_per_formula: the most atoms in the reduced formula.
        charge_balanced: keep only formulas with a charge-neutral assignment of common
            oxidation states (one state per element).
        exclude: formulas to leave out (any spelling of the same composition).
        chunk_size: the most formulas per yielded list.
    """
    symbols, ks = _validated(elements, n_elements, max_atoms_per_formula, chunk_size)
    skip: set[tuple] = set()
    if exclude is not None:
        from mfgp.featurize.composition import parse_formulas

        res = parse_formulas(list(exclude))
        res.raise_first()
        skip = {_key(p.amounts) for p in res.parsed}
    chunk: list[str] = []
    for k in ks:
        stoich = stoichiometries(k, max_atoms_per_formula)
        for combo in itertools.combinations(symbols, k):
            rows = stoich[_balanced(combo, stoich)] if charge_balanced else stoich
            for counts in rows.tolist():
                if skip and _key(zip(combo, counts)) in skip:
                    continue
                chunk.append(_formula(combo, counts))
                if len(chunk) == chunk_size:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def count_compositions(elements: Sequence[str], *, n_elements: int | Sequence[int] = (2, 3),
                       max_atoms_per_formula: int = 8, charge_balanced: bool = False) -> int:
    """How many formulas :func:`enumerate_compositions` yields (without building them)."""
    symbols, ks = _validated(elements, n_elements, max_atoms_per_formula, 1)
    total = 0
    for k in ks:
        stoich = stoichiometries(k, max_atoms_per_formula)
        if not charge_balanced:
            total += math.comb(len(symbols), k) * stoich.shape[0]
            continue
        total += sum(int(_balanced(combo, stoich).sum())
                     for combo in itertools.combinations(symbols, k))  # fmt: skip
    return total
