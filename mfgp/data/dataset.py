"""The multi-fidelity data container: validated long-format data -> tensors of the mfgp contract.

The tensor contract (``docs/design.md``): inputs are ``n x (d + 1)`` float tensors whose last
column is the 0-based fidelity index (the highest index is the target fidelity); targets are
``n x 1``; known noise variances, when given, are ``n x 1``.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import warnings
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mfgp._rows import match_rows
from mfgp.exceptions import (
    ConflictingDuplicatesError,
    ConflictingDuplicatesWarning,
    EmptyDataError,
    InputDataError,
    InvalidFormulaError,
    MissingFidelityError,
    NonFiniteValueError,
    UnknownElementError,
    UnknownFidelityError,
)
from mfgp.featurize.composition import parse_formulas
from mfgp.featurize.featurizer import CompositionFeaturizer

#: featurizers of the datasets read inside one :func:`sharing_featurizers` block, by settings
_LOADING: ContextVar[dict[tuple, CompositionFeaturizer] | None] = ContextVar(
    "mfgp_loading_featurizers", default=None
)


@contextlib.contextmanager
def sharing_featurizers() -> Iterator[None]:
    """Datasets read by :meth:`MultiFidelityDataset.from_parts` inside share their featurizer.

    An estimator file holds several datasets over the same compositions (a hurdle: its own,
    its regression's, its classifier's and the classifier's latent regression's), and a fit
    gives them one featurizer. Read inside this block they get one again, with one feature
    cache, so each composition is parsed and featurized once per load instead of once per
    dataset (the ready-made band-gap hurdle: four datasets of 50,922 compositions). Features
    are a function of the composition and the featurizer's settings, so the values are the
    same. Nested blocks share the outer one's featurizers.
    """
    if _LOADING.get() is not None:
        yield
        return
    token = _LOADING.set({})
    try:
        yield
    finally:
        _LOADING.reset(token)


__all__ = ["MultiFidelityDataset", "DUPLICATE_POLICIES", "misspelled_fidelities"]

DUPLICATE_POLICIES = ("mean", "median", "first", "error")
#: How many bad rows one error lists before it says "and N more".
MAX_ROWS_SHOWN = 10

_Problem = tuple[int, type[InputDataError], str]  # (row position, error class, what is wrong)

#: The fix appended once to an error that lists rows of each kind.
_FIXES: dict[type[InputDataError], str] = {
    UnknownFidelityError: "correct the fidelity, or add the level to the declared fidelities "
    "(low to high, the target last)",
}
_RENAME = ("rename the level, or declare the order (fidelities=[lowest, ..., target]) listing it "
           "if it is a level of its own")


class _RowNames:
    """How messages name rows: ``row LABEL`` of a frame, or ``FILE line N`` of a CSV."""

    def __init__(self, labels: Sequence[object], source: str | None) -> None:
        self.labels = list(labels)
        self.source = source

    def __call__(self, i: int) -> str:
        word = "row" if self.source is None else "line"
        return f"{word} {self.labels[i]}"

    def prefix(self) -> str:
        return "" if self.source is None else str(self.source)


def _raise_problems(problems: list[_Problem], rows: _RowNames, fix: str | None = None) -> None:
    """Raise one error listing every bad row (the first :data:`MAX_ROWS_SHOWN`), if any.

    The error's class is that of the first kind of problem found (fidelity, then value and
    noise, then formula: the order of the checks), so ``except UnknownFidelityError`` still
    catches a frame whose only problem is a fidelity.
    """
    if not problems:
        return
    cls = problems[0][1]
    if issubclass(cls, InvalidFormulaError):  # an unknown element only if every formula's is
        kinds = {k for _, k, _ in problems if issubclass(k, InvalidFormulaError)}
        cls = UnknownElementError if kinds == {UnknownElementError} else InvalidFormulaError
    ordered = sorted(problems, key=lambda p: p[0])  # stable: a row's problems stay together
    shown = [f"{rows(i)}: {what}" for i, _, what in ordered[:MAX_ROWS_SHOWN]]
    more = len(ordered) - MAX_ROWS_SHOWN
    fixes = [fix] if fix else [f for k, f in _FIXES.items()
                                if any(issubclass(c, k) for _, c, _ in problems)]  # fmt: skip
    bad = len({i for i, _, _ in problems})
    src = rows.prefix()
    if bad == 1:
        head = f"{src} " if src else ""
    else:
        head = (f"{src}: " if src else "") + f"{bad} rows cannot be used: "
    raise cls(head + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
              + "".join(f"; {f}" for f in fixes))  # fmt: skip


def misspelled_fidelities(
    fidelity: Sequence[object], *, max_rows: int = 5, cutoff: float = 0.6
) -> list[_Problem]:
    """Rows whose fidelity looks like a misspelling of another level's name.

    A level is suspect when it has at most ``max_rows`` rows, at most a tenth of the rows of
    another level, and a name close to that level's (``difflib`` ratio >= ``cutoff``, case
    ignored): ``hse06`` beside 300 ``hse`` rows. Only useful where no fidelity order is
    declared: a declared order names every level, and anything else is refused anyway.

    Args:
        fidelity: each row's fidelity name.
        max_rows: the most rows a suspect level has.
        cutoff: the least name similarity (0 to 1) that makes a level suspect.

    Returns:
        ``(row position, UnknownFidelityError, message)`` for each suspect row, empty if none.

    Example:
        >>> len(misspelled_fidelities(["hse"] * 20 + ["hse06"]))
        1
    """
    names = [str(f) for f in fidelity]
    counts = pd.Series(names, dtype=object).value_counts()
    problems: list[_Problem] = []
    suspect: dict[str, str] = {}
    for name, k in counts.items():
        if k > max_rows:
            continue
        for other, m in counts.items():
            ratio = difflib.SequenceMatcher(None, str(name).lower(), str(other).lower()).ratio()
            if other != name and m >= 10 * k and ratio >= cutoff:
                suspect[str(name)] = f"{other!r} ({m} rows)"
                break
    for i, name in enumerate(names):
        if name in suspect:
            k = int(counts[name])
            problems.append((i, UnknownFidelityError,
                             f"fidelity {name!r} ({k} row{'s' if k > 1 else ''}) looks like a "
                             f"misspelling of {suspect[name]}"))
    return problems


def _as_featurizer(featurizer: str | CompositionFeaturizer) -> CompositionFeaturizer:
    if isinstance(featurizer, str):
        return CompositionFeaturizer(featurizer)
    return featurizer


@dataclass
class MultiFidelityDataset:
    """Observations of one property at several ordered fidelities, one row per composition/fidelity.

    Build it with :meth:`from_frame` (the long format of :mod:`mfgp.datasets`) or
    :meth:`from_arrays`. Rows are validated (formula, value, fidelity), repeated
    (composition, fidelity) rows are aggregated by the ``duplicates`` policy with their count
    kept in ``n_obs``, and each distinct composition is featurized once.

    Attributes:
        frame: the cleaned rows: ``composition``, ``formula`` (first seen), ``fidelity``,
            ``fidelity_index``, ``value``, ``n_obs``, ``noise`` (variance, NaN if unknown).
        fidelities: fidelity names, low to high; the last one is the target.
        compositions: the distinct compositions, in the order of the rows of :attr:`features`.
        features: ``n_compositions x d`` float64 array of composition features.
        feature_labels: the ``d`` feature names.

    Example:
        >>> from mfgp.datasets import load_bandgap_ladder
        >>> ds = MultiFidelityDataset.from_frame(load_bandgap_ladder(["pbe", "expt"]))
        >>> ds.train_X.shape[-1] == ds.features.shape[1] + 1
        True
    """

    frame: pd.DataFrame
    fidelities: tuple[str, ...]
    compositions: np.ndarray
    features: np.ndarray
    feature_labels: list[str]
    featurizer: CompositionFeaturizer = field(repr=False)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        fidelities: Sequence[str] | None = None,
        *,
        formula_col: str = "formula",
        fidelity_col: str = "fidelity",
        value_col: str = "value",
        noise_col: str | None = "auto",
        featurizer: str | CompositionFeaturizer = "magpie",
        duplicates: str = "mean",
        conflict_tol: float | None = None,
        conflict_warn: float | str | None = "auto",
    ) -> MultiFidelityDataset:
        """Validate a long-format frame and build the dataset.

        Args:
            df: one row per observation.
            fidelities: fidelity names low to high (the last is the target). ``None``: the
                order recorded in ``df.attrs["fidelities"]`` (frames from :mod:`mfgp.datasets`
                carry it), restricted to the levels present; a frame with one level needs
                none; otherwise :class:`InputDataError` asks for it (the order of the rows is
                no statement of which level is the target).
            formula_col: column of chemical formulas.
            fidelity_col: column of fidelity names.
            value_col: column of observed values.
            noise_col: column of known noise *variances* (in the value's units squared, e.g.
                eV^2; not standard deviations), given for every row or for none.
                ``"auto"`` (the default): the column ``noise`` if the frame has one (it is
                never silently dropped), else none; ``None``: no known noise, whatever the
                frame holds (the noise is then learned per fidelity).
            featurizer: a preset name or a :class:`CompositionFeaturizer`.
            duplicates: what to do with repeated (composition, fidelity) rows: ``"mean"``,
                ``"median"``, ``"first"`` (each keeps the count in ``n_obs``) or ``"error"``.
            conflict_tol: if set, repeated rows whose values span more than this raise
                :class:`ConflictingDuplicatesError` whatever the policy.
            conflict_warn: repeated rows whose values span more than this are aggregated with
                a :class:`~mfgp.exceptions.ConflictingDuplicatesWarning` naming them;
                ``"auto"``: a quarter of that fidelity's standard deviation; ``None``: never.

        Rows are named by the frame's index in messages; a frame whose ``attrs["source"]``
        is a file name (the command line's CSVs) has the file's line numbers as its index,
        and rows are named ``FILE line N``. Every bad row is reported in one error.

        Raises:
            InputDataError: (a subclass naming the rows and values) for bad formulas, NaN/inf
                values or noise, negative noise, fidelities outside the declared order (or,
                with no declared order, a level of a few rows named like another, e.g. ``hse06``
                beside ``hse``), no rows, a fidelity with no rows, or conflicting duplicates.
        """
        if noise_col == "auto":
            noise_col = "noise" if "noise" in df.columns else None
        for col in (formula_col, fidelity_col, value_col) + ((noise_col,) if noise_col else ()):
            if col not in df.columns:
                raise InputDataError(f"column {col!r} not found; the frame has {list(df.columns)}")
        if fidelities is None and df.attrs.get("fidelities") is not None:
            present = {str(f) for f in df[fidelity_col].unique()}
            declared = [str(f) for f in df.attrs["fidelities"]]
            # the declared order, restricted to the levels present; rows at other levels are
            # refused by name (they used to turn the order into "no declared order")
            fidelities = [f for f in declared if f in present] or declared
        return cls.from_arrays(
            df[formula_col].tolist(),
            df[fidelity_col].tolist(),
            df[value_col].to_numpy(),
            fidelities=fidelities,
            noise=None if noise_col is None else df[noise_col].to_numpy(),
            featurizer=featurizer,
            duplicates=duplicates,
            conflict_tol=conflict_tol,
            conflict_warn=conflict_warn,
            row_labels=list(df.index),
            source=df.attrs.get("source"),
        )

    @classmethod
    def from_arrays(
        cls,
        formulas: Sequence[object],
        fidelity: Sequence[object],
        values: Sequence[float] | np.ndarray,
        fidelities: Sequence[str] | None = None,
        *,
        noise: Sequence[float] | np.ndarray | None = None,
        featurizer: str | CompositionFeaturizer = "magpie",
        duplicates: str = "mean",
        conflict_tol: float | None = None,
        conflict_warn: float | str | None = "auto",
        row_labels: Sequence[object] | None = None,
        source: str | None = None,
    ) -> MultiFidelityDataset:
        """Build from parallel sequences (see :meth:`from_frame` for the arguments).

        ``row_labels`` name the rows in messages (default their position); with ``source`` (a
        file name) they are its line numbers and rows are named ``SOURCE line N``. Every bad
        row (formula, value, noise, fidelity) is reported in one error, the first
        :data:`MAX_ROWS_SHOWN` listed.
        """
        n = len(formulas)
        labels = list(row_labels) if row_labels is not None else list(range(n))
        if n == 0:
            raise EmptyDataError("no rows: the dataset needs at least one observation")
        if len(fidelity) != n or len(values) != n or (noise is not None and len(noise) != n):
            raise InputDataError(
                f"formulas, fidelity, values (and noise) must have one entry per row; got "
                f"{n}, {len(fidelity)}, {len(values)}"
                + ("" if noise is None else f", {len(noise)}")
            )
        if duplicates not in DUPLICATE_POLICIES:
            raise InputDataError(
                f"duplicates={duplicates!r} is not a policy; choose one of {DUPLICATE_POLICIES}"
            )
        rows = _RowNames(labels, source)
        problems: list[tuple[int, type[InputDataError], str]] = []
        # fidelities
        if fidelities is None:
            fidelities = list(dict.fromkeys(str(f) for f in fidelity))
            if len(fidelities) > 1:
                _raise_problems(misspelled_fidelities(fidelity), rows, _RENAME)
                raise InputDataError(
                    f"the rows hold {len(fidelities)} fidelities {fidelities} in no declared "
                    "order; pass fidelities=[lowest, ..., target] (the last is the target)"
                )
        fidelities = tuple(str(f) for f in fidelities)
        if len(set(fidelities)) != len(fidelities) or not fidelities:
            raise InputDataError(f"fidelities must be distinct names, got {list(fidelities)}")
        index_of = {name: i for i, name in enumerate(fidelities)}
        fid_idx = np.zeros(n, dtype=np.int64)
        for i, f in enumerate(fidelity):
            # labels are names: 0 and "0" are the same level (integer labels are common)
            if isinstance(f, (bool, np.bool_)) or str(f) not in index_of:
                close = difflib.get_close_matches(str(f), fidelities, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append((i, UnknownFidelityError,
                                 f"fidelity {f!r} is not one of {list(fidelities)}{hint}"))
            else:
                fid_idx[i] = index_of[str(f)]
        # values and noise
        vals = cls._finite(values, "value", problems)
        var = None if noise is None else cls._finite(noise, "noise variance", problems)
        if var is not None:
            for i in np.flatnonzero(var < 0):
                problems.append((int(i), NonFiniteValueError,
                                 f"noise variance {float(var[i])!r} is negative; "
                                 "give variances >= 0"))
        # formulas
        parsed = parse_formulas(formulas)
        for i, reason in parsed.errors.items():
            kind = UnknownElementError if "unknown element" in reason else InvalidFormulaError
            problems.append((i, kind, reason))
        _raise_problems(problems, rows)
        comps = [p.reduced for p in parsed.parsed]  # type: ignore[union-attr]
        raw = pd.DataFrame(
            {
                "row": labels,
                "composition": comps,
                "formula": [str(f) for f in formulas],
                "fidelity": [fidelities[i] for i in fid_idx],
                "fidelity_index": fid_idx,
                "value": vals,
                "noise": np.nan if var is None else var,
            }
        )
        frame = cls._aggregate(raw, duplicates, conflict_tol, conflict_warn)
        counts = frame.groupby("fidelity_index").size()
        for i, name in enumerate(fidelities):
            if counts.get(i, 0) == 0:
                raise MissingFidelityError(
                    f"fidelity {name!r} has no rows; drop it from fidelities={list(fidelities)} "
                    "or add observations"
                )
        fz = _as_featurizer(featurizer)
        compositions = frame["composition"].drop_duplicates().to_numpy()
        res = fz.featurize(list(compositions))
        if res.errors:
            first_row = frame.drop_duplicates("composition")["first_row"].to_numpy()
            res.raise_first(list(first_row))  # names the first input row of the composition
        features = res.X
        return cls(frame, fidelities, compositions, features, fz.feature_labels(), fz)

    @staticmethod
    def _finite(values: Sequence[float] | np.ndarray, what: str,
                problems: list[tuple[int, type[InputDataError], str]]) -> np.ndarray:  # fmt: skip
        """``values`` as float64; each entry that is not a finite number added to ``problems``."""
        try:
            arr = np.asarray(values, dtype=np.float64)
            text = np.zeros(len(arr), dtype=bool)
        except (TypeError, ValueError):
            arr = np.full(len(values), np.nan)
            text = np.zeros(len(values), dtype=bool)
            for i, v in enumerate(values):
                try:
                    arr[i] = float(v)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    text[i] = True
                    problems.append((i, NonFiniteValueError, f"{what} {v!r} is not a number"))
        for i in np.flatnonzero(~np.isfinite(arr) & ~text):
            problems.append((int(i), NonFiniteValueError,
                             f"{what} {float(arr[i])!r} is not finite; "
                             "drop the row or fill the value"))
        return arr

    @staticmethod
    def _aggregate(raw: pd.DataFrame, policy: str, tol: float | None,
                   warn: float | str | None = "auto") -> pd.DataFrame:  # fmt: skip
        key = ["composition", "fidelity_index"]
        dup = raw.duplicated(key, keep=False)
        if dup.any() and policy != "error" and warn is not None:
            spread = raw[dup].groupby(key, sort=False)["value"].agg(lambda v: v.max() - v.min())
            if warn == "auto":
                sd = raw.groupby("fidelity_index")["value"].std().fillna(0.0)
                limit = 0.25 * sd.reindex(spread.index.get_level_values(1)).to_numpy()
            else:
                limit = np.full(len(spread), float(warn))
            bad = spread.to_numpy() > limit
            if bad.any() and (tol is None or spread.max() <= tol):
                worst = spread[bad].sort_values(ascending=False)
                shown = []
                for comp, fid in worst.index[:3]:
                    rows = raw[(raw["composition"] == comp) & (raw["fidelity_index"] == fid)]
                    shown.append(
                        f"rows {rows['row'].tolist()} ({comp}, {rows['fidelity'].iloc[0]}): "
                        f"{rows['value'].tolist()}"
                    )
                warnings.warn(
                    f"{int(bad.sum())} repeated (composition, fidelity) group(s) disagree by more "
                    f"than {'a quarter of the fidelity std' if warn == 'auto' else warn} and "
                    f"are aggregated by {policy!r}: " + "; ".join(shown)
                    + (" ..." if bad.sum() > 3 else "")
                    + "; clean them, or set conflict_tol= to refuse or conflict_warn=None",
                    ConflictingDuplicatesWarning,
                    stacklevel=4,
                )
        if dup.any():
            groups = raw[dup].groupby(key, sort=False)
            spread = groups["value"].agg(lambda v: v.max() - v.min())
            worst = spread.idxmax()
            rows = raw[dup].set_index(key).loc[[worst]]
            if policy == "error" or (tol is not None and spread.max() > tol):
                raise ConflictingDuplicatesError(
                    f"rows {rows['row'].tolist()}: composition {worst[0]!r} at fidelity "
                    f"{rows['fidelity'].iloc[0]!r} repeats with values {rows['value'].tolist()}"
                    + (
                        f" (spread {spread.max():.4g} > conflict_tol={tol})"
                        if tol is not None
                        else ""
                    )
                    + "; aggregate them (duplicates='mean') or clean the data"
                )
        agg = {
            "mean": "mean",
            "median": "median",
            "first": "first",
            "error": "first",
        }[policy]
        grouped = raw.groupby(key, sort=False)
        frame = grouped.agg(
            formula=("formula", "first"),
            fidelity=("fidelity", "first"),
            value=("value", agg),
            n_obs=("value", "size"),
            noise=("noise", "mean"),
            first_row=("row", "first"),
        ).reset_index()
        # the mean of k observations with noise s has variance s / k
        if policy == "mean":
            frame["noise"] = frame["noise"] / frame["n_obs"]
        return frame[
            ["composition", "formula", "fidelity", "fidelity_index", "value", "n_obs", "noise",
             "first_row"]
        ]  # fmt: skip

    # -- views ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of (composition, fidelity) observations."""
        return len(self.frame)

    @property
    def target(self) -> str:
        """The target (highest) fidelity."""
        return self.fidelities[-1]

    @functools.cached_property
    def composition_index(self) -> np.ndarray:
        """For each row, the index of its composition in :attr:`compositions` (computed once)."""
        pos = {c: i for i, c in enumerate(self.compositions)}
        return np.array([pos[c] for c in self.frame["composition"]], dtype=np.int64)

    def counts(self) -> pd.Series:
        """Observations per fidelity, low to high."""
        return self.frame.groupby("fidelity").size().reindex(list(self.fidelities))

    def tensors(
        self,
        rows: np.ndarray | Sequence[int] | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(X, Y, Yvar)`` for the chosen rows, following the tensor contract.

        Returns:
            ``X``: ``n x (d + 1)``, the features then the fidelity index as the last column;
            ``Y``: ``n x 1``; ``Yvar``: ``n x 1`` known noise variances, or ``None`` if unknown.
        """
        sel = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        feats = self.features[self.composition_index[sel]]
        fid = self.frame["fidelity_index"].to_numpy()[sel].astype(np.float64)[:, None]
        # contiguous, whatever the selection: reductions over a strided column can round
        # differently, and a saved model must rebuild bit for bit from the same rows
        X = torch.as_tensor(np.ascontiguousarray(np.concatenate([feats, fid], axis=1)),
                            dtype=dtype, device=device)  # fmt: skip
        Y = torch.as_tensor(np.ascontiguousarray(self.frame["value"].to_numpy()[sel, None]),
                            dtype=dtype, device=device)  # fmt: skip
        noise = np.ascontiguousarray(self.frame["noise"].to_numpy()[sel, None])
        Yvar = None if np.isnan(noise).all() else torch.as_tensor(noise, dtype=dtype, device=device)
        if Yvar is not None and torch.isnan(Yvar).any():
            raise InputDataError(
                "known noise is given for some rows but not others; give it for all or none"
            )
        return X, Y, Yvar

    @property
    def train_X(self) -> torch.Tensor:
        """All inputs, ``n x (d + 1)`` float64 (features, then fidelity index)."""
        return self.tensors()[0]

    @property
    def train_Y(self) -> torch.Tensor:
        """All targets, ``n x 1`` float64."""
        return self.tensors()[1]

    def observed_at(self, X: torch.Tensor, fidelity: str | None = None) -> np.ndarray:
        """The mean observed value of ``fidelity`` at each row's composition, NaN where none.

        Rows are contract inputs (``n x (d + 1)``, features then fidelity, e.g. from
        :meth:`inputs_for`) with this dataset's featurizer; each is matched to its
        composition by :meth:`compositions_at` (to the precision of ``X``'s dtype).
        """
        name = self.target if fidelity is None else str(fidelity)
        if name not in self.fidelities:
            raise UnknownFidelityError(f"fidelity {name!r} is not one of {list(self.fidelities)}")
        f = self.frame[self.frame["fidelity"] == name]
        means = f.groupby("composition")["value"].mean().to_dict()
        comps = self.compositions_at(X)
        return np.array([means.get(c, np.nan) for c in comps], dtype=np.float64).reshape(
            X.shape[:-1])

    @functools.cached_property
    def rows_by_composition(self) -> dict[str, np.ndarray]:
        """Reduced composition -> the indices of its rows (any fidelity), computed once."""
        order = np.argsort(self.composition_index, kind="stable")
        bounds = np.flatnonzero(np.diff(self.composition_index[order])) + 1
        groups = np.split(order, bounds) if order.size else []
        return {str(self.compositions[self.composition_index[g[0]]]): g for g in groups}

    def rows_of(self, compositions: Sequence[object]) -> np.ndarray:
        """Indices of every row (any fidelity) of the given compositions, sorted.

        Rows are keyed by reduced composition (``"Fe2O3"``, as in :attr:`compositions`; give
        formulas through :func:`mfgp.featurize.reduced_composition`), never by feature values;
        a composition without rows (or ``None``) contributes none.

        Example:
            >>> ds.rows_of(["GaAs"])  # doctest: +SKIP
            array([ 17, 912])
        """
        table = self.rows_by_composition
        parts = [table[c] for c in dict.fromkeys(compositions) if c in table]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def compositions_at(self, X: torch.Tensor) -> np.ndarray:
        """The composition of each row of contract inputs ``X``, by its features (a fallback).

        Only for callers that hold raw tensors and no formulas: a row matches the composition
        whose featurizer output agrees with its own to ``max(1e-9, 4 eps)`` of each feature's
        scale, ``eps`` the machine precision of ``X``'s dtype (a float32 row is the float64
        features rounded once, so it still matches; two compositions whose features agree that
        closely in every column would be confused). Prefer keys from formulas.

        Returns:
            ``n`` reduced compositions (object array), ``None`` where no composition matches.
        """
        flat = X.detach().reshape(-1, X.shape[-1])
        rtol = max(1e-9, 4 * torch.finfo(flat.dtype).eps) if flat.is_floating_point() else 1e-9
        match = match_rows(torch.as_tensor(self.features), flat[:, :-1].cpu(), rtol=rtol).numpy()
        out = np.full(match.shape[0], None, dtype=object)
        out[match >= 0] = self.compositions[match[match >= 0]]
        return out

    def rows_at(self, X: torch.Tensor) -> np.ndarray:
        """Indices of every row (any fidelity) whose composition is that of a row of ``X``.

        A fallback for raw tensors (:meth:`compositions_at`: matched by features, to the
        precision of ``X``'s dtype); with formulas use :meth:`rows_of`.
        """
        return self.rows_of([c for c in self.compositions_at(X) if c is not None])

    def inputs_for(
        self,
        formulas: Sequence[object],
        fidelity: str | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Model inputs for new formulas at one fidelity (default: the target).

        Returns:
            ``m x (d + 1)`` tensor, featurized with this dataset's featurizer.
        """
        name = self.target if fidelity is None else str(fidelity)
        if name not in self.fidelities:
            raise UnknownFidelityError(f"fidelity {name!r} is not one of {list(self.fidelities)}")
        feats = self.featurizer.transform(list(formulas))
        col = np.full((len(feats), 1), float(self.fidelities.index(name)))
        return torch.as_tensor(np.concatenate([feats, col], axis=1), dtype=dtype, device=device)

    # -- saving ----------------------------------------------------------------------------
    def to_parts(self) -> tuple[dict, dict[str, torch.Tensor], dict]:
        """``(manifest, tensors, member)``: the rows, without features, for :mod:`mfgp.io`.

        Features are not stored: :meth:`from_parts` recomputes them with the same featurizer
        (deterministic; its version is recorded and checked).
        """
        f = self.frame
        fz = self.featurizer
        manifest = {"fidelities": list(self.fidelities),
                    "featurizer": {"preset": fz.preset, "impute_nan": fz.impute_nan,
                                   "version": fz.version}}  # fmt: skip
        tensors = {
            "composition_index": torch.as_tensor(self.composition_index),
            "fidelity_index": torch.as_tensor(f["fidelity_index"].to_numpy(dtype=np.int64)),
            "value": torch.as_tensor(f["value"].to_numpy(dtype=np.float64)),
            "noise": torch.as_tensor(f["noise"].to_numpy(dtype=np.float64)),
            "n_obs": torch.as_tensor(f["n_obs"].to_numpy(dtype=np.int64)),
        }
        member = {"compositions": [str(c) for c in self.compositions],
                  "formula": f["formula"].astype(str).tolist(),
                  "first_row": [str(r) for r in f["first_row"]]}  # fmt: skip
        return manifest, tensors, member

    @classmethod
    def from_parts(cls, manifest: dict, tensors: dict[str, torch.Tensor], member: dict,
                   source: object = "the file") -> MultiFidelityDataset:  # fmt: skip
        """The dataset :meth:`to_parts` describes, features recomputed.

        Raises:
            SerializationError: the featurizer's version differs from the one that wrote it.
        """
        from mfgp.exceptions import SerializationError

        info = manifest["featurizer"]
        shared = _LOADING.get()
        settings = (info["preset"], bool(info["impute_nan"]))
        fz = shared.get(settings) if shared is not None else None
        if fz is None:
            fz = CompositionFeaturizer(info["preset"], impute_nan=info["impute_nan"])
            if shared is not None:
                shared[settings] = fz
        # version 2 of the presets changed last bits only (the order of the additions): a
        # file of version 1 loads, its features recomputed to within 1e-12
        if fz.version != info["version"] and fz.version != info["version"].replace("-v1-", "-v2-"):
            raise SerializationError(
                f"{source} was fitted on featurizer {info['version']!r}; this mfgp has "
                f"{fz.version!r}: refit the model"
            )
        comps = np.array(member["compositions"], dtype=object)
        fids = tuple(manifest["fidelities"])
        fid_index = tensors["fidelity_index"].numpy()
        frame = pd.DataFrame({
            "composition": comps[tensors["composition_index"].numpy()],
            "formula": member["formula"], "fidelity": [fids[i] for i in fid_index],
            "fidelity_index": fid_index, "value": tensors["value"].numpy(),
            "n_obs": tensors["n_obs"].numpy(), "noise": tensors["noise"].numpy(),
            "first_row": member["first_row"],
        })  # fmt: skip
        features = fz.transform(list(comps))
        return cls(frame, fids, comps, features, fz.feature_labels(), fz)

    def subset(self, rows: np.ndarray | Sequence[int]) -> MultiFidelityDataset:
        """A dataset of the chosen rows (features are reused, not recomputed)."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.with_frame(self.frame.iloc[rows])

    def with_frame(
        self, frame: pd.DataFrame, fidelities: Sequence[str] | None = None
    ) -> MultiFidelityDataset:
        """A dataset of other rows over this dataset's compositions (features reused).

        ``frame`` has the columns of :attr:`frame` (typically a filtered or re-valued copy of
        it, e.g. log-transformed values or 0/1 labels); ``fidelities`` renames or reorders the
        levels, and ``fidelity_index`` is recomputed from the names.
        """
        fids = tuple(self.fidelities if fidelities is None else fidelities)
        frame = frame.reset_index(drop=True).copy()
        unknown = sorted(set(frame["fidelity"]) - set(fids))
        if unknown:
            raise UnknownFidelityError(f"fidelity {unknown[0]!r} is not one of {list(fids)}")
        frame["fidelity_index"] = frame["fidelity"].map({f: i for i, f in enumerate(fids)})
        keep = frame["composition"].drop_duplicates().to_numpy()
        pos = {c: i for i, c in enumerate(self.compositions)}
        missing = [c for c in keep if c not in pos]
        if missing:
            raise InputDataError(f"composition {missing[0]!r} is not in this dataset")
        feats = self.features[[pos[c] for c in keep]]
        return MultiFidelityDataset(frame, fids, keep, feats, self.feature_labels, self.featurizer)

    def capped_rows(
        self,
        max_per_fidelity: int | None,
        seed: int = 0,
        keep_compositions: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Row indices keeping every row that carries transfer signal, and a sample of the rest.

        Kept: all target rows; every lower-fidelity row of a composition that also has a target
        value or is listed in ``keep_compositions`` (the compositions one will predict: their
        computed values inform the prediction; formulas in any writing, ``"NGa"`` keeps
        ``GaN``'s rows; one that does not parse has none); and at most ``max_per_fidelity``
        other rows of each lower fidelity, a seeded random sample. ``None`` keeps all rows.
        """
        if max_per_fidelity is None:
            return np.arange(self.n)
        fid = self.frame["fidelity_index"].to_numpy()
        top = len(self.fidelities) - 1
        target = set(self.frame["composition"].to_numpy()[fid == top])
        asked = parse_formulas(list(keep_compositions or ())).parsed
        target |= {p.reduced for p in asked if p is not None}
        shared = self.frame["composition"].isin(target).to_numpy()
        keep = [np.flatnonzero((fid == top) | shared)]
        rng = np.random.default_rng(seed)
        for level in range(top):
            rest = np.flatnonzero((fid == level) & ~shared)
            keep.append(rng.permutation(rest)[:max_per_fidelity])
        return np.sort(np.concatenate(keep))

    def summary(self) -> pd.DataFrame:
        """Per fidelity: rows, distinct compositions, mean/std/min/max of the value."""
        g = self.frame.groupby("fidelity")["value"]
        out = pd.DataFrame(
            {
                "rows": g.size(),
                "mean": g.mean(),
                "std": g.std(),
                "min": g.min(),
                "max": g.max(),
                "zeros": g.agg(lambda v: int((v == 0).sum())),
            }
        ).reindex(list(self.fidelities))
        out.index.name = "fidelity"
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return (
            f"MultiFidelityDataset({counts}; {len(self.compositions)} compositions, "
            f"{self.features.shape[1]} features, target={self.target!r})"
        )

    def __len__(self) -> int:
        return self.n

