"""Exact GPs over (features, fidelity): the multi-task (LCM) and difference (AR1) architectures.

Both are one class, :class:`FidelityGP`, with a different coregionalisation kernel: the
posterior is exact and joint across points *and* fidelities, so composite quantities (a
difference of two fidelities, a reaction energy) get their correct covariance.
"""

from __future__ import annotations

from collections.abc import Callable

import gpytorch
import torch
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.model import FantasizeMixin
from botorch.models.transforms.input import InputTransform
from botorch.models.transforms.outcome import OutcomeTransform, Standardize
from botorch.utils.types import DEFAULT
from gpytorch.constraints import GreaterThan
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import Kernel
from gpytorch.likelihoods import (
    FixedNoiseGaussianLikelihood,
    GaussianLikelihood,
    HadamardGaussianLikelihood,
    Likelihood,
)
from gpytorch.means import ConstantMean, Mean
from gpytorch.models import ExactGP
from gpytorch.priors import LogNormalPrior
from torch import Tensor

from mfgp.exceptions import InputDataError
from mfgp.kernels.coregional import AR1Kernel, LCMKernel, default_data_kernel
from mfgp.models.base import (
    CholeskyPosteriorMixin,
    FidelityMean,
    check_fidelity_column,
    check_xy,
    feature_normalize,
)

__all__ = ["FidelityGP", "SingleFidelityGP", "AR1GP", "MultiTaskGP"]


def _noise_prior() -> LogNormalPrior:
    return LogNormalPrior(loc=-4.0, scale=1.0)


class FidelityGP(CholeskyPosteriorMixin, ExactGP, GPyTorchModel, FantasizeMixin):
    """An exact GP on ``n x (d + 1)`` inputs whose last column is the fidelity index.

    Parts are passed in; ``None`` builds the documented default.

    Args:
        train_X: ``n x (d + 1)`` features then fidelity index (float64 recommended).
        train_Y: ``n x 1`` observations.
        train_Yvar: ``n x 1`` known noise variances; ``None`` learns one noise level per fidelity.
        covar_module: the kernel (default: :class:`~mfgp.kernels.AR1Kernel`).
        num_fidelities: number of fidelities (default: largest index in ``train_X`` + 1).
        mean_module: default a constant per fidelity.
        likelihood: default per-fidelity Gaussian noise (log-normal prior), or fixed noise.
        input_transform: default min-max normalisation of the features (bounds from train_X).
        outcome_transform: default ``Standardize(m=1)``.
        data_kernel: ``data_kernel(d, active_dims=None)`` makes each kernel on the features
            (default :func:`~mfgp.kernels.default_data_kernel`; a mixture of experts passes
            :func:`~mfgp.kernels.experts.mixture_kernel`'s).

    Example:
        >>> X = torch.rand(20, 2, dtype=torch.float64); X[:, -1] = (X[:, 0] > 0.5).double()
        >>> model = AR1GP(X, torch.sin(6 * X[:, :1]))
        >>> model.posterior(X[:3]).mean.shape
        torch.Size([3, 1])
    """

    _num_outputs = 1
    #: whether the fidelity column indexes levels of this model (not for SingleFidelityGP)
    _uses_fidelity = True

    def __init__(
        self,
        train_X: Tensor,
        train_Y: Tensor,
        train_Yvar: Tensor | None = None,
        *,
        covar_module: Kernel | None = None,
        num_fidelities: int | None = None,
        mean_module: Mean | None = None,
        likelihood: Likelihood | None = None,
        input_transform: InputTransform | None = DEFAULT,
        outcome_transform: OutcomeTransform | None = DEFAULT,
        data_kernel: Callable[..., Kernel] | None = None,
    ) -> None:
        check_xy(train_X, train_Y, train_Yvar)
        T = int(train_X[:, -1].max().item()) + 1 if num_fidelities is None else num_fidelities
        self.num_fidelities = T
        check_fidelity_column(train_X, T if self._uses_fidelity else None)
        d = train_X.shape[-1] - 1
        if input_transform is DEFAULT:
            input_transform = feature_normalize(train_X)
        if outcome_transform is DEFAULT:
            outcome_transform = Standardize(m=1)
        with torch.no_grad():
            tX = self.transform_inputs(X=train_X, input_transform=input_transform)
        if outcome_transform is not None:
            outcome_transform.train()
            train_Y, train_Yvar = outcome_transform(Y=train_Y, Yvar=train_Yvar, X=tX)
        train_Y = train_Y.squeeze(-1)  # single output: ExactGP wants n targets
        train_Yvar = None if train_Yvar is None else train_Yvar.squeeze(-1)
        if likelihood is None:
            if train_Yvar is not None:
                # GPyTorch raises known variances below 1e-6 (in standardised units, so a
                # known noise of 1e-6 on a property with a spread of a few units) without
                # saying so; keep the given values and let the jittered Cholesky cope
                with gpytorch.settings.min_fixed_noise(float_value=1e-8, double_value=1e-12):
                    likelihood = FixedNoiseGaussianLikelihood(noise=train_Yvar)
            elif T > 1:
                likelihood = HadamardGaussianLikelihood(
                    num_tasks=T,
                    task_feature_index=-1,
                    noise_prior=_noise_prior(),
                    noise_constraint=GreaterThan(1e-6),
                )
            else:
                likelihood = GaussianLikelihood(
                    noise_prior=_noise_prior(), noise_constraint=GreaterThan(1e-6)
                )
        ExactGP.__init__(self, train_inputs=train_X, train_targets=train_Y, likelihood=likelihood)
        self.mean_module = FidelityMean(T) if mean_module is None else mean_module
        if covar_module is None:
            make = data_kernel or default_data_kernel
            covar_module = AR1Kernel([make(d) for _ in range(T)])
        self.covar_module = covar_module
        if outcome_transform is not None:
            self.outcome_transform = outcome_transform
        if input_transform is not None:
            self.input_transform = input_transform
        self.to(train_X)

    def forward(self, x: Tensor) -> MultivariateNormal:  # noqa: D102
        if self.training:
            x = self.transform_inputs(x)
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class AR1GP(FidelityGP):
    """The difference architecture: Kennedy-O'Hagan AR1 over ``T`` ordered fidelities.

    ``f_t(x) = rho_t f_{t-1}(x) + delta_t(x)``, one ARD Matern-5/2 ``delta_t`` per level, ``rho_t``
    learned, a noise level per fidelity; written as one joint kernel (:class:`AR1Kernel`).

    The default mean is one constant shared by all levels (any offset of a level is carried by
    its ``delta_t``). Free per-fidelity constants compete with ``rho`` when the top level has
    few points: on the two-fidelity Forrester function (4 high-fidelity points) they pull
    ``rho`` towards 1 and miss the accuracy that ``tests/models/test_models.py`` asserts for the
    shared constant.

    Args:
        rho: ``"constant"`` (one ``rho_t`` per level) or ``"linear"``: ``rho_t(x)`` linear in the
            normalised features with a shrinkage prior (see :class:`AR1Kernel`).
        train_X, train_Y, train_Yvar, num_fidelities, kwargs: as in :class:`FidelityGP`.
    """

    def __init__(self, train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None,
                 num_fidelities: int | None = None, rho: str = "constant",
                 **kwargs) -> None:  # fmt: skip
        check_xy(train_X, train_Y, train_Yvar)
        if rho not in ("constant", "linear"):
            raise InputDataError(f"rho must be 'constant' or 'linear'; got {rho!r}")
        T = int(train_X[:, -1].max().item()) + 1 if num_fidelities is None else num_fidelities
        d = train_X.shape[-1] - 1
        make = kwargs.get("data_kernel") or default_data_kernel
        kernels = [make(d) for _ in range(T)]
        rho_dims = d if rho == "linear" else None
        kwargs.setdefault("covar_module", AR1Kernel(kernels, rho_dims=rho_dims))
        kwargs.setdefault("mean_module", ConstantMean())
        super().__init__(train_X, train_Y, train_Yvar, num_fidelities=T, **kwargs)

    @property
    def rho(self) -> Tensor:
        """The learned ``rho_1 .. rho_{T-1}`` (scale of each level on the one below)."""
        return self.covar_module.rho.detach()


