"""Screening a large pool with a fitted model: stream chunks, score, keep the best.

:func:`screen` takes chunks of formulas (a list, a Series, or the chunks of
:func:`mfgp.candidates.enumerate_compositions`), and for each batch featurizes, predicts the
marginals (each composition's own known lower-fidelity values used, as every prediction
does), scores, and merges the batch's best into a running top-k; with ``output=`` every row
is also written to Parquet (atomically: the file appears complete or not at all). Memory holds
one batch and the top-k, whatever the pool's size (candidates' parses and features are not
memoised: :func:`mfgp.featurize.streaming`); results do not depend on ``batch_size``.

With ``client=`` (a ``dask.distributed.Client``) the batches, or the partitions of a Dask
DataFrame of formulas, are featurized and scored on the workers: the model travels once as its
saved bytes (:func:`mfgp.estimators.estimator_to_bytes`: the format of ``save``, no pickle)
and is loaded once per worker, each task returns its batch's top-k, and the client merges them.
A task whose worker dies is rerun elsewhere (``retries``); the result is the local call's.

Variances: ``variances="auto"`` (the default) scores with fast, low-rank predictive variances
(:mod:`mfgp.fastvar`) when the estimator's largest GP has at least 2,048 training rows and the
pool at least 20,480 candidates (below that the cache costs a one-off screen more than it
saves) or is a stream of unknown length, and with exact ones otherwise;
the choice is made once for the whole pool, so a candidate's score does not depend on the
batch it is scored in. Means are exact either way. A fast screen keeps the best
``refine x top_k`` rows by the fast score and rescores them with exact variances before it
picks the ``top_k`` (:data:`DEFAULT_REFINE`): the returned rows and their numbers are those of
an exact screen of the rows the fast pass kept, at the cost of an exact prediction of a few
thousand. The screen reuses its large freed blocks instead of mapping them afresh
(:mod:`mfgp._alloc`).

Example:
    >>> chunks = enumerate_compositions(["Li", "Na", "O", "S", "Cl"])  # doctest: +SKIP
    >>> best = screen(reg, chunks, score="window", window=(1.1, 1.7), top_k=20)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from mfgp._alloc import reuse_large_blocks
from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.exceptions import InputDataError
from mfgp.featurize.composition import batch_parses, streaming

__all__ = ["DEFAULT_REFINE", "SCORES", "screen"]

#: a fast screen rescores its best ``DEFAULT_REFINE x top_k`` rows with exact variances.
#: Chosen on a development pool (``benchmarks/diag_screen_refine.py``: rows after the ones
#: ``bench_screen`` reports, the ready-made band-gap hurdle, window score)
DEFAULT_REFINE = 4.0

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


def _pool_size(candidates) -> int | None:
    """How many formulas ``candidates`` holds, where that is known without consuming it."""
    if isinstance(candidates, (pd.DataFrame, pd.Series)):
        return len(candidates)
    if isinstance(candidates, (list, tuple)):
        if all(isinstance(c, str) for c in candidates):
            return len(candidates)
        if all(hasattr(c, "__len__") and not isinstance(c, str) for c in candidates):
            return sum(len(c) for c in candidates)
    return None


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
    client=None,
    retries: int = 3,
    variances: str = "auto",
    refine: float | None = DEFAULT_REFINE,
) -> pd.DataFrame:
    """Score every candidate with a fitted estimator and return the ``top_k`` best.

    Args:
        model: a fitted :class:`~mfgp.MultiFidelityRegressor` or :class:`~mfgp.HurdleRegressor`,
            or the path of one saved with ``.save()``.
        candidates: formulas, a frame with ``formula``, or an iterable of chunks of them (with
            ``client``, also a Dask DataFrame with ``formula`` or a Dask Series).
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
        client: a ``dask.distributed.Client``: score on its workers (``candidates`` may then
            also be a Dask DataFrame or Series of formulas, scored partition by partition
            where it lives). With ``output=`` every row comes back to the client to be written.
        retries: with ``client``, how often a failed task (a worker lost mid-batch) is rerun.
        variances: ``"exact"``, ``"fast"`` (a low-rank cache of each GP's inverse training
            covariance, built once per model: never below the exact variance, about
            ``training rows x rank`` flops a candidate instead of ``training rows^2``;
            :mod:`mfgp.fastvar`) or ``"auto"`` (fast for a model of at least
            :data:`~mfgp.fastvar.AUTO_MIN_ROWS` training rows and a pool of at least
            :data:`~mfgp.fastvar.AUTO_MIN_QUERIES_ONE_OFF` candidates or of unknown length, and more
            than ``refine * top_k``; with ``refine=None`` or ``score="std"`` also only where the
            cache's estimated error is at most :data:`~mfgp.fastvar.AUTO_MAX_ERROR`: the fast
            scores are then final, or a fast ranking by std is led by the cache's worst rows).
            The rank
            is that of an enclosing :func:`mfgp.fastvar.fast_variances` block, else
            :data:`~mfgp.fastvar.DEFAULT_RANK`.
        refine: with fast variances, the best ``ceil(refine * top_k)`` rows by the fast score
            are rescored with exact variances, and the ``top_k`` are picked by the exact
            score: fast variances only decide which rows reach the exact pass. Every number
            returned is then exact (``output=`` keeps each row's fast score). ``None``: the
            fast scores decide. Ignored with exact variances.

    Returns:
        The best rows, best first: ``rank, formula, score, mean, std, lower_<p>, upper_<p>``
        (and ``p_zero``, a hurdle's probability of a zero).
    """
    from mfgp.estimators import MultiFidelityRegressor, _interval_level, load_estimator
    from mfgp.fastvar import DEFAULT_RANK, estimator_training_rows, fast_rank, resolve_variances

    if isinstance(model, (str, os.PathLike)):
        model = load_estimator(model)
    if not callable(score) and score not in SCORES:
        raise InputDataError(f"score must be one of {list(SCORES)} or a callable; got {score!r}")
    if score == "window" and (window is None or not window[0] < window[1]):
        raise InputDataError(f"score='window' needs window=(lo, hi) with lo < hi; got {window!r}")
    if top_k < 1 or batch_size < 1:
        raise InputDataError(f"top_k and batch_size must be >= 1; got {top_k}, {batch_size}")
    if refine is not None and (isinstance(refine, bool) or not isinstance(refine, numbers.Real)
                               or not 1 <= refine < math.inf):  # fmt: skip
        raise InputDataError(f"refine must be None (the fast scores decide) or a finite number "
                             f">= 1 (rows rescored exactly, as a multiple of top_k); got "
                             f"{refine!r}")  # fmt: skip
    level = _interval_level(level)
    kw = {"fidelity": fidelity} if isinstance(model, MultiFidelityRegressor) else {}
    if fidelity is not None and not kw:
        raise InputDataError(f"fidelity= applies to a MultiFidelityRegressor, not a "
                             f"{type(model).__name__}")  # fmt: skip
    # with an exact pass over the kept rows, the cache only decides which rows reach it: "auto"
    # then needs the size rule only, except for score="std", whose fast ranking is led by the
    # rows where the cache is worst (it only overestimates); and a pool no larger than the
    # rows kept is scored exactly at once
    pool = _pool_size(candidates)
    checked = refine is None or score == "std"
    mode = resolve_variances(variances, estimator_training_rows(model), pool,
                             model if checked else None)  # fmt: skip
    if (mode == "fast" and variances == "auto" and refine is not None and pool is not None
            and pool <= refine * top_k):  # fmt: skip
        mode = "exact"
    opts = {"score": score, "maximize": maximize, "window": window, "level": level, "kw": kw,
            "variances": mode, "rank": fast_rank() or DEFAULT_RANK}  # fmt: skip
    logger.debug("screen: %s variances", mode)
    rescore = mode == "fast" and refine is not None
    keep = int(np.ceil(refine * top_k)) if rescore else top_k
    with contextlib.ExitStack() as heap:
        if client is None:  # the scoring runs in this process: reuse its large blocks
            heap.enter_context(reuse_large_blocks())
        best = _scan(model, candidates, batch_size, opts, keep, output, client, retries,
                     progress)  # fmt: skip
        if best is not None and rescore:
            best = _rescore_exact(model, best, batch_size, opts, top_k, progress)
    if best is None:
        raise InputDataError("no candidates to screen")
    out = best.drop(columns="order").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _scan(model, candidates, batch_size: int, opts: dict, keep: int, output, client,
          retries: int, progress: bool) -> pd.DataFrame | None:  # fmt: skip
    """Score every candidate; the best ``keep`` rows (``None`` for an empty pool)."""
    best: pd.DataFrame | None = None
    writer = tmp = None
    bar = progress_bar(progress=progress, desc="screen", unit=" formulas")
    try:
        if client is None:
            frames = _local_frames(model, candidates, batch_size, opts)
        else:
            frames = _dask_frames(client, model, candidates, batch_size, opts,
                                  None if output is not None else keep, retries)  # fmt: skip
        for frame, n in frames:
            if output is not None:
                writer, tmp = _write(frame, output, writer, tmp)
            best = _merge(best, frame, keep)
            bar.update(n)
            logger.debug("screen: %d more candidates scored", n)
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
    return best


def _score_batch(model, batch: list[str], order: np.ndarray, opts: dict) -> pd.DataFrame:
    """One batch scored: ``order, formula, score`` and the predictive's table.

    Inside :func:`mfgp.featurize.streaming`: candidates are seen once, so memoising their
    parses and features would only grow memory with the pool; each is parsed once for the
    whole estimator within the batch (:func:`mfgp.featurize.composition.batch_parses`).
    """
    from mfgp.fastvar import variances_mode

    with streaming(), batch_parses(), variances_mode(opts.get("variances"), opts.get("rank")):
        pred = model.predictive(batch, **opts["kw"])
    frame = pd.DataFrame({"formula": batch,
                          "score": _scores(pred, opts["score"], opts["maximize"], opts["window"]),
                          **pred.table(opts["level"])})  # fmt: skip
    frame.insert(0, "order", order)
    return frame


def _rescore_exact(model, best: pd.DataFrame, batch_size: int, opts: dict, top_k: int,
                   progress: bool) -> pd.DataFrame:  # fmt: skip
    """The ``top_k`` of ``best`` (a fast screen's kept rows) by their exact scores."""
    exact = {**opts, "variances": "exact"}
    formulas, order = best["formula"].tolist(), best["order"].to_numpy()
    out = None
    bar = progress_bar(progress=progress, desc="screen: exact rescoring", unit=" formulas",
                       total=len(formulas))  # fmt: skip
    try:
        for lo in range(0, len(formulas), batch_size):
            frame = _score_batch(model, formulas[lo: lo + batch_size], order[lo: lo + batch_size],
                                 exact)  # fmt: skip
            out = _merge(out, frame, top_k)
            bar.update(len(frame))
    finally:
        bar.close()
    logger.debug("screen: %d rows rescored with exact variances", len(formulas))
    return out


def _top(frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The ``top_k`` best rows, ties to the earlier candidate (the lower ``order``)."""
    return frame.sort_values(["score", "order"], ascending=[False, True]).head(top_k)


def _merge(best: pd.DataFrame | None, frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    keep = _top(frame, top_k)
    return keep if best is None else _top(pd.concat([best, keep], ignore_index=True), top_k)


def _local_frames(model, candidates, batch_size: int, opts: dict):
    seen = 0
    for batch in _batches(candidates, batch_size):
        yield _score_batch(model, batch, np.arange(seen, seen + len(batch)), opts), len(batch)
        seen += len(batch)


# -- Dask --------------------------------------------------------------------------------------
#: the estimator each worker process loaded, by the digest of its saved bytes (one at a time)
_WORKER_MODELS: dict[str, object] = {}
#: ``order`` of row ``r`` of partition ``i`` of a Dask collection: ``i * _PART + r``
_PART = 2**40


def _worker_model(blob: bytes, digest: str):
    model = _WORKER_MODELS.get(digest)
    if model is None:
        from mfgp.estimators import estimator_from_bytes

        model = estimator_from_bytes(blob)
        _WORKER_MODELS.clear()
        _WORKER_MODELS[digest] = model
    return model


def _remote_batch(blob, digest, batch, start, opts, top_k):
    with reuse_large_blocks():
        frame = _score_batch(_worker_model(blob, digest), batch,
                             np.arange(start, start + len(batch)), opts)  # fmt: skip
    return (frame if top_k is None else _top(frame, top_k)), len(batch)


def _remote_partition(blob, digest, part, index, batch_size, opts, top_k):
    """Score one partition of a Dask collection of formulas, batch by batch, on its worker."""
    formulas = _formulas_of(part)
    best, parts = None, []
    model = _worker_model(blob, digest)
    with reuse_large_blocks():
        for lo in range(0, len(formulas), batch_size):
            batch = formulas[lo: lo + batch_size]
            frame = _score_batch(model, batch, index * _PART + np.arange(lo, lo + len(batch)),
                                 opts)  # fmt: skip
            if top_k is None:
                parts.append(frame)
            else:
                best = _merge(best, frame, top_k)
    if top_k is None:
        best = pd.concat(parts, ignore_index=True) if parts else None
    return best, len(formulas)


def _formulas_of(part) -> list[str]:
    if isinstance(part, pd.DataFrame):
        if "formula" not in part:
            raise InputDataError("a DataFrame of candidates needs a 'formula' column")
        part = part["formula"]
    return [str(f) for f in part]


def _dask_frames(client, model, candidates, batch_size: int, opts: dict, top_k, retries: int):
    """Frames (and row counts) scored on the workers, as they finish; a bounded number in flight."""
    import hashlib
    from concurrent.futures import CancelledError

    from distributed import as_completed

    from mfgp.estimators import estimator_to_bytes

    blob = estimator_to_bytes(model)
    digest = hashlib.sha256(blob).hexdigest()
    state = {"blob": client.scatter(blob, broadcast=True, hash=False)}
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    limit = 2 * workers
    done = as_completed()
    jobs: dict[str, tuple] = {}  # future key -> (function, arguments after the blob, tries left)

    def submit(fn, args, tries: int) -> None:
        fut = client.submit(fn, state["blob"], digest, *args, pure=False, retries=retries)
        jobs[fut.key] = (fn, args, tries)
        done.add(fut)

    def drain(until: int):
        while done.count() > until:
            fut = next(done)
            fn, args, tries = jobs.pop(fut.key)
            try:
                frame, n = fut.result()
            except CancelledError:
                # a task the scheduler forgot while a worker died (its scattered model went
                # with it): scatter the model again and resubmit the same batch
                if tries <= 0:
                    raise
                state["blob"] = client.scatter(blob, broadcast=True, hash=False)
                submit(fn, args, tries - 1)
                continue
            fut.release()
            if frame is not None:
                yield frame, n

    if hasattr(candidates, "to_delayed") and hasattr(candidates, "npartitions"):
        for i, part in enumerate(candidates.to_delayed()):
            submit(_remote_partition, (client.compute(part), i, batch_size, opts, top_k), retries)
            yield from drain(limit - 1)
    else:
        seen = 0
        for batch in _batches(candidates, batch_size):
            submit(_remote_batch, (batch, seen, opts, top_k), retries)
            seen += len(batch)
            yield from drain(limit - 1)
    yield from drain(0)


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


class _CallableModule(types.ModuleType):
    """``mfgp.screen`` names both this module and its function :func:`screen`.

    ``mfgp.screen(...)`` resolves lazily to the function, but once anything imports the module
    ``mfgp.screen``, Python's import system sets the package attribute to the module. Calling
    the module calls the function, so ``mfgp.screen(reg, chunks, ...)`` works either way.
    """

    def __call__(self, *args, **kwargs) -> pd.DataFrame:
        return screen(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
