"""Parsing chemical formulas into element amounts, with per-row error reporting.

pymatgen does the parsing; this module adds what pymatgen leaves to the caller: rejecting dummy
species (``Composition("Fe2Xx3")`` parses, with a fake element ``Xx``), empty compositions
(``"Fe0"``), non-string input, and reporting each failure by row instead of raising midway.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from pymatgen.core import Composition, Element
from pymatgen.core.composition import reduce_formula

from mfgp.exceptions import InvalidFormulaError, UnknownElementError

__all__ = [
    "ParsedFormula",
    "ParseResult",
    "parse_formula",
    "parse_formulas",
    "reduced_composition",
    "batch_parses",
    "chemical_system",
    "streaming",
]

#: whether parses and feature rows are memoised (off inside :func:`streaming`)
_MEMOISE: ContextVar[bool] = ContextVar("mfgp_memoise_features", default=True)


@contextmanager
def streaming() -> Iterator[None]:
    """Parse and featurize without memoising: for a stream of formulas each seen once.

    Parses are memoised (up to 500,000 formulas) and a featurizer keeps the rows it computed
    (its :class:`~mfgp.featurize.FeatureCache`, up to 200,000 rows), which pays when the same
    formulas come back (training, cross-validation) and only costs memory when they do not:
    screening a million candidates would fill both memos with rows it never reads again.
    Inside this block nothing is added to either (rows already cached are still read).
    :func:`mfgp.screen` scores every batch inside it. Safe across threads and asyncio tasks
    (a context variable).

    Example:
        >>> from mfgp.featurize import CompositionFeaturizer
        >>> with streaming():
        ...     X = CompositionFeaturizer().featurize(["Li3N", "Na2O"]).X
        >>> X.shape[0]
        2
    """
    token = _MEMOISE.set(False)
    try:
        yield
    finally:
        _MEMOISE.reset(token)


#: a batch's own parses inside :func:`streaming` (:func:`batch_parses`), else ``None``
_BATCH: ContextVar[dict | None] = ContextVar("mfgp_batch_parses", default=None)


@contextmanager
def batch_parses() -> Iterator[None]:
    """Parse each formula once within this block, even inside :func:`streaming`.

    One batch of a screen is read by every part of an estimator (the hurdle's regression, its
    classifier and the classifier's latent GP each parse the formulas they are asked about,
    about four parses a candidate; 3-4% of a screen's time with the ready-made band-gap
    hurdle, ``benchmarks/results/bench_screen.md``). The parses made here are kept until the
    block ends, so memory holds one batch's, never the stream's. :func:`mfgp.screen` wraps
    every batch in it.

    Example:
        >>> with streaming(), batch_parses():
        ...     parse_formula("NaCl") is parse_formula("NaCl")
        True
    """
    token = _BATCH.set({})
    try:
        yield
    finally:
        _BATCH.reset(token)


def memoising() -> bool:
    """False inside :func:`streaming`."""
    return _MEMOISE.get()


@dataclass(frozen=True)
class ParsedFormula:
    """One parsed formula.

    Attributes:
        formula: the formula as given.
        reduced: pymatgen's reduced formula, the key used to join data sets (``"Fe2O3"``).
        amounts: element symbol -> amount, as written in the formula (not normalised).
        chemsys: the sorted element symbols joined by ``-`` (``"Fe-O"``).
    """

    formula: str
    reduced: str
    amounts: tuple[tuple[str, float], ...]
    chemsys: str


@dataclass
class ParseResult:
    """Parsed formulas with a per-row failure report.

    Attributes:
        parsed: one entry per input row, ``None`` where parsing failed.
        errors: row index -> reason, for the failed rows only.
    """

    parsed: list[ParsedFormula | None]
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def valid(self) -> list[bool]:
        """Mask of the rows that parsed."""
        return [p is not None for p in self.parsed]

    def raise_first(self, labels: Sequence[object] | None = None) -> None:
        """Raise the error of the first failed row, if any (the message names row and value).

        Args:
            labels: how to name rows (e.g. a DataFrame's index); default their position.
        """
        if not self.errors:
            return
        row = min(self.errors)
        reason = self.errors[row]
        name = row if labels is None else labels[row]
        more = f" ({len(self.errors) - 1} more rows failed)" if len(self.errors) > 1 else ""
        cls = UnknownElementError if "unknown element" in reason else InvalidFormulaError
        raise cls(f"row {name}: {reason}{more}")


#: the longest value an error message quotes in full
_SHOWN = 60


def _shown(value: object) -> str:
    """``repr(value)``, cut to :data:`_SHOWN` characters with its length said.

    A message that names a bad value stays one line, even for a whole list passed as one formula.
    """
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    return f"{text[:_SHOWN]}... ({len(text):,} characters)"


#: a plain formula: element symbols and parenthesised groups, each with an optional integer
#: count ("Fe2O3", "LiFePO4", "Ca(OH)2", "Ca3(Fe(CN)6)2")
_PLAIN = re.compile(r"(?:[A-Z][a-z]?\d*|\(|\)\d*)+")
_PLAIN_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)|(\()|\)(\d*)")
_LONG_COUNT = re.compile(r"\d{16}")


@lru_cache(maxsize=1)
def _electronegativities() -> dict[str, tuple[float, float]]:
    """Each symbol's electronegativity, raw and as pymatgen's formula ordering sorts it.

    ``(x, key)``: the Pauling electronegativity (``nan`` where pymatgen has none) and the
    sort key, ``inf`` for ``nan``.
    """
    out: dict[str, tuple[float, float]] = {}
    with warnings.catch_warnings():  # pymatgen warns for the elements without a value
        warnings.simplefilter("ignore")
        for e in Element:
            x = float(e.X)
            out[e.symbol] = (x, math.inf if math.isnan(x) else x)
    return out


def _reduce_counts(counts: dict[str, int]) -> str:
    """The reduced formula pymatgen gives integer element counts, without a Composition.

    The steps of ``pymatgen.core.composition.reduce_formula`` for integer amounts (order by
    electronegativity then symbol, divide by the counts' gcd, write the two most
    electronegative elements as a polyanion group when they are within 1.65 of each other
    and their own gcd is not 1) and ``Composition.special_formulas``, with the
    electronegativities looked up once: pymatgen's function dominated parsing a plain
    formula, which now takes about half as long (by hand, on enumerated candidates: 17.7
    against 34.5 us a formula). ``tests`` compare the result with pymatgen's general
    path on every shipped formula and a pool of candidates; where the installed pymatgen
    reduces the probes of :func:`_reduction_agrees` otherwise (releases before late 2025
    ordered noble gases as written), pymatgen's own function is called instead.
    """
    if not _reduction_agrees():
        with warnings.catch_warnings():  # no electronegativity for noble gases
            warnings.simplefilter("ignore")
            reduced, _ = reduce_formula(counts)
        return Composition.special_formulas.get(reduced, reduced)
    return _reduce_counts_here(counts)


#: element counts whose reductions cover the rule's branches: noble gases (no
#: electronegativity) written first and last, polyanions, special formulas, a common factor
_REDUCTION_PROBES = ({"Ar": 1, "Zn": 3, "O": 3}, {"Zn": 3, "O": 3, "Ar": 1}, {"Li": 4, "O": 4},
                     {"Fe": 2, "S": 3, "O": 12}, {"Ca": 1, "O": 2, "H": 2}, {"Xe": 1, "F": 4},
                     {"He": 1, "Ne": 1, "Ar": 2}, {"Na": 2, "S": 2, "O": 3}, {"O": 2})  # fmt: skip


@lru_cache(maxsize=1)
def _reduction_agrees() -> bool:
    """Whether :func:`_reduce_counts_here` reduces the probes as the installed pymatgen does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for counts in _REDUCTION_PROBES:
            reduced, _ = reduce_formula(counts)
            if Composition.special_formulas.get(reduced, reduced) != _reduce_counts_here(counts):
                return False
    return True


def _reduce_counts_here(counts: dict[str, int]) -> str:
    """The reduction as mfgp computes it (:func:`_reduce_counts` says which steps)."""
    x = _electronegativities()
    syms = sorted(counts, key=lambda s: (x[s][1], s))
    factor = math.gcd(*counts.values())
    tail = ""
    if len(syms) >= 3 and x[syms[-1]][0] - x[syms[-2]][0] < 1.65:
        pair = [counts[s] // factor for s in syms[-2:]]
        inner = math.gcd(*pair)
        if inner != 1:
            tail = "(" + "".join(s + _count(n // inner) for s, n in zip(syms[-2:], pair)) + ")"
            tail += str(inner)
            syms = syms[:-2]
    reduced = "".join(s + _count(counts[s] // factor) for s in syms) + tail
    return Composition.special_formulas.get(reduced, reduced)


def _count(n: int) -> str:
    return "" if n == 1 else str(n)


def _plain_counts(formula: str) -> dict[str, int] | None:
    """Element counts of a plain formula, in order of first appearance; ``None`` otherwise.

    Groups multiply their contents by their count, as pymatgen expands them; an empty or
    unbalanced group, a count of 0, an unknown symbol, a count written with more than 15
    digits or a total of 2^53 or more returns ``None`` (the general path then reads the
    formula, or says why it cannot: pymatgen holds amounts as floats, exact below 2^53).
    """
    if not _PLAIN.fullmatch(formula) or _LONG_COUNT.search(formula):
        return None
    symbols = _electronegativities()  # every element symbol
    stack: list[list[tuple[str, int]]] = [[]]
    for symbol, count, opening, group_count in _PLAIN_TOKEN.findall(formula):
        if symbol:
            n = int(count) if count else 1
            if symbol not in symbols or n == 0:
                return None
            stack[-1].append((symbol, n))
        elif opening:
            stack.append([])
        else:
            n = int(group_count) if group_count else 1
            if len(stack) == 1 or not stack[-1] or n == 0:
                return None
            group = stack.pop()
            stack[-1].extend((s, k * n) for s, k in group)
    if len(stack) != 1:
        return None
    merged: dict[str, int] = {}
    for symbol, n in stack[0]:
        merged[symbol] = merged.get(symbol, 0) + n
    return merged if max(merged.values()) < 2**53 else None


def _parse_plain(formula: str) -> ParsedFormula | None:
    """A plain formula parsed without building a ``Composition``; ``None`` for any other.

    Plain: element symbols and parenthesised groups with integer counts (:func:`_plain_counts`).
    The reduced formula is pymatgen's reduction of integer amounts (:func:`_reduce_counts`),
    so the result is the one of the general path (``tests`` compare them on every shipped
    formula and a pool of candidates) at a fraction of its cost: a screen parses every
    candidate once, and loading a model parses its training compositions. Counts of 0,
    fractional counts, unknown symbols, and anything else go to the general path.
    """
    merged = _plain_counts(formula)
    if merged is None:
        return None
    amounts = tuple((e, float(n)) for e, n in merged.items())
    return ParsedFormula(formula, _reduce_counts(merged), amounts, "-".join(sorted(merged)))


def _parse_uncached(formula: str) -> ParsedFormula:
    plain = _parse_plain(formula)
    return plain if plain is not None else _parse_general(formula)


def _parse_general(formula: str) -> ParsedFormula:
    """Any formula pymatgen reads, through a ``Composition``."""
    try:
        with warnings.catch_warnings():
            # pymatgen warns about missing electronegativities (noble gases) while ordering formulas
            warnings.simplefilter("ignore")
            comp = Composition(formula)
            reduced = comp.reduced_formula
    except Exception as err:  # pymatgen raises ValueError, KeyError, ... for bad strings
        msg = str(err).strip() or type(err).__name__
        if len(msg) > 2 * _SHOWN:  # pymatgen's message quotes the whole (cleaned) string
            msg = "pymatgen cannot read it"
        raise InvalidFormulaError(
            f"formula {_shown(formula)} cannot be parsed ({msg}); write it like 'Fe2O3' or "
            "'Ca(OH)2'"
        ) from None
    amounts: list[tuple[str, float]] = []
    for species, amount in comp.items():
        symbol = getattr(species, "symbol", str(species))
        if not isinstance(species, Element):
            element = getattr(species, "element", None)
            if isinstance(element, Element):  # an ionic species such as Fe3+: keep the element
                symbol = element.symbol
            else:
                raise UnknownElementError(
                    f"formula {_shown(formula)} has unknown element {symbol!r}; "
                    "use element symbols from H to Og"
                )
        if not math.isfinite(amount):
            raise InvalidFormulaError(
                f"formula {_shown(formula)} has a non-finite amount {amount!r}"
            )
        amounts.append((symbol, float(amount)))
    if not amounts or sum(a for _, a in amounts) <= 0:
        raise InvalidFormulaError(f"formula {_shown(formula)} contains no atoms")
    merged: dict[str, float] = {}
    for symbol, amount in amounts:
        merged[symbol] = merged.get(symbol, 0.0) + amount
    chemsys = "-".join(sorted(merged))
    return ParsedFormula(formula, reduced, tuple(merged.items()), chemsys)


def _parse_or_message(formula: str) -> ParsedFormula | str:
    try:
        return _parse_uncached(formula)
    except InvalidFormulaError as err:
        return str(err)


_parse_cached = lru_cache(maxsize=500_000)(_parse_or_message)


def parse_formula(formula: object) -> ParsedFormula:
    """Parse one formula.

    Args:
        formula: a chemical formula such as ``"Fe2O3"``.

    Returns:
        The parsed formula.

    Raises:
        InvalidFormulaError: the formula cannot be parsed (``UnknownElementError`` for a symbol
            that is no element).

    Example:
        >>> parse_formula("O3Fe2").reduced
        'Fe2O3'
    """
    if not isinstance(formula, str):
        hint = ("pass one formula per row, not a batch of them" if isinstance(
            formula, (list, tuple)) else "read CSV files with keep_default_na=False so that "
            "'NaN' (NaN, sodium nitride) stays a formula")  # fmt: skip
        raise InvalidFormulaError(
            f"formula {_shown(formula)} is a {type(formula).__name__}, not a string; {hint}"
        )
    key = formula.strip()
    if _MEMOISE.get():
        result = _parse_cached(key)
    elif (batch := _BATCH.get()) is not None:
        result = batch.get(key)
        if result is None:
            result = batch[key] = _parse_or_message(key)
    else:
        result = _parse_or_message(key)
    if isinstance(result, str):
        cls = UnknownElementError if "unknown element" in result else InvalidFormulaError
        raise cls(result)
    return result


def parse_formulas(formulas: Iterable[object]) -> ParseResult:
    """Parse many formulas, collecting failures per row instead of stopping at the first.

    Args:
        formulas: formulas, one per row.

    Returns:
        A :class:`ParseResult`; ``result.raise_first()`` turns the first failure into an error.

    Example:
        >>> res = parse_formulas(["NaCl", "Fe2Xx3"])
        >>> res.valid, res.errors[1][:24]
        ([True, False], "formula 'Fe2Xx3' has unk")
    """
    parsed: list[ParsedFormula | None] = []
    errors: dict[int, str] = {}
    for i, f in enumerate(formulas):
        try:
            parsed.append(parse_formula(f))
        except InvalidFormulaError as err:
            parsed.append(None)
            errors[i] = str(err)
    return ParseResult(parsed, errors)


def reduced_composition(formulas: Sequence[object]) -> list[str]:
    """Reduced formulas (the join key), raising on the first row that cannot be parsed.

    Example:
        >>> reduced_composition(["Fe4O6", "NaCl"])
        ['Fe2O3', 'NaCl']
    """
    res = parse_formulas(formulas)
    res.raise_first()
    return [p.reduced for p in res.parsed]  # type: ignore[union-attr]


def chemical_system(formulas: Sequence[object]) -> list[str]:
    """Chemical systems (``"Fe-O"``), raising on the first row that cannot be parsed."""
    res = parse_formulas(formulas)
    res.raise_first()
    return [p.chemsys for p in res.parsed]  # type: ignore[union-attr]
