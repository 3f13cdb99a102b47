"""Fast predictive variances: a low-rank cache of the inverse training covariance.

An exact posterior variance against ``n`` training rows costs a triangular solve, ``n^2``
flops per query row. Screening a million candidates with a model of several thousand rows is
dominated by it. Inside :func:`fast_variances`, mfgp's exact GPs
(:class:`~mfgp.models.base.CholeskyPosteriorMixin`) replace ``K^-1`` in the variance by a
Galerkin approximation on a ``rank``-dimensional subspace ``Q``::

    K^-1  ~  Q (Q^T K Q)^-1 Q^T  =  R R^T,      var(x) ~ k(x, x) - |R^T k(X, x)|^2

so a query row costs ``n * rank`` flops (a matrix product, no solve). Means stay exact
(``k(X, x)^T alpha``, ``O(n)`` a row once the kernel row is evaluated).

The subspace: the dominant eigenvectors of the noise-whitened training covariance
``Lambda^-1/2 K Lambda^-1/2`` (``Lambda``: each training row's noise variance), found by a
randomized range finder with one power iteration applied through the cached Cholesky factor
(``K = L L^T``; no kernel matrix is evaluated again). Its start block comes from a fixed seed,
on the CPU in float64, so the cache is a deterministic function of the fitted model: a
prediction does not depend on the batch it is asked in, nor on the device's random stream.
Costs, once per fitted model (recomputed when a parameter, buffer or training row changes;
cached on the model object, never saved with it): five ``n x n x rank`` triangular products
and ``O(n rank^2)``; memory ``2 n rank`` floats.

Accuracy. The approximation only removes variance reduction (a Galerkin projection gives
``k^T R R^T k <= k^T K^-1 k``), so fast variances are never below the exact ones (up to
rounding): screening errs on the side of uncertainty. If ``Q`` spans the top ``rank``
eigenvectors of the whitened noise-free covariance exactly, the relative overestimate of every
variance is at most that matrix's ``(rank + 1)``-th eigenvalue ``s``; :attr:`LowRankInverse.tail`
estimates it (the smallest Ritz value less one), and ``docs/screening.md`` reports the measured
errors.

GPyTorch's own LOVE (``gpytorch.settings.fast_pred_var``) is not used: its cache is built from
the first test batch's cross-covariance (so a prediction depends on which batch came first),
its Lanczos start is random, and it runs through the prediction strategy that mfgp's cached
Cholesky path replaces.

Example:
    >>> with fast_variances():  # doctest: +SKIP
    ...     mean, var = predict_marginals(model, X)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from mfgp.exceptions import InputDataError

__all__ = [
    "AUTO_MAX_ERROR",
    "AUTO_MIN_QUERIES",
    "AUTO_MIN_QUERIES_ONE_OFF",
    "AUTO_MIN_ROWS",
    "DEFAULT_RANK",
    "VARIANCES",
    "LowRankInverse",
    "estimated_error",
    "estimator_training_rows",
    "extend_low_rank_inverse",
    "fast_rank",
    "fast_variances",
    "low_rank_inverse",
    "resolve_variances",
    "truncated",
    "variances_mode",
]

#: the ``variances=`` choices of :func:`mfgp.screen`, the CLI and pool scoring
VARIANCES = ("exact", "fast", "auto")
#: default rank of the low-rank cache
DEFAULT_RANK = 512
#: ``"auto"`` is fast when the largest training set has at least this many rows (``4 x rank``:
#: a fast query row then costs at most about a quarter of an exact one) ...
AUTO_MIN_ROWS = 4 * DEFAULT_RANK
#: ... and at least this many rows are asked in the call (or their number is unknown), where
#: the cache may be reused after the call (a campaign's pool scoring: a campaign that suggests
#: again before it refits, ``refit_every > 1`` or a repeated ``suggest``, reuses it, and
#: conditioning extends it; refitted every round it is about break-even): the cache costs
#: about as much as ``3 x rank`` exact query rows of the pool pass
AUTO_MIN_QUERIES = 4 * DEFAULT_RANK
#: ... or, for a call that builds the cache for itself alone (a screen, a prediction), this
#: many: a screen end to end pays the cache, its error check and the exact rescoring of its
#: best rows, and was measured slower with fast variances at 5,000 and 10,000 candidates,
#: about level at 20,000 (0.96 of the exact time) and faster at 40,000 (0.70)
#: (``benchmarks/results/diag_screen_crossover.md``: the full-data hurdle at rank 512 with a
#: top 1,000, candidates not in ``bench_screen``'s pool). The cache costs about ``n^2 rank``
#: flops and an exact query row ``n^2``, so the crossover depends on the rank (and, for a
#: screen, on ``refine x top_k``) more than on the model's size; one model was measured, and
#: the threshold does not scale with a ``rank`` asked for.
AUTO_MIN_QUERIES_ONE_OFF = 40 * DEFAULT_RANK
#: ... and the caches' estimated relative error (:attr:`LowRankInverse.tail`) is at most this
AUTO_MAX_ERROR = 0.05
#: the seed of the range finder's start block (the cache is a function of the model only)
SEED = 0

_RANK: contextvars.ContextVar[int | None] = contextvars.ContextVar("mfgp_fast_rank",
                                                                   default=None)  # fmt: skip


def fast_rank() -> int | None:
    """The rank of fast variances in effect here, or ``None`` (exact variances)."""
    return _RANK.get()


@contextlib.contextmanager
def fast_variances(on: bool = True, *, rank: int = DEFAULT_RANK) -> Iterator[None]:
    """Use fast (low-rank) predictive variances inside the block (``on=False``: exact ones).

    Applies to every posterior of mfgp's exact GPs computed inside the block (their joint
    covariances too, so the per-composition conditioning of
    :func:`~mfgp.predict.predict_marginals` and greedy pool updates stay consistent); means
    are exact either way. A GP with at most ``rank`` training rows keeps exact variances
    (the cache would span its whole space). Thread- and task-local (a context variable).

    Args:
        on: fast variances (``False``: exact, e.g. to override an enclosing block).
        rank: the rank of the cache (larger: closer to exact, slower).

    Example:
        >>> with fast_variances(rank=256):  # doctest: +SKIP
        ...     best = screen(reg, chunks, score="std")
    """
    if on and (not isinstance(rank, int) or rank < 1):
        raise InputDataError(f"rank must be an integer >= 1; got {rank!r}")
    token = _RANK.set(int(rank) if on else None)
    try:
        yield
    finally:
        _RANK.reset(token)


def resolve_variances(variances: str, training_rows: int, queries: int | None,
                      model=None, rank: int | None = None, *,
                      reused: bool = False) -> str:  # fmt: skip
    """``"exact"`` or ``"fast"`` for a ``variances=`` choice (``"auto"`` by its rule).

    ``"auto"`` is ``"fast"`` when ``training_rows >= AUTO_MIN_ROWS`` (2,048), the call asks
    enough rows to pay for the cache (``queries >= AUTO_MIN_QUERIES_ONE_OFF``, 20,480, or, where
    the cache is ``reused`` after the call, ``AUTO_MIN_QUERIES``, 2,048) or ``queries`` is
    ``None`` (a stream of unknown length), and, given ``model``, the estimated relative error of
    its caches (:func:`estimated_error`, which builds them) is at most ``AUTO_MAX_ERROR`` (5%);
    otherwise ``"exact"``. Decide once per call (the whole pool), never per batch, so that a
    row's prediction does not depend on the batch it is asked in (every input of the rule is a
    function of the model, the pool's size and the caller, never of whether a cache happens to
    exist already).

    Args:
        variances: ``"exact"``, ``"fast"`` or ``"auto"``.
        training_rows: the largest training set among the model's GPs.
        queries: how many rows will be asked, or ``None`` if unknown.
        model: the model or estimator, for the error check (``None``: the size rule only).
        rank: the rank the fast variances will use (the one checked; default as in
            :func:`estimated_error`).
        reused: the cache may serve later calls too (a campaign's pool scoring: a campaign
            that suggests again before it refits reuses it), so it pays from
            ``AUTO_MIN_QUERIES`` rows; ``False`` (a screen, a prediction): from
            ``AUTO_MIN_QUERIES_ONE_OFF``.
    """
    if variances not in VARIANCES:
        raise InputDataError(
            f"variances must be one of {list(VARIANCES)}; got {variances!r}"
        )
    if variances != "auto":
        return variances
    large_pool = queries is None or queries >= (AUTO_MIN_QUERIES if reused
                                                else AUTO_MIN_QUERIES_ONE_OFF)  # fmt: skip
    if training_rows < AUTO_MIN_ROWS or not large_pool:
        return "exact"
    if model is not None and estimated_error(model, rank) > AUTO_MAX_ERROR:
        return "exact"
    return "fast"


def _gps(obj) -> list:
    """The exact GPs of mfgp inside a model or an estimator (a hurdle's parts and latent GP)."""
    out, seen, todo = [], set(), [obj]
    while todo:
        o = todo.pop()
        if o is None or id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, torch.nn.Module):
            out.extend(m for m in o.modules() if hasattr(m, "_fast_inverse"))
            continue
        for name in ("model_", "regressor_", "classifier_", "latent_", "latent"):
            todo.append(getattr(o, name, None))
    return out


