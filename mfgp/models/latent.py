"""The explicit-latent architecture (NARGP-style): a model of one quantity feeds another.

The target GP sees ``[x, z(x)]`` where ``z`` is the posterior of a *latent model*: a lower
fidelity of the same property, or a different property altogether (any BoTorch ``Model``).
Its kernel is ``k_rho(z, z') k_x(x, x') + k_delta(x, x')`` (Perdikaris et al. 2017), which lets
the target depend non-linearly on the latent. With ``linear=True`` (the default) ``k_rho`` is a
stationary Matern on ``z`` *plus* a scaled linear kernel ``s (z z' + c)``, so the AR1 form
``rho(x) z(x) + delta(x)`` (with ``rho`` a smooth GP over the features) is a special case: a
stationary kernel alone must learn a linear trend in ``z`` from data, and extrapolates it back to
the mean beyond the latent values seen in training.

Observed latents: the value a lower-fidelity *calculation* gives for a composition is a number,
not a draw from a smooth function; the latent model's posterior mean smooths it away (a GP over
composition features misses much of a PBE gap's variation, which it books as noise). With
``latent_observations`` (the estimators pass the lower level's own training rows) the latent is
that number wherever the query's features match an observed row, for training and prediction
alike; elsewhere it is the latent model's predictive of a *new observation* (noise included),
since that is what the observed values are. This is the explicit latent variable of Hutchinson
et al. (2017) (the DFT value as an input where it exists) with its uncertainty where it does not.

Uncertainty propagation: Monte Carlo with moment matching. ``n_samples`` joint draws of the
latent at the query points (fixed, seeded base samples, so the posterior is a deterministic,
differentiable function of ``X``) each give a Gaussian posterior of the target; the returned
posterior is the Gaussian with the exact mean and joint covariance of that mixture
(law of total covariance): ``mean = E_s[m_s]``, ``cov = E_s[C_s] + Cov_s[m_s]``.
"""

from __future__ import annotations

import copy

import torch
from botorch.models.model import FantasizeMixin, Model
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import PolynomialKernel, ScaleKernel
from gpytorch.means import ConstantMean
from gpytorch.models import ExactGP
from linear_operator import to_linear_operator
from torch import Tensor

from mfgp._rows import distinct_means, lookup
from mfgp.exceptions import InputDataError, ShapeError
from mfgp.kernels.coregional import default_data_kernel, matern_ard
from mfgp.models.base import check_xy, exact_solves, feature_normalize, same_state, state_key
from mfgp.models.multifidelity import FidelityGP

__all__ = ["ExplicitLatentGP"]

#: Lower bound of ``k_rho``'s Matern lengthscale on the latent, in units of the latent's training
#: range (inputs are normalised to [0, 1]): the target varies smoothly with the latent. At the
#: shared bound of 0.025 the fit on observed PBE gaps (half of them exactly 0) drove the noise
#: towards zero and made over-confident predictions (``docs/models.md``).
LATENT_LENGTHSCALE_MIN = 0.2


class _AugmentedGP(FidelityGP):
    """The inner GP on ``[features, latent, fidelity]`` with the NARGP kernel."""

    def __init__(self, train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None,
                 linear: bool = True):  # fmt: skip
        d = train_X.shape[-1] - 2  # features, latent, fidelity
        # active_dims on the ScaleKernel: it calls its base kernel's forward, which skips them
        k_rho = ScaleKernel(
            matern_ard(1, lengthscale_min=LATENT_LENGTHSCALE_MIN), active_dims=torch.tensor([d])
        )
        if linear:
            k_rho = k_rho + ScaleKernel(PolynomialKernel(power=1), active_dims=torch.tensor([d]))
        k_x = matern_ard(d, active_dims=range(d))
        k_delta = default_data_kernel(d, active_dims=range(d))
        super().__init__(
            train_X,
            train_Y,
            train_Yvar,
            covar_module=k_rho * k_x + k_delta,
            num_fidelities=1,
            mean_module=ConstantMean(),
            input_transform=feature_normalize(train_X, n_features=d + 1),
            outcome_transform=Standardize(m=1),
        )


