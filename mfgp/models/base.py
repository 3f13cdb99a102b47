"""Shared pieces of the mfgp GP models: the solver policy, per-fidelity means, input checks."""

from __future__ import annotations

import copy
from typing import NamedTuple

import gpytorch
import torch
from botorch.models.transforms.input import Normalize
from gpytorch.distributions import MultivariateNormal
from gpytorch.likelihoods.noise_models import FixedGaussianNoise
from gpytorch.models import ExactGP
from linear_operator import to_linear_operator
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.kernels.means import FidelityMean
from mfgp.linalg import MAX_CHOLESKY_SIZE, exact_solves, robust_cholesky

__all__ = [
    "CholeskyPosteriorMixin",
    "PoolFactor",
    "FidelityMean",
    "exact_solves",
    "robust_cholesky",
    "MAX_CHOLESKY_SIZE",
    "feature_normalize",
    "check_fidelity_column",
    "check_xy",
    "same_state",
    "state_key",
]

#: the plain attributes a model caches (never saved, deep-copied or pickled)
_CACHES = ("_mfgp_cholesky", "_mfgp_fastvar", "_mfgp_parent")


class PoolFactor(NamedTuple):
    """What :meth:`CholeskyPosteriorMixin.pool_factor` keeps of a pass over a pool."""

    Xt: Tensor  #: the pool's transformed inputs
    V: Tensor  #: ``L^-1 K(X_train, X)``, ``n x N``
    mean: Tensor  #: posterior means (outcome units)
    var: Tensor  #: posterior variances of the function (outcome units)
    scale: Tensor | float  #: outcome variance scale of the covariances
    #: ``R`` of a fast-variance factor (``V = R^T K(X_train, X)``, ``rank x N``), else ``None``
    low_rank: Tensor | None = None


