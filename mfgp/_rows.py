"""Finding rows of one tensor in another: the one row matcher of the package (torch only).

Used where a value is keyed by composition: the dataset's :meth:`observed_at` and the observed
latents of :class:`~mfgp.models.ExplicitLatentGP`. Both match *raw featurizer output*, a
deterministic float64 function of the reduced composition (the same composition featurized in
another batch agrees to the last bits), never the output of a learned extractor, which in
float32 differs by ~1e-7 between batch sizes.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["distinct_means", "lookup", "match_rows"]


def match_rows(table: Tensor, queries: Tensor, rtol: float = 1e-9) -> Tensor:
    """For each query row, the index of a table row equal to it within tolerance, else -1.

    Rows match when every column agrees to ``rtol`` times that column's largest magnitude in the
    table. Candidates are found by sorting a fixed random projection (``O((n + m) log n)``),
    then checked column by column; the work stays on the tensors' device.

    Args:
        table: ``n x d`` rows to look in.
        queries: ``m x d`` rows to look up.
        rtol: tolerance relative to each column's scale.

    Returns:
        ``m`` int64 indices into ``table`` (the first matching row), ``-1`` where none matches.

    Example:
        >>> t = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
        >>> match_rows(t, torch.tensor([[2.0, 3.0], [5.0, 5.0]], dtype=torch.float64)).tolist()
        [1, -1]
    """
    m = queries.shape[0]
    out = torch.full((m,), -1, dtype=torch.long, device=queries.device)
    n = table.shape[0]
    if n == 0 or m == 0:
        return out
    table = table.to(device=queries.device, dtype=torch.float64)
    queries = queries.to(torch.float64)
    scale = table.abs().amax(0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    A, Q = table / scale, queries / scale
    g = torch.Generator().manual_seed(0)
    w = torch.randn(A.shape[1], generator=g, dtype=torch.float64).to(A.device)
    proj = A @ w
    sorted_proj, order = torch.sort(proj)
    qp = Q @ w
    tol = rtol * float(w.abs().sum())
    lo = torch.searchsorted(sorted_proj, qp - tol, side="left")
    hi = torch.searchsorted(sorted_proj, qp + tol, side="right")
    width = hi - lo
    for k in range(int(width.max()) if m else 0):
        open_ = (k < width) & (out < 0)
        if not bool(open_.any()):
            break
        cand = order[(lo + k).clamp(max=n - 1)]
        ok = open_ & ((A[cand] - Q).abs().amax(-1) <= rtol)
        out = torch.where(ok, cand, out)
    return out


def distinct_means(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct rows of ``X`` and the mean of ``y`` over each one's repeats.

    The table of an observed value keyed by composition: ``X`` holds raw featurizer rows
    (``n x d``), ``y`` one value per row.
    """
    rows, inverse = torch.unique(X.detach(), dim=0, return_inverse=True)
    y = y.detach().reshape(-1)
    sums = torch.zeros(rows.shape[0], dtype=y.dtype, device=y.device).index_add_(0, inverse, y)
    counts = torch.bincount(inverse, minlength=rows.shape[0]).to(y.dtype)
    return rows, sums / counts


def lookup(table: Tensor, values: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
    """``(known, value)`` of each query row in a table of keyed values (:func:`distinct_means`).

    Args:
        table: ``n x d`` key rows.
        values: ``n`` values, one per key row.
        queries: ``... x d`` rows to look up.

    Returns:
        ``known`` (bool) and ``value`` (0 where unknown), both shaped ``queries.shape[:-1]``, on
        the queries' device, ``value`` in the values' dtype.
    """
    flat = queries.detach().reshape(-1, queries.shape[-1])
    match = match_rows(table, flat)
    vals = values.to(flat.device)[match.clamp(min=0)] if table.shape[0] else flat.new_zeros(
        flat.shape[0], dtype=values.dtype)
    known = match >= 0
    vals = torch.where(known, vals, torch.zeros_like(vals))
    shape = queries.shape[:-1]
    return known.reshape(shape), vals.reshape(shape)