class ExplicitLatentGP(Model, FantasizeMixin):
    """A GP whose inputs include the posterior of another model (NARGP-style).

    Args:
        train_X: ``n x (d + 1)`` contract inputs of the target observations.
        train_Y: ``n x 1`` target observations.
        latent_model: any BoTorch ``Model`` with one output; it is queried at ``X`` with the
            last column set to ``latent_fidelity``.
        latent_fidelity: fidelity index passed to the latent model (ignored by single-fidelity
            latent models).
        train_Yvar: known noise variances, ``n x 1``.
        n_samples: Monte Carlo draws of the latent for prediction.
        seed: seed of the fixed base samples.
        linear: add the linear term to ``k_rho`` (see the module docstring).
        latent_observations: ``(X_obs, Y_obs)``, contract inputs (the fidelity column is
            ignored) and values where the latent is known; at an input whose features match a
            row of ``X_obs`` (to 1e-9 of each feature's scale) the latent is that value
            (repeated rows: their mean), elsewhere a draw from the latent model's predictive
            with observation noise (see the module docstring). ``None``: the latent model's
            posterior everywhere (its mean for the training rows). The inputs are matched
            as given, *before* ``feature_map``: pass raw featurizer output (a deterministic
            float64 function of the composition), not the output of a learned extractor.
        feature_map: a module applied to the inputs before they enter the inner GP (e.g.
            :class:`~mfgp.models.FeatureMap`: standardisation or a pretrained extractor);
            the latent model and the observed-latent lookup see the inputs as given.

    The training latents follow the latent model: they are computed when first needed and
    recomputed whenever the latent model's parameters or training data have changed since
    (so a chain may be built before its lower level is fitted; fit the levels bottom-up).

    Example:
        >>> low = SingleFidelityGP(X_lo, Y_lo); fit_gp(low)  # doctest: +SKIP
        >>> high = ExplicitLatentGP(X_hi, Y_hi, latent_model=low); fit_gp(high)  # doctest: +SKIP
    """

    _num_outputs = 1

    def __init__(
        self,
        train_X: Tensor,
        train_Y: Tensor,
        latent_model: Model,
        latent_fidelity: int = 0,
        train_Yvar: Tensor | None = None,
        n_samples: int = 64,
        seed: int = 0,
        linear: bool = True,
        latent_observations: tuple[Tensor, Tensor] | None = None,
        feature_map: torch.nn.Module | None = None,
    ) -> None:
        check_xy(train_X, train_Y, train_Yvar)
        super().__init__()
        self.latent_model = latent_model
        self.latent_fidelity = latent_fidelity
        self.n_samples = n_samples
        self.seed = seed
        self.feature_map = feature_map
        self._set_observations(latent_observations, train_X)
        self.register_buffer("train_X", train_X.detach().clone())
        z = self._latent_point(train_X)
        self._latent_state = self._latent_model_state()
        self.gp = _AugmentedGP(self._augment(train_X, z).detach(), train_Y, train_Yvar,
                               linear=linear)  # fmt: skip

    def _latent_model_state(self) -> tuple:
        """The latent model's parameters, buffers and training data (whatever its mode)."""
        m = self.latent_model
        tensors = [*m.parameters(), *m.buffers()]
        for module in m.modules():
            if isinstance(module, ExactGP) and module.train_inputs is not None:
                # BoTorch swaps transformed copies in and out with the mode: take the originals
                original = getattr(module, "_original_train_inputs", None)
                if getattr(module, "_has_transformed_inputs", False) and original is not None:
                    tensors.append(original)
                else:
                    tensors += list(module.train_inputs)
                tensors.append(module.train_targets)
        return state_key(tensors)

    def sync_latents(self) -> bool:
        """Recompute the training latents if the latent model changed since; True if it did.

        :func:`~mfgp.fit.fit_gp` calls it before fitting and :meth:`posterior` before
        predicting, so the inner GP is always trained on and conditioned on the latents of
        the latent model as it is now (not as it was when this model was built).
        """
        if self._latent_state is None:  # a conditioned copy: its latents are its own
            return False
        state = self._latent_model_state()
        if same_state(self._latent_state, state):
            return False
        was_training = self.gp.training
        self.gp.train()  # BoTorch: the original (untransformed) training inputs
        z = self._latent_point(self.train_X)
        self.gp.set_train_data(self._augment(self.train_X, z).detach(), strict=False)
        self.gp.train(was_training)
        self._latent_state = self._latent_model_state()
        return True

    @property
    def batch_shape(self) -> torch.Size:
        """The batch shape of the inner GP (non-empty for fantasy models)."""
        return self.gp.batch_shape

    def train(self, mode: bool = True) -> ExplicitLatentGP:
        """Train / eval mode for this model's own inner GP; the latent model is left as it is.

        The latent model is fitted on its own (bottom-up); switching the whole chain to train
        mode would drop its caches and transformed inputs for nothing.
        """
        self.training = mode
        self.gp.train(mode)
        if self.feature_map is not None:
            self.feature_map.train(mode)
        return self

    @property
    def num_outputs(self) -> int:  # noqa: D102
        return 1

    @property
    def likelihood(self):
        """The target's observation likelihood (that of the inner GP)."""
        return self.gp.likelihood

    def _set_observations(self, obs: tuple[Tensor, Tensor] | None, train_X: Tensor) -> None:
        """Keep one value per distinct observed input row, as buffers (they follow ``.to``)."""
        self.register_buffer("_obs_X", None)
        self.register_buffer("_obs_z", None)
        if obs is None:
            return
        X_obs, Y_obs = obs
        if X_obs.dim() != 2 or X_obs.shape[-1] != train_X.shape[-1]:
            raise ShapeError(
                f"latent_observations X must be n x {train_X.shape[-1]} like train_X; "
                f"got {tuple(X_obs.shape)}"
            )
        y = Y_obs.reshape(-1)
        if y.shape[0] != X_obs.shape[0] or not torch.isfinite(y).all():
            raise ShapeError(
                f"latent_observations Y must hold {X_obs.shape[0]} finite values, one per row "
                f"of X; got shape {tuple(Y_obs.shape)}"
            )
        self._obs_X, self._obs_z = distinct_means(X_obs[:, :-1], y)

    def _observed(self, X: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(mask, values)`` shaped like ``X[..., :1]``: where the latent is known, its value."""
        if self._obs_X is None:
            return None
        known, values = lookup(self._obs_X, self._obs_z, X[..., :-1])
        return known.unsqueeze(-1), values.to(X).unsqueeze(-1)

    def latent_known(self, X: Tensor) -> Tensor:
        """Boolean, shaped like ``X[..., 0]``: where the latent is an observed value.

        A posterior at inputs that all have one costs a single inner-GP evaluation instead of
        ``n_samples``; marginal predictions can be grouped by this mask (the estimators do).
        """
        known = self._observed(X)
        if known is None:
            return torch.zeros(X.shape[:-1], dtype=torch.bool, device=X.device)
        return known[0].squeeze(-1)

    def _latent_point(self, X: Tensor) -> Tensor:
        """The latent entered for training / conditioning rows: observed, else posterior mean."""
        with torch.no_grad(), exact_solves():
            z = self.latent_model.posterior(self._latent_inputs(X)).mean
        known = self._observed(X)
        return z if known is None else torch.where(known[0], known[1], z)

    def _latent_inputs(self, X: Tensor) -> Tensor:
        Xl = X.clone()
        Xl[..., -1] = float(self.latent_fidelity)
        return Xl

    def _augment(self, X: Tensor, z: Tensor) -> Tensor:
        if self.feature_map is not None:
            X = self.feature_map(X)
        Xb = X.expand(*z.shape[:-2], *X.shape[-2:])
        return torch.cat([Xb[..., :-1], z, torch.zeros_like(Xb[..., -1:])], dim=-1)

    def _base_samples(self, post, X: Tensor) -> Tensor:
        """Fixed, seeded base samples of the latent draws.

        One-point posteriors (``q = 1``, a batch of rows as from
        :func:`mfgp.predict.predict_marginals`) share one set of ``n_samples`` draws, so each
        row's marginal depends neither on the other rows nor on the chunking.
        """
        base = post.base_sample_shape
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        # drawn in float64 whatever X's dtype: float32 draws are another sequence, and a
        # float32 prediction must be the float64 one to float32's precision
        if tuple(post.distribution.event_shape) in ((1,), (1, 1)):  # q = 1
            eps = torch.randn(self.n_samples, generator=g, dtype=torch.float64).to(X)
            return eps.reshape(-1, *([1] * len(base))).expand(self.n_samples, *base)
        shape = torch.Size([self.n_samples]) + base
        return torch.randn(shape, generator=g, dtype=torch.float64).to(X)

    def _check_level(self, X: Tensor) -> None:
        """Refuse query rows of another fidelity than this model's training rows.

        The model answers for its own level only (the fidelity column of its training rows);
        it would otherwise return its own level's prediction for a row of a lower one.
        """
        level = self.train_X[..., -1].reshape(-1)[:1]
        asked = X[..., -1].reshape(-1)
        if asked.numel() and level.numel() and not bool((asked == level.to(asked)).all()):
            other = sorted({round(float(v), 6) for v in asked[asked != level.to(asked)].tolist()})
            raise InputDataError(
                f"this explicit-latent model answers at fidelity {float(level):g} (its training "
                f"rows' level); the query holds rows at fidelity {other[:5]}: a lower level is "
                "its latent_model's (predict those rows with it), or set the fidelity column to "
                f"{float(level):g}"
            )

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool = False,
                  posterior_transform=None, **kwargs) -> GPyTorchPosterior:  # fmt: skip
        """Moment-matched joint Gaussian posterior of the target at ``X``, ``batch x q x (d+1)``.

        Raises:
            InputDataError: a row of another fidelity than the training rows' (this model
                does not answer for the levels below it; its ``latent_model`` does).
        """
        self._check_level(X)
        self.sync_latents()
        self.eval()
        known = self._observed(X)
        with exact_solves():
            if known is not None and bool(known[0].all()):
                z = known[1].unsqueeze(0)  # every latent known: one "draw", no latent query
            else:
                latent_post = self.latent_model.posterior(
                    self._latent_inputs(X), observation_noise=known is not None
                )
                z = latent_post.rsample_from_base_samples(
                    torch.Size([self.n_samples]), self._base_samples(latent_post, X)
                )  # S x batch x q x 1
                if known is not None:
                    z = torch.where(known[0], known[1], z)
            Xa = self._augment(X, z)  # S x batch x q x (d + 2)
            extra = len(self.gp.train_inputs[0].shape[:-2]) - (Xa.dim() - 3)
            if extra > 0:  # a fantasy model: its batch dims go between S and the query's
                Xa = Xa.reshape(Xa.shape[0], *([1] * extra), *Xa.shape[1:])
            inner = self.gp.posterior(Xa, observation_noise=observation_noise)
        means = inner.mean.squeeze(-1)  # S x batch x q
        covs = inner.distribution.covariance_matrix
        mean = means.mean(0)
        centred = means - mean
        cov = covs.mean(0) + centred.unsqueeze(-1).mul(centred.unsqueeze(-2)).mean(0)
        cov = 0.5 * (cov + cov.transpose(-1, -2))
        post = GPyTorchPosterior(MultivariateNormal(mean, to_linear_operator(cov)))
        if posterior_transform is not None:
            return posterior_transform(post)
        return post

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs) -> ExplicitLatentGP:
        """A copy conditioned on new target observations (fantasies: ``Y`` may be batched).

        The new rows enter the inner GP as the training rows did (at the observed latent where
        there is one, else at the latent's posterior mean); the latent model is shared, not
        copied. This is what ``fantasize`` (and so ``qNegIntegratedPosteriorVariance`` and
        knowledge-gradient acquisitions) calls.
        """
        self.sync_latents()
        z = self._latent_point(X)
        new = copy.copy(self)
        new._modules = dict(self._modules)  # do not re-point the original's submodules
        with torch.no_grad():
            Xa = self._augment(X, z)
        new.gp = self.gp.condition_on_observations(Xa, Y, **kwargs)
        new._latent_state = None  # its inner GP holds rows that train_X does not
        return new