def estimated_error(model, rank: int | None = None) -> float:
    """The largest estimated relative variance error of a model's low-rank caches.

    Builds (and keeps) the cache of each of the model's exact GPs with more than ``rank``
    training rows and returns the largest :attr:`LowRankInverse.tail` (0 when none needs a
    cache). On the models tested it was above the largest measured error (``docs/screening.md``),
    but it is an estimate, not a bound.

    Args:
        model: a model or an estimator.
        rank: default the enclosing :func:`fast_variances` block's, else :data:`DEFAULT_RANK`.
    """
    rank = rank or fast_rank() or DEFAULT_RANK
    worst = 0.0
    with fast_variances(rank=rank):
        for gp in _gps(model):
            gp.eval()
            cache = gp._fast_inverse()
            if cache is not None:
                worst = max(worst, cache.tail)
    return worst


def variances_mode(variances: str | None, rank: int | None = None):
    """The context manager of a resolved choice: ``"fast"``, ``"exact"``, or ``None`` (as set).

    ``rank``: of ``"fast"`` (default: the enclosing block's, else :data:`DEFAULT_RANK`).
    """
    if variances is None:
        return contextlib.nullcontext()
    if variances not in ("exact", "fast"):
        raise InputDataError(
            f"resolve 'auto' first (resolve_variances); got variances={variances!r}"
        )
    rank = rank if rank is not None else (fast_rank() or DEFAULT_RANK)
    return fast_variances(variances == "fast", rank=rank)


