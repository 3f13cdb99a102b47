"""The explicit-latent architecture (NARGP-style): a model of one quantity feeds another.

The target GP sees ``[x, z(x)]`` where ``z`` is the posterior of a *latent model*: a lower
fidelity of the same property, or a different property altogether (any BoTorch ``Model``).
Its kernel is ``k_rho(z, z') k_x(x, x') + k_delta(x, x')`` (Perdikaris et al. 2017), which lets
the target depend non-linearly on the latent. With ``linear=True`` (the default) ``k_rho`` is a
stationary Matern on ``z`` *plus* a scaled linear kernel ``s (z z' + c)``, so the AR1 form
``rho(x) z(x) + delta(x)`` (with ``rho`` a smooth GP over the features) is a special case: a
stationary kernel alone must learn a linear trend in ``z`` from data, and extrapolates it back to
the mean beyond the latent values seen in training.

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
from linear_operator import to_linear_operator
from torch import Tensor

from mfgp.kernels.coregional import default_data_kernel, matern_ard
from mfgp.models.base import check_xy, exact_solves, feature_normalize
from mfgp.models.multifidelity import FidelityGP

__all__ = ["ExplicitLatentGP"]


class _AugmentedGP(FidelityGP):
    """The inner GP on ``[features, latent, fidelity]`` with the NARGP kernel."""

    def __init__(self, train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None,
                 linear: bool = True):  # fmt: skip
        d = train_X.shape[-1] - 2  # features, latent, fidelity
        # active_dims on the ScaleKernel: it calls its base kernel's forward, which skips them
        k_rho = ScaleKernel(matern_ard(1), active_dims=torch.tensor([d]))
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
    ) -> None:
        check_xy(train_X, train_Y, train_Yvar)
        super().__init__()
        self.latent_model = latent_model
        self.latent_fidelity = latent_fidelity
        self.n_samples = n_samples
        self.seed = seed
        with torch.no_grad(), exact_solves():
            z = latent_model.posterior(self._latent_inputs(train_X)).mean
        self.gp = _AugmentedGP(self._augment(train_X, z), train_Y, train_Yvar, linear=linear)

    @property
    def num_outputs(self) -> int:  # noqa: D102
        return 1

    @property
    def likelihood(self):
        """The target's observation likelihood (that of the inner GP)."""
        return self.gp.likelihood

    def _latent_inputs(self, X: Tensor) -> Tensor:
        Xl = X.clone()
        Xl[..., -1] = float(self.latent_fidelity)
        return Xl

    @staticmethod
    def _augment(X: Tensor, z: Tensor) -> Tensor:
        Xb = X.expand(*z.shape[:-2], *X.shape[-2:])
        return torch.cat([Xb[..., :-1], z, torch.zeros_like(Xb[..., -1:])], dim=-1)

    def _base_samples(self, post, X: Tensor) -> Tensor:
        shape = torch.Size([self.n_samples]) + post.base_sample_shape
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        return torch.randn(shape, generator=g, dtype=X.dtype).to(X.device)

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool = False,
                  posterior_transform=None, **kwargs) -> GPyTorchPosterior:  # fmt: skip
        """Moment-matched joint Gaussian posterior of the target at ``X``, ``batch x q x (d+1)``."""
        self.eval()
        with exact_solves():
            latent_post = self.latent_model.posterior(self._latent_inputs(X))
            z = latent_post.rsample_from_base_samples(
                torch.Size([self.n_samples]), self._base_samples(latent_post, X)
            )  # S x batch x q x 1
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

        The new rows enter the inner GP at the latent's posterior mean, as the training rows
        did; the latent model is shared, not copied. This is what ``fantasize`` (and so
        ``qNegIntegratedPosteriorVariance`` and knowledge-gradient acquisitions) calls.
        """
        with torch.no_grad(), exact_solves():
            z = self.latent_model.posterior(self._latent_inputs(X)).mean
        new = copy.copy(self)
        new._modules = dict(self._modules)  # do not re-point the original's submodules
        new.gp = self.gp.condition_on_observations(self._augment(X, z), Y, **kwargs)
        return new