class MultiTaskGP(FidelityGP):
    """The multi-task architecture: linear model of coregionalisation across fidelities/tasks.

    Heterotopic data are natural here: each row carries its own task index, so tasks may be
    observed at different compositions.

    Args:
        rank: rank of each task covariance ``W W^T + diag(v)``.
        num_latents: number ``Q`` of latent processes (``1`` is the intrinsic model, ICM).
    """

    def __init__(self, train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None,
                 num_fidelities: int | None = None, rank: int = 1, num_latents: int = 1,
                 **kwargs) -> None:  # fmt: skip
        check_xy(train_X, train_Y, train_Yvar)
        T = int(train_X[:, -1].max().item()) + 1 if num_fidelities is None else num_fidelities
        d = train_X.shape[-1] - 1
        make = kwargs.get("data_kernel") or default_data_kernel
        kernels = [make(d) for _ in range(num_latents)]
        kwargs.setdefault("covar_module", LCMKernel(kernels, T, rank=rank))
        super().__init__(train_X, train_Y, train_Yvar, num_fidelities=T, **kwargs)


class SingleFidelityGP(FidelityGP):
    """The single-fidelity baseline: ARD Matern-5/2 on the features, learned noise.

    Takes contract inputs (features, fidelity index) and ignores the fidelity column, so the
    same tensors serve every model; train it on the rows of one fidelity.
    """

    _uses_fidelity = False

    def __init__(self, train_X: Tensor, train_Y: Tensor, train_Yvar: Tensor | None = None,
                 **kwargs) -> None:  # fmt: skip
        check_xy(train_X, train_Y, train_Yvar)
        d = train_X.shape[-1] - 1
        make = kwargs.get("data_kernel") or default_data_kernel
        kwargs.setdefault("covar_module", make(d, active_dims=range(d)))
        kwargs.setdefault("mean_module", ConstantMean())
        super().__init__(train_X, train_Y, train_Yvar, num_fidelities=1, **kwargs)