def estimator_training_rows(estimator) -> int:
    """The largest training set among an estimator's GPs (a hurdle's parts and latent GP too)."""
    return max([1] + [int(gp.train_targets.shape[-1]) for gp in _gps(estimator)
                      if isinstance(getattr(gp, "train_targets", None), Tensor)])


class LowRankInverse(NamedTuple):
    """``K^-1 ~ R R^T``, a Galerkin approximation on the span of ``Q`` (see the module).

    Attributes:
        Q: ``n x rank`` the subspace's basis (original coordinates).
        R: ``n x rank``, ``Q L_T^-T`` with ``L_T = chol(Q^T K Q)``.
        L_T: ``rank x rank`` that factor.
        tail: estimated relative overestimate of the variances (the smallest Ritz value of the
            whitened noise-free covariance on the subspace; an estimate, not a bound).
        base: the leading columns that come from the range finder; the rest are the
            coordinates of rows a conditioned copy added (:func:`extend_low_rank_inverse`).
    """

    Q: Tensor
    R: Tensor
    L_T: Tensor
    tail: float
    base: int


@torch.no_grad()
def low_rank_inverse(L: Tensor, noise: Tensor, rank: int, *, power_iterations: int = 1
                     ) -> LowRankInverse:  # fmt: skip
    """The low-rank cache of ``K^-1`` from the Cholesky factor ``L`` of ``K`` (``n x n``).

    Computed in float64 whatever ``L``'s dtype (returned in ``L``'s dtype and device), from a
    start block drawn on the CPU with a fixed seed: the same model gives the same cache.

    Args:
        L: lower Cholesky factor of the noisy training covariance ``K``.
        noise: ``n`` the noise variance of each training row (``diag(K)`` less the kernel's).
        rank: the subspace's dimension (``< n``).
        power_iterations: power iterations of the range finder (each costs two
            ``n x n x rank`` triangular products).

    Example:
        >>> A = torch.randn(50, 50, dtype=torch.float64)
        >>> K = A @ A.T + torch.eye(50, dtype=torch.float64)
        >>> c = low_rank_inverse(torch.linalg.cholesky(K), torch.ones(50, dtype=torch.float64), 49)
        >>> c.R.shape
        torch.Size([50, 49])
    """
    n = L.shape[-1]
    if not 1 <= rank < n:
        raise InputDataError(f"rank must be in 1..{n - 1} for {n} training rows; got {rank}")
    device, dtype = L.device, L.dtype
    L64 = L.to(torch.float64)
    w = noise.to(torch.float64).clamp_min(1e-12 * float(noise.max().clamp_min(1e-300))).rsqrt()
    w = w.unsqueeze(-1)  # n x 1: row weights Lambda^-1/2

    def apply(V: Tensor) -> Tensor:  # (Lambda^-1/2 K Lambda^-1/2 - I) V through K = L L^T
        # the noise-free part: its eigenvalues fall to 0, where those of the whitened K
        # level off at 1 and a range finder could not tell the tail from the noise floor
        return w * (L64 @ (L64.transpose(-1, -2) @ (w * V))) - V

    gen = torch.Generator().manual_seed(SEED)
    omega = torch.randn(n, rank, generator=gen, dtype=torch.float64).to(device)
    Y = apply(omega)
    for _ in range(power_iterations):
        Y = apply(torch.linalg.qr(Y).Q)
    Qw = torch.linalg.qr(Y).Q  # orthonormal in whitened coordinates
    Q = w * Qw  # original coordinates: K^-1 ~ Q (Q^T K Q)^-1 Q^T
    B = L64.transpose(-1, -2) @ Q
    T = B.transpose(-1, -2) @ B  # Q^T K Q = Qw^T (whitened K) Qw
    T = 0.5 * (T + T.transpose(-1, -2))
    ritz = torch.linalg.eigvalsh(T)
    from mfgp.linalg import robust_cholesky

    L_T = robust_cholesky(T)
    R = torch.linalg.solve_triangular(L_T, Q.transpose(-1, -2), upper=False).transpose(-1, -2)
    tail = max(float(ritz[0]) - 1.0, 0.0)
    return LowRankInverse(Q.to(dtype), R.to(dtype), L_T.to(dtype), tail, rank)


