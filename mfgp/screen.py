"""Screening a large pool with a fitted model: stream chunks, score, keep the best.

:func:`screen` takes chunks of formulas (a list, a Series, or the chunks of
:func:`mfgp.candidates.enumerate_compositions`), and for each batch featurizes, predicts the
marginals (each composition's own known lower-fidelity values used, as every prediction
does), scores, and merges the batch's best into a running top-k; with ``output=`` every row
is also written to Parquet (atomically: the file appears complete or not at all). Memory holds
one batch and the top-k, whatever the pool's size; results do not depend on ``batch_size``.

Example:
    >>> chunks = enumerate_compositions(["Li", "Na", "O", "S", "Cl"])  # doctest: +SKIP
    >>> best = screen(reg, chunks, score="window", window=(1.1, 1.7), top_k=20)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from mfgp.exceptions import InputDataError

__all__ = ["SCORES", "screen"]

#: score names: "mean" (the predicted value, ``maximize=False`` for the lowest), "std"
#: (the most uncertain), "window" (``P(lo <= y <= hi)``, a hurdle's point mass counted)
SCORES = ("mean", "std", "window")


def _batches(candidates, batch_size: int) -> Iterator[list[str]]:
    """Lists of at most ``batch_size`` formulas from formulas or chunks of formulas."""
    if isinstance(candidates, pd.DataFrame):
        if "formula" not in candidates:
            raise InputDataError("a DataFrame of candidates needs a 'formula' column")
        candidates = candidates["formula"]
    if isinstance(candidates, (str, bytes)):
        raise InputDataError("candidates must be formulas or chunks of formulas, not one string")
    buf: list[str] = []
    for item in candidates:
        rows = [item] if isinstance(item, str) else [str(f) for f in item]
        buf.extend(rows)
        while len(buf) >= batch_size:
            yield buf[:batch_size]
            buf = buf[batch_size:]
    if buf:
        yield buf


def _scores(pred, score, maximize: bool, window) -> np.ndarray:
    if callable(score):
        return np.asarray(score(pred), dtype=np.float64)
    if score == "mean":
        return pred.mean() if maximize else -pred.mean()
    if score == "std":
        return pred.std()
    return pred.probability_between(*window)


def screen(
    model,
    candidates: Iterable,
    *,
    score: str | Callable = "mean",
    top_k: int = 1000,
    maximize: bool = True,
    window: tuple[float, float] | None = None,
    fidelity: str | None = None,
    level: float = 0.9,
    batch_size: int = 4096,
    output: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every candidate with a fitted estimator and return the ``top_k`` best.

    Args:
        model: a fitted :class:`~mfgp.MultiFidelityRegressor` or :class:`~mfgp.HurdleRegressor`,
            or the path of one saved with ``.save()``.
        candidates: formulas, a frame with ``formula``, or an iterable of chunks of them.
        score: ``"mean"``, ``"std"``, ``"window"`` (needs ``window=(lo, hi)``) or a callable
            ``predictive -> scores`` (higher is better).
        top_k: how many rows to return.
        maximize: for ``"mean"``: the highest values first (``False``: the lowest).
        window: ``(lo, hi)`` of the ``"window"`` score.
        fidelity: the fidelity predicted (a regressor's; default: the target).
        level: probability of the returned central intervals.
        batch_size: formulas per prediction call.
        output: also write every scored row to this Parquet file.
        progress: show a progress bar.

    Returns:
        The best rows, best first: ``rank, formula, score, mean, std, lower_<p>, upper_<p>``
        (and ``p_zero``, a hurdle's probability of a zero).
    """
    from tqdm.auto import tqdm

    from mfgp.estimators import MultiFidelityRegressor, _interval_level, load_estimator

    if isinstance(model, (str, os.PathLike)):
        model = load_estimator(model)
    if not callable(score) and score not in SCORES:
        raise InputDataError(f"score must be one of {list(SCORES)} or a callable; got {score!r}")
    if score == "window" and (window is None or not window[0] < window[1]):
        raise InputDataError(f"score='window' needs window=(lo, hi) with lo < hi; got {window!r}")
    if top_k < 1 or batch_size < 1:
        raise InputDataError(f"top_k and batch_size must be >= 1; got {top_k}, {batch_size}")
    level = _interval_level(level)
    kw = {"fidelity": fidelity} if isinstance(model, MultiFidelityRegressor) else {}
    if fidelity is not None and not kw:
        raise InputDataError(f"fidelity= applies to a MultiFidelityRegressor, not a "
                             f"{type(model).__name__}")  # fmt: skip
    best: pd.DataFrame | None = None
    writer = tmp = None
    seen = 0
    bar = tqdm(desc="screen", unit=" formulas", disable=not progress)
    try:
        for batch in _batches(candidates, batch_size):
            pred = model.predictive(batch, **kw)
            frame = pd.DataFrame({"formula": batch,
                                  "score": _scores(pred, score, maximize, window),
                                  **pred.table(level)})  # fmt: skip
            frame.insert(0, "order", np.arange(seen, seen + len(batch)))
            seen += len(batch)
            if output is not None:
                writer, tmp = _write(frame, output, writer, tmp)
            keep = frame.nlargest(min(top_k, len(frame)), "score", keep="first")
            best = keep if best is None else pd.concat([best, keep], ignore_index=True)
            # ties go to the earlier candidate, whatever the batches
            best = best.sort_values(["score", "order"], ascending=[False, True]).head(top_k)
            bar.update(len(batch))
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, output)
            tmp = None
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink()
    if best is None:
        raise InputDataError("no candidates to screen")
    out = best.drop(columns="order").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _write(frame: pd.DataFrame, output, writer, tmp):
    """Append ``frame`` to a Parquet file being written next to ``output``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise InputDataError("output= writes Parquet, which needs pyarrow: "
                             "pip install 'mfgp[parquet]'") from err  # fmt: skip

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        target = Path(output)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        writer = pq.ParquetWriter(tmp, table.schema)
    writer.write_table(table)
    return writer, tmp