class CholeskyPosteriorMixin:
    """Exact posteriors from one cached Cholesky factor, whatever GPyTorch's global settings are.

    GPyTorch's exact prediction strategy, on a first call, evaluates the training kernel three
    times, factorises it twice and inverts the factor (for its variance cache): measured on 2
    CPU cores at n = 9,911 training rows, 50 s for the first 920 predictions. This mixin
    replaces the posterior-mode ``__call__`` of an unbatched ``ExactGP`` by the textbook
    computation: ``L = chol(K + noise)`` and ``alpha = L^-T L^-1 (y - m)`` computed once, then
    per call ``mean = m* + K*^T alpha`` and ``cov = K** - V^T V`` with ``V = L^-1 K*``
    (one kernel evaluation, one factorisation, one triangular solve; about 4x faster there).

    The cache is detached (as GPyTorch's ``detach_test_caches``), so gradients flow to the
    query points but not to the hyperparameters; it is rebuilt whenever a parameter, a buffer
    or the training data change. Inside :func:`mfgp.fastvar.fast_variances`, covariances use a
    low-rank cache of ``K^-1`` instead of the solve (``V = R^T K*``, :mod:`mfgp.fastvar`),
    built once per model state and kept beside the factor. Batched models (fantasies) use
    GPyTorch's strategy, whose caches :meth:`condition_on_observations` builds first.
    """

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool | Tensor = False,
                  posterior_transform=None, **kwargs):  # fmt: skip
        """BoTorch's posterior under exact solves.

        ``observation_noise=True`` on a model with known (fixed) noise adds, for each query
        row, the mean known noise variance of that row's fidelity in the training data
        (GPyTorch would silently add nothing); a tensor is used as given, in the model's
        standardised units, as in BoTorch.
        """
        if observation_noise is True and isinstance(self.likelihood.noise_covar,
                                                    FixedGaussianNoise):  # fmt: skip
            observation_noise = self.new_observation_noise(X)
        with exact_solves():
            return super().posterior(  # type: ignore[misc]
                X, output_indices=output_indices, observation_noise=observation_noise,
                posterior_transform=posterior_transform, **kwargs,
            )  # fmt: skip

    def new_observation_noise(self, X: Tensor) -> Tensor:
        """Known-noise models: the noise variance of a new observation at ``X``, ``... x q x 1``.

        The mean of the training rows' known variances at the query row's fidelity (all
        training rows' mean for a fidelity without rows), in the model's standardised units.
        """
        noise = self.likelihood.noise_covar.noise.reshape(-1)
        levels = self.train_inputs[0][..., -1].reshape(-1).round().long()
        query = X[..., -1].round().long()
        out = torch.full(query.shape, float(noise.mean()), dtype=X.dtype, device=X.device)
        for level in torch.unique(query).tolist():
            at = levels == level
            if bool(at.any()):
                out[query == level] = noise[at].mean().to(X)
        return out.unsqueeze(-1)

    def __call__(self, *args, **kwargs):  # noqa: D102
        if (
            self.training
            or len(args) != 1
            or kwargs
            or gpytorch.settings.prior_mode.on()
            or self.train_inputs is None
            or self.prediction_strategy is not None  # GPyTorch caches exist (fantasy models)
            or self.train_inputs[0].dim() != 2
        ):
            return super().__call__(*args, **kwargs)
        return self._cached_posterior(args[0])

    def _cache_tensors(self) -> list[Tensor]:
        """Every tensor the cached factor depends on (fixed noise is a plain attribute)."""
        tensors = [*self.parameters(), *self.buffers(), self.train_inputs[0], self.train_targets]
        noise = getattr(getattr(self, "likelihood", None), "noise_covar", None)
        if isinstance(noise, FixedGaussianNoise):
            tensors.append(noise.noise)
        return tensors

    def _cholesky_cache(self) -> tuple[Tensor, Tensor]:
        key = state_key(self._cache_tensors())
        cached = getattr(self, "_mfgp_cholesky", None)
        if cached is not None and same_state(cached[0], key):
            return cached[1]
        X = self.train_inputs[0]
        with torch.no_grad(), exact_solves():
            prior = self.forward(X)
            K = self.likelihood(prior, [X]).lazy_covariance_matrix.to_dense()
            L = robust_cholesky(K)
            alpha = torch.cholesky_solve((self.train_targets - prior.mean).unsqueeze(-1), L)
        object.__setattr__(self, "_mfgp_cholesky", (key, (L, alpha)))  # not a module attribute
        return L, alpha

    def clear_cache(self) -> None:
        """Drop the cached Cholesky factor (it is also rebuilt whenever its inputs change)."""
        for k in _CACHES:
            object.__setattr__(self, k, None)

    def _noise_diagonal(self) -> Tensor:
        """Each training row's noise variance in the factorised covariance (standardised units)."""
        X = self.train_inputs[0]
        with torch.no_grad(), exact_solves():
            prior = self.forward(X)
            noisy = self.likelihood(prior, [X])
            return (noisy.variance - prior.variance).reshape(-1)

    def _fast_inverse(self):
        """The low-rank cache of ``K^-1`` (:class:`mfgp.fastvar.LowRankInverse`) or ``None``.

        ``None`` outside :func:`mfgp.fastvar.fast_variances` and for a model with at most
        ``rank`` training rows (exact variances cost no more there). A rank below
        :data:`mfgp.fastvar.DEFAULT_RANK` (for a model with more rows than that) is the
        leading columns of the cache built at that rank (:func:`mfgp.fastvar.truncated`: the
        Galerkin approximation on the leading columns of its basis, and on every row a
        conditioned copy added), so a rank gives the same variances whatever was asked
        before. Built once per model state, kept on the object (not saved, not deep-copied);
        a conditioned copy extends the cache of the model it came from by its new rows.
        """
        from mfgp.fastvar import DEFAULT_RANK, fast_rank, low_rank_inverse, truncated

        rank = fast_rank()
        if rank is None or self.train_inputs is None or self.train_inputs[0].dim() != 2:
            return None
        L, _ = self._cholesky_cache()
        n = L.shape[-1]
        if rank >= n:
            return None
        # the rank the cache is built at: DEFAULT_RANK for every lower rank, where it fits
        build = DEFAULT_RANK if rank < DEFAULT_RANK < n else rank
        key = state_key(self._cache_tensors())
        cached = getattr(self, "_mfgp_fastvar", None)  # (key, build rank, cache, views)
        if cached is None or cached[1] != build or not same_state(cached[0], key):
            cache = None
            parent = getattr(self, "_mfgp_parent", None)  # (build rank, cache, K_on, K_nn)
            if parent is not None and parent[0] == build:
                from mfgp.fastvar import extend_low_rank_inverse

                # the cache of the model this one was conditioned from, extended by the new rows
                cache = extend_low_rank_inverse(parent[1], parent[2], parent[3])
            if cache is None:
                cache = low_rank_inverse(L, self._noise_diagonal(), build)
            cached = (key, build, cache, {})
            object.__setattr__(self, "_mfgp_fastvar", cached)
        if rank == build:
            return cached[2]
        views = cached[3]
        if rank not in views:  # the leading columns, and every row a copy added
            views[rank] = truncated(cached[2], rank)
        return views[rank]

    def _reduction_factor(self, K_star: Tensor) -> Tensor:
        """``V`` with ``cov = K** - V^T V``: ``L^-1 K*`` (exact) or ``R^T K*`` (fast variances)."""
        fast = self._fast_inverse()
        if fast is None:
            L, _ = self._cholesky_cache()
            return torch.linalg.solve_triangular(L, K_star, upper=False)
        return fast.R.transpose(-1, -2) @ K_star

    def train(self, mode: bool = True):  # noqa: D102
        if mode:
            self.clear_cache()  # hyperparameters are about to change; free the n x n factor
        return super().train(mode)  # type: ignore[misc]

    def set_train_data(self, *args, **kwargs):  # noqa: D102
        self.clear_cache()
        return super().set_train_data(*args, **kwargs)  # type: ignore[misc]

    def load_state_dict(self, state_dict, strict: bool = True, keep_transforms: bool = True,
                        assign: bool = False):  # fmt: skip
        """BoTorch's ``load_state_dict``, exact when the outcome transform is unchanged.

        BoTorch untransforms the training targets (and fixed noise) and transforms them back
        with the loaded transform, which moves them by rounding even when the transform is
        the same one; every restart of a fit did that once, and a saved model rebuilt from its
        data could not reproduce the fitted one bit for bit. With the same transform state the
        targets are left as they are.
        """
        self.clear_cache()
        ot = getattr(self, "outcome_transform", None)
        if ot is not None and keep_transforms:
            own = {f"outcome_transform.{k}": v for k, v in ot.state_dict().items()}
            same = all(k in state_dict and torch.equal(v, state_dict[k]) for k, v in own.items())
            if same:
                out = torch.nn.Module.load_state_dict(self, state_dict, strict=strict,
                                                      assign=assign)  # fmt: skip
                if getattr(self, "input_transform", None) is not None:
                    self.input_transform.eval()
                ot.eval()
                return out
        return super().load_state_dict(state_dict, strict=strict,  # type: ignore[misc]
                                       keep_transforms=keep_transforms, assign=assign)  # fmt: skip

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for k in _CACHES:  # n x n (and the model a copy was conditioned from): rebuilt
            state.pop(k, None)
        return state

    def _cached_posterior(self, X: Tensor) -> MultivariateNormal:
        L, alpha = self._cholesky_cache()
        X_train = self.train_inputs[0]
        batch = X.shape[:-2]
        q, d = X.shape[-2], X.shape[-1]
        # the model is unbatched, so a batch of queries is one set of columns: one kernel
        # evaluation against the training rows (never the training inputs copied per batch
        # element, which costs batch x n x d) and one triangular solve with the unbatched
        # factor (broadcasting L over the batch would copy n x n per element)
        flat = X.reshape(-1, d)
        K_star = self.covar_module(X_train, flat).to_dense()  # n x (batch * q)
        mean = self.mean_module(X) + (K_star.transpose(-1, -2) @ alpha).reshape(*batch, q)
        V = self._reduction_factor(K_star)  # n x (batch * q), or rank x ... (fast variances)
        V = V.reshape(V.shape[0], *batch, q).movedim(0, -2)  # batch x n x q
        cov = self.covar_module(X).to_dense() - V.transpose(-1, -2) @ V
        # a linear operator: a dense tensor would make torch factorise the q x q covariance
        # at construction (slow for many queries, and an error for a singular one)
        return MultivariateNormal(mean, to_linear_operator(cov))

    def _outcome_scale(self) -> tuple[Tensor | float, Tensor | float]:
        """``(shift, scale)`` of a Standardize outcome transform (``(0, 1)`` without one)."""
        from botorch.models.transforms.outcome import Standardize

        ot = getattr(self, "outcome_transform", None)
        if ot is None:
            return 0.0, 1.0
        if not isinstance(ot, Standardize):
            raise NotImplementedError(
                f"pool factors support Standardize outcome transforms, not {type(ot).__name__}"
            )
        return ot.means.reshape(-1)[0], ot.stdvs.reshape(-1)[0]

    @torch.no_grad()
    def pool_factor(self, X: Tensor, *, batch_size: int = 2048) -> PoolFactor:
        """Posterior means and variances at ``X`` and the factor ``V = L^-1 K(X_train, X)``.

        One kernel evaluation against the training rows and one triangular solve per row of
        ``X``, as a posterior at ``X`` costs, but ``V`` (``n x N``) is kept: the covariance of
        the rows of two factors is then ``K(X_a, X_b) - V_a^T V_b`` (:meth:`factor_cross`),
        with no solve and no second pass over ``X``. Greedy batch selection conditions on
        each choice that way. Inside
        :func:`mfgp.fastvar.fast_variances`, ``V = R^T K(X_train, X)`` (``rank x N``) and
        every covariance of the factor uses the same low-rank cache.
        """
        shift, scale = self._outcome_scale()
        self.eval()
        L, alpha = self._cholesky_cache()
        fast = self._fast_inverse()
        X_train = self.train_inputs[0]
        n, N = L.shape[-1] if fast is None else fast.R.shape[-1], X.shape[0]
        V = X.new_empty(n, N)
        mean, var = X.new_empty(N), X.new_empty(N)
        with exact_solves():
            Xt = self.transform_inputs(X)
            for i in range(0, N, batch_size):
                xb = Xt[i : i + batch_size]
                K = self.covar_module(X_train, xb).to_dense()
                b = slice(i, i + xb.shape[0])
                mean[b] = self.mean_module(xb) + (K.transpose(-1, -2) @ alpha).squeeze(-1)
                V[:, b] = (torch.linalg.solve_triangular(L, K, upper=False) if fast is None
                           else fast.R.transpose(-1, -2) @ K)  # fmt: skip
                prior = self.covar_module(xb.unsqueeze(-2)).to_dense().reshape(-1)
                var[b] = prior - V[:, b].square().sum(0)
        return PoolFactor(Xt, V, shift + scale * mean, (scale**2 * var).clamp_min(0.0),
                          scale**2, None if fast is None else fast.R)  # fmt: skip

    @torch.no_grad()
    def factor_cross(self, a: PoolFactor, b: PoolFactor, rows: Tensor | None = None) -> Tensor:
        """``cov(f(X_a), f(X_b[rows]))`` (outcome units) from two factors of this model.

        ``K(X_a, X_b) - V_a^T V_b``: both factors already hold ``L^-1 K(X_train, .)`` (or the
        low-rank cache's ``R^T K(X_train, .)``), so no solve and no pass over the training rows
        is needed, only the kernel between the two sets. Greedy batch selection conditions on
        a chosen pool row this way (``b`` the pool's own factor, ``rows`` the choice). Both
        factors must come from this model, both exact or both from the same low-rank cache.
        """
        if (a.low_rank is None) != (b.low_rank is None) or (
                a.low_rank is not None and a.low_rank is not b.low_rank):  # fmt: skip
            raise ValueError("factor_cross needs two factors of the same kind (both exact, or "
                             "both from the same low-rank cache)")
        Xb, Vb = (b.Xt, b.V) if rows is None else (b.Xt[rows], b.V[:, rows])
        with exact_solves():
            K = self.covar_module(a.Xt, Xb).to_dense()
        return (K - a.V.transpose(-1, -2) @ Vb) * a.scale

    @torch.no_grad()
    def posterior_covariance(self, X: Tensor, Z: Tensor, *, batch_size: int = 4096) -> Tensor:
        """The posterior covariance ``cov(f(X), f(Z))``, ``N x k``, in outcome units.

        ``K(X, Z) - K(X, X_train) K^-1 K(X_train, Z)`` with ``K^-1 K(X_train, Z)`` from the
        cached factor (one solve for ``k`` columns): for a few ``Z`` this costs a kernel
        evaluation against the training rows and a product, never the ``n x N`` triangular solve
        of a posterior at ``X``. It is what greedy batch selection needs to update a pool's
        variances after each choice. Inside :func:`mfgp.fastvar.fast_variances`, ``K^-1`` is
        the low-rank cache's ``R R^T``.

        Args:
            X: ``N x (d + 1)`` inputs (untransformed, as for :meth:`posterior`).
            Z: ``k x (d + 1)`` inputs.
            batch_size: rows of ``X`` per kernel evaluation.
        """
        _, scale = self._outcome_scale()
        self.eval()
        L, _ = self._cholesky_cache()
        fast = self._fast_inverse()
        X_train = self.train_inputs[0]
        with exact_solves():
            Zt = self.transform_inputs(Z)
            K_z = self.covar_module(X_train, Zt).to_dense()
            W = (torch.cholesky_solve(K_z, L) if fast is None
                 else fast.R @ (fast.R.transpose(-1, -2) @ K_z))  # fmt: skip
            parts = []
            for i in range(0, X.shape[0], batch_size):
                Xt = self.transform_inputs(X[i : i + batch_size])
                cross = self.covar_module(X_train, Xt).to_dense()
                parts.append(self.covar_module(Xt, Zt).to_dense() - cross.transpose(-1, -2) @ W)
        cov = torch.cat(parts) if parts else X.new_empty(0, Z.shape[0])
        return cov * scale**2

    def conditioned_on(self, X: Tensor, Y: Tensor, Yvar: Tensor | None = None):
        """A copy that also conditions on ``(X, Y)``, by a block update of the cached factor.

        Hyperparameters are unchanged: this is what a prediction does with observations that
        the fit left out (the lower-fidelity rows of the compositions asked about). With
        ``n`` training rows and ``m`` new ones it costs ``O(n^2 m + m^3)``, not a new
        ``O((n + m)^3)`` factorisation, and the original model is left as it was.

        Args:
            X: ``m x (d + 1)`` new inputs (untransformed, as ``train_X``).
            Y: ``m x 1`` new observations.
            Yvar: ``m x 1`` known noise variances; required (and only allowed) when the model
                has fixed noise.

        Returns:
            A model of the same class in eval mode.
        """
        check_xy(X, Y, Yvar)
        fixed = isinstance(self.likelihood.noise_covar, FixedGaussianNoise)
        if fixed != (Yvar is not None):
            raise ShapeError(
                "Yvar is required for a model with known noise and not allowed otherwise; got "
                f"{'none' if Yvar is None else tuple(Yvar.shape)} for a model with "
                f"{'fixed' if fixed else 'learned'} noise"
            )
        self.eval()
        L, alpha = self._cholesky_cache()
        with torch.no_grad(), exact_solves():
            Xt = self.transform_inputs(X)
            Yt, Yvart = Y, Yvar
            if hasattr(self, "outcome_transform"):
                Yt, Yvart = self.outcome_transform(Y, Yvar, X=Xt)
            X_old, y_old = self.train_inputs[0], self.train_targets
            prior_new = self.forward(Xt)
            noise_kw = {} if Yvart is None else {"noise": Yvart.squeeze(-1)}
            K_nn = self.likelihood(prior_new, [Xt], **noise_kw).lazy_covariance_matrix.to_dense()
            K_on = self.covar_module(X_old, Xt).to_dense()
            B = torch.linalg.solve_triangular(L, K_on, upper=False)  # n x m
            L22 = robust_cholesky(K_nn - B.transpose(-1, -2) @ B)
            n, m = L.shape[-1], L22.shape[-1]
            L_new = torch.zeros(n + m, n + m, dtype=L.dtype, device=L.device)
            L_new[:n, :n], L_new[n:, :n], L_new[n:, n:] = L, B.transpose(-1, -2), L22
            y_new = torch.cat([y_old, Yt.squeeze(-1)])
            X_all = torch.cat([X_old, Xt])
            resid = y_new - torch.cat([self.forward(X_old).mean, prior_new.mean])
            alpha_new = torch.cholesky_solve(resid.unsqueeze(-1), L_new)
        held = {k: getattr(self, k, None) for k in _CACHES}
        self.clear_cache()  # not deep-copied
        try:
            new = copy.deepcopy(self)
        finally:
            for k, v in held.items():
                object.__setattr__(self, k, v)
        original = self._original_train_inputs
        if original is not None:
            new._original_train_inputs = torch.cat([original, X])
        ExactGP.set_train_data(new, X_all, y_new, strict=False)
        if fixed:
            new.likelihood.noise_covar.noise = torch.cat(
                [self.likelihood.noise_covar.noise, Yvart.squeeze(-1)]
            )
        new.prediction_strategy = None
        object.__setattr__(new, "_mfgp_cholesky", (state_key(new._cache_tensors()),
                                                   (L_new, alpha_new)))  # fmt: skip
        # fast variances of the copy extend this model's low-rank cache by the new rows, if
        # it has one (kept across the copies a campaign makes round after round); the copy
        # holds that cache, never this model, so a chain of copies frees its n x n factors
        cached = getattr(self, "_mfgp_fastvar", None)
        if cached is not None and same_state(cached[0], state_key(self._cache_tensors())):
            object.__setattr__(new, "_mfgp_parent", (cached[1], cached[2], K_on, K_nn))
        return new

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs):  # noqa: D102
        built_here = self.prediction_strategy is None
        if built_here:
            # GPyTorch's fantasy update needs its own caches: build them with one prediction
            self.eval()
            with torch.no_grad(), exact_solves():
                ExactGP.__call__(self, self.transform_inputs(X[..., :1, :]))
        try:
            return super().condition_on_observations(X, Y, **kwargs)  # type: ignore[misc]
        finally:
            if built_here:
                # the caches served the fantasy model; this model keeps its own fast path
                self.prediction_strategy = None