@torch.no_grad()
def truncated(cache: LowRankInverse, rank: int) -> LowRankInverse:
    """The cache on the leading ``rank`` range-finder columns of ``cache``'s basis.

    ``R = Q L_T^-T`` with ``L_T`` lower triangular, so ``R``'s leading columns are
    ``Q_k chol(Q_k^T K Q_k)^-T``: exactly the Galerkin approximation on ``span(Q_k)``, with its
    guarantee (variances never below the exact ones). For a range-finder cache, ``Q_k`` spans
    what a range finder of rank ``k`` from the first ``k`` start vectors finds, so the
    truncation is about as accurate as a cache built at that rank, at no cost. The columns of
    rows a conditioned copy added (after :attr:`LowRankInverse.base`) are all kept: the
    subspace is then the leading ``rank`` columns and those, refactorised
    (``O(n (rank + m)^2)``), so the copy's new observations stay in its variances.
    """
    if not 1 <= rank <= cache.base:
        raise InputDataError(f"rank must be in 1..{cache.base}; got {rank}")
    L_k = cache.L_T[:rank, :rank]
    T_k = (L_k @ L_k.transpose(-1, -2)).to(torch.float64)
    tail = max(float(torch.linalg.eigvalsh(T_k)[0]) - 1.0, 0.0)
    total = cache.R.shape[-1]
    if cache.base == total:  # no added rows: the leading columns themselves
        return LowRankInverse(cache.Q[:, :rank].contiguous(), cache.R[:, :rank].contiguous(),
                              L_k.contiguous(), tail, rank)  # fmt: skip
    from mfgp.linalg import robust_cholesky

    dtype = cache.R.dtype
    keep = torch.cat([torch.arange(rank), torch.arange(cache.base, total)]).to(cache.Q.device)
    L_T = cache.L_T.to(torch.float64)
    T = (L_T @ L_T.transpose(-1, -2))[keep][:, keep]
    L_new = robust_cholesky(0.5 * (T + T.transpose(-1, -2)))
    Q = cache.Q[:, keep].to(torch.float64)
    R = torch.linalg.solve_triangular(L_new, Q.transpose(-1, -2), upper=False).transpose(-1, -2)
    return LowRankInverse(Q.to(dtype), R.to(dtype), L_new.to(dtype), tail, rank)


