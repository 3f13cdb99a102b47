"""Variational GP classification (metal vs non-metal), single-task or multi-task.

A sparse variational GP (Hensman et al. 2015) with a Bernoulli likelihood and the probit link,
``P(y = 1 | f) = Phi(f)``, on the contract inputs ``(features, task index)``. With one task the
kernel is the ARD Matern-5/2 of :func:`~mfgp.kernels.default_data_kernel`; with several (PBE
metallicity, experimental metallicity, zero experimental gaps) it is the coregionalised
:class:`~mfgp.kernels.LCMKernel`, so cheap labels of one task inform another exactly as the
multi-task regression does.

The predictive probability integrates the latent uncertainty in closed form:
``P(y = 1) = Phi(mu / sqrt(1 + sigma^2))``.

Inducing points are a seeded, task-stratified subset of the training inputs and stay fixed
(their task column must remain an integer index); the variational distribution, the kernel and
the per-task constant means are learned by :func:`mfgp.fit.fit_variational`.
"""

from __future__ import annotations

import torch
from botorch.models.approximate_gp import ApproximateGPyTorchModel
from botorch.models.transforms.input import InputTransform
from botorch.utils.types import DEFAULT
from gpytorch.distributions import MultivariateNormal
from gpytorch.likelihoods import BernoulliLikelihood
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.kernels.coregional import LCMKernel, default_data_kernel
from mfgp.models.base import FidelityMean, check_xy, feature_normalize

__all__ = ["GPClassifier"]


class _SparseGP(ApproximateGP):
    def __init__(self, inducing: Tensor, mean_module, covar_module) -> None:
        q = CholeskyVariationalDistribution(inducing.shape[-2])
        strategy = VariationalStrategy(self, inducing, q, learn_inducing_locations=False)
        super().__init__(strategy)
        self.mean_module = mean_module
        self.covar_module = covar_module

    def forward(self, x: Tensor) -> MultivariateNormal:  # noqa: D102
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class GPClassifier(ApproximateGPyTorchModel):
    """Sparse variational GP classifier with a Bernoulli (probit) likelihood.

    A BoTorch ``Model``: :meth:`posterior` is the latent ``f`` (for acquisition functions, e.g.
    the most uncertain classification); :meth:`predict_proba` gives ``P(y = 1)``.

    Args:
        train_X: ``n x (d + 1)`` features then task index (one task: any constant).
        train_Y: ``n x 1`` labels in {0, 1}.
        num_inducing: inducing points (``min(num_inducing, n)``), stratified by task.
        rank: task-covariance rank when there are several tasks.
        seed: seeds the choice of inducing points.
        input_transform: default min-max normalisation of the features (bounds from train_X).

    Example:
        >>> X = torch.rand(40, 3, dtype=torch.float64); X[:, -1] = 0
        >>> clf = GPClassifier(X, (X[:, :1] > 0.5).double(), num_inducing=20)
        >>> clf.predict_proba(X[:4]).shape
        torch.Size([4])
    """

    def __init__(
        self,
        train_X: Tensor,
        train_Y: Tensor,
        *,
        num_inducing: int = 500,
        rank: int = 1,
        seed: int = 0,
        input_transform: InputTransform | None = DEFAULT,
    ) -> None:
        check_xy(train_X, train_Y)
        labels = torch.unique(train_Y)
        if not bool(((labels == 0) | (labels == 1)).all()):
            bad = labels[(labels != 0) & (labels != 1)][0].item()
            raise InputDataError(
                f"classification labels must be 0 or 1; found {bad!r} (threshold the values, "
                "e.g. (gap == 0) for metals)"
            )
        tasks = train_X[:, -1].round().long()
        if tasks.min() < 0:
            raise ShapeError(f"task index {int(tasks.min())} < 0 in the last column of train_X")
        T = int(tasks.max()) + 1
        d = train_X.shape[-1] - 1
        if input_transform is DEFAULT:
            input_transform = feature_normalize(train_X)
        from mfgp.fit import stratified_subset  # fit imports models: avoid a cycle at import

        pick = stratified_subset(tasks, num_inducing, seed)
        with torch.no_grad():
            inducing = train_X[pick] if input_transform is None else input_transform(train_X[pick])
        if T == 1:
            covar = default_data_kernel(d, active_dims=range(d))
        else:
            covar = LCMKernel([default_data_kernel(d)], T, rank=rank)
        super().__init__(
            model=_SparseGP(inducing.clone(), FidelityMean(T), covar),
            likelihood=BernoulliLikelihood(),
        )
        self.num_tasks = T
        self.train_inputs = (train_X,)
        self.train_targets = train_Y.squeeze(-1)
        if input_transform is not None:
            self.input_transform = input_transform
        self.to(train_X)

    @torch.no_grad()
    def predict_proba(self, X: Tensor, batch_size: int = 4096) -> Tensor:
        """``P(y = 1)`` at contract inputs ``n x (d + 1)`` (the last column picks the task)."""
        self.eval()
        normal = torch.distributions.Normal(0.0, 1.0)
        out = []
        for i in range(0, X.shape[0], batch_size):
            post = self.posterior(X[i : i + batch_size])
            mu, var = post.mean.squeeze(-1), post.variance.squeeze(-1)
            out.append(normal.cdf(mu / torch.sqrt(1.0 + var)))
        return torch.cat(out) if out else X.new_empty(0)