def state_key(tensors) -> tuple:
    """A key that changes when any of ``tensors`` is replaced or modified in place.

    Each entry is the tensor's address, version counter, shape and strides, *and the tensor
    itself*: holding it keeps its memory from being freed, so a new tensor can never reuse the
    address and collide (a bare ``data_ptr`` key served the previous data's posterior after
    ``set_train_data``). An alias that shares the memory (BoTorch's transforms re-assign their
    buffers as detached views on every call) keeps the key, as its contents are the same.
    """
    return tuple((t, t.data_ptr(), t._version, tuple(t.shape), t.stride()) for t in tensors)


def same_state(a: tuple, b: tuple) -> bool:
    """Whether two :func:`state_key` keys describe the same tensor contents."""
    return len(a) == len(b) and all(x[1:] == y[1:] for x, y in zip(a, b))


def feature_normalize(train_X: Tensor, n_features: int | None = None) -> Normalize:
    """Min-max normalisation of the feature columns, bounds fixed from ``train_X``.

    The fidelity column (last) is left as is. Bounds are computed once here, so fitting on a
    subset and conditioning on all data see the same input space; constant columns get a unit
    range instead of a division by zero.
    """
    d = train_X.shape[-1] - 1 if n_features is None else n_features
    flat = train_X.reshape(-1, train_X.shape[-1])[:, :d]
    lo = flat.min(0).values
    hi = flat.max(0).values
    hi = torch.where(hi - lo > 1e-12, hi, lo + 1.0)
    return Normalize(d=train_X.shape[-1], indices=list(range(d)), bounds=torch.stack([lo, hi]))