@torch.no_grad()
def extend_low_rank_inverse(cache: LowRankInverse, K_on: Tensor, K_nn: Tensor) -> LowRankInverse:
    """The cache for ``K' = [[K, K_on], [K_on^T, K_nn]]`` on ``span(Q)`` plus the new rows.

    The subspace gains the ``m`` new coordinates, so a block update of a model
    (:meth:`~mfgp.models.base.CholeskyPosteriorMixin.conditioned_on`) keeps its cache for
    ``O(n rank m + (rank + m)^3)`` instead of a new range finder. The result depends on the
    model before the update and on the new rows, as the updated model itself does.

    Args:
        cache: the cache of ``K`` (``n`` rows).
        K_on: ``n x m`` the covariance of the old rows with the new ones.
        K_nn: ``m x m`` the new rows' covariance, noise included.
    """
    n, r = cache.Q.shape
    m = K_on.shape[-1]
    dtype = cache.R.dtype
    Q, L_T = cache.Q.to(torch.float64), cache.L_T.to(torch.float64)
    T = torch.empty(r + m, r + m, dtype=torch.float64, device=Q.device)
    T[:r, :r] = L_T @ L_T.transpose(-1, -2)
    T[:r, r:] = Q.transpose(-1, -2) @ K_on.to(torch.float64)
    T[r:, :r] = T[:r, r:].transpose(-1, -2)
    T[r:, r:] = K_nn.to(torch.float64)
    Qn = torch.zeros(n + m, r + m, dtype=torch.float64, device=Q.device)
    Qn[:n, :r] = Q
    Qn[n:, r:] = torch.eye(m, dtype=torch.float64, device=Q.device)
    from mfgp.linalg import robust_cholesky

    L_new = robust_cholesky(0.5 * (T + T.transpose(-1, -2)))
    R = torch.linalg.solve_triangular(L_new, Qn.transpose(-1, -2), upper=False)
    return LowRankInverse(Qn.to(dtype), R.transpose(-1, -2).to(dtype), L_new.to(dtype),
                          cache.tail, cache.base)  # fmt: skip