def check_xy(train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None) -> None:
    """Shapes and dtypes of the training tensors (the message prints what was received)."""
    if train_X.dim() != 2 or train_X.shape[-1] < 2:
        raise ShapeError(
            f"train_X must be n x (d + 1) (features, then the fidelity index); got "
            f"{tuple(train_X.shape)}"
        )
    if train_Y.dim() != 2 or train_Y.shape != (train_X.shape[0], 1):
        raise ShapeError(
            f"train_Y must be n x 1 with n = {train_X.shape[0]}; got {tuple(train_Y.shape)} "
            "(add the output dimension with Y.unsqueeze(-1))"
        )
    if train_Yvar is not None and train_Yvar.shape != train_Y.shape:
        raise ShapeError(f"train_Yvar {tuple(train_Yvar.shape)} must match train_Y")
    if train_X.dtype != train_Y.dtype:
        raise ShapeError(f"train_X is {train_X.dtype} but train_Y is {train_Y.dtype}")
    for name, t in (("train_X", train_X), ("train_Y", train_Y)):
        bad = ~torch.isfinite(t).all(-1)
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0])
            raise InputDataError(
                f"row {row} of {name} is not finite ({t[row].tolist()[:6]}...); drop the row or "
                "featurize with impute_nan=True"
            )
    check_fidelity_column(train_X)


def check_fidelity_column(X: Tensor, num_fidelities: int | None = None) -> None:
    """The last column must hold 0-based integer fidelity indices (below ``num_fidelities``)."""
    fid = X[..., -1].reshape(-1)
    bad = (fid != fid.round()) | (fid < 0)
    if num_fidelities is not None:
        bad |= fid > num_fidelities - 1
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0])
        allowed = "a 0-based integer" + (
            "" if num_fidelities is None else f" in 0..{num_fidelities - 1}"
        )
        raise InputDataError(
            f"row {row}: the fidelity column (the last input column) holds {float(fid[row])!r}, "
            f"which is not {allowed}; put the fidelity index last"
        )
