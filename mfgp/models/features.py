"""The map from raw composition features to a GP's input space, held by the model.

A fitted model must answer ``posterior(X)`` for the inputs a user has: raw featurizer output
plus the fidelity column (``dataset.inputs_for(formulas)``). The map to the GP's own input
space (a standardisation of each feature, or a pretrained extractor) is therefore part of the
model, not of the estimator that built it: :class:`FeatureMap` is that map and
:class:`FeatureMapModel` puts it in front of any BoTorch model.
"""

from __future__ import annotations

import torch
from botorch.models.model import FantasizeMixin, Model
from torch import Tensor

from mfgp.exceptions import ShapeError

__all__ = ["FeatureMap", "FeatureMapModel"]


class FeatureMap(torch.nn.Module):
    """``[features, fidelity] -> [g(features), fidelity]``, with ``g`` standardisation or a network.

    Args:
        mean: ``d`` per-feature means (standardisation: ``(x - mean) / std``).
        std: ``d`` per-feature standard deviations (zeros are replaced by 1).
        extractor: instead of a standardisation, a module mapping ``... x d`` features to
            ``... x k`` (e.g. a pretrained :class:`~mfgp.nn.FeatureExtractor`); its output is
            cast back to the input's dtype.

    Example:
        >>> X = torch.tensor([[1.0, 10.0, 0.0], [3.0, 30.0, 1.0]], dtype=torch.float64)
        >>> FeatureMap.standardize(X)(X)[:, :2]
        tensor([[-0.7071, -0.7071],
                [ 0.7071,  0.7071]], dtype=torch.float64)
    """

    def __init__(self, mean: Tensor | None = None, std: Tensor | None = None,
                 extractor: torch.nn.Module | None = None) -> None:  # fmt: skip
        super().__init__()
        if (extractor is None) == (mean is None or std is None):
            raise ShapeError("FeatureMap takes either mean and std, or an extractor")
        self.extractor = extractor
        if extractor is None:
            std = torch.where(std > 1e-12, std, torch.ones_like(std))
            self.register_buffer("mean", mean.detach().clone())
            self.register_buffer("std", std.detach().clone())
        else:
            self.register_buffer("mean", None)
            self.register_buffer("std", None)

    @classmethod
    def standardize(cls, X: Tensor) -> FeatureMap:
        """Standardise each feature column of contract inputs ``X`` (``n x (d + 1)``)."""
        feats = X.reshape(-1, X.shape[-1])[:, :-1]
        mean = feats.mean(0)
        std = feats.std(0) if feats.shape[0] > 1 else torch.ones_like(mean)
        return cls(mean=mean, std=std)

    @property
    def in_features(self) -> int | None:
        """The number of raw features the map takes (``None`` if the extractor does not say)."""
        if self.extractor is None:
            return int(self.mean.shape[-1])
        config = getattr(self.extractor, "config", None)
        return None if config is None else int(config["in_dim"])

    @property
    def data_kernel(self):
        """The kernel factory the mapped space asks for (an expert stack's mixture), or ``None``."""
        return getattr(self.extractor, "data_kernel", None)

    def forward(self, X: Tensor) -> Tensor:
        """Map the feature columns; the fidelity column (last) is kept as is."""
        feats = X[..., :-1]
        d = self.in_features
        if d is not None and feats.shape[-1] != d:
            raise ShapeError(
                f"the model takes {d} raw features and a fidelity column ({d + 1} columns); got "
                f"{X.shape[-1]} columns: pass raw featurizer output, e.g. dataset.inputs_for()"
            )
        if self.extractor is None:
            z = (feats - self.mean.to(feats)) / self.std.to(feats)
        else:
            weight = next(self.extractor.parameters(), None)
            inputs = feats if weight is None else feats.to(weight)  # the network's dtype
            z = self.extractor(inputs).to(X)
        return torch.cat([z, X[..., -1:]], dim=-1)


class FeatureMapModel(Model, FantasizeMixin):
    """A BoTorch model on raw contract inputs: ``posterior(X) = model.posterior(map(X))``.

    Every BoTorch acquisition works on it (fantasies included), so candidates can be scored in
    the space users have. ``conditioned_on`` (known-observation updates of the cached factor)
    is passed through when the wrapped model has it.

    Args:
        model: the GP in the mapped input space.
        feature_map: the map, typically a :class:`FeatureMap`.
    """

    def __init__(self, model: Model, feature_map: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.feature_map = feature_map

    @property
    def num_outputs(self) -> int:  # noqa: D102
        return self.model.num_outputs

    @property
    def batch_shape(self) -> torch.Size:  # noqa: D102
        return self.model.batch_shape

    @property
    def likelihood(self):
        """The wrapped model's likelihood."""
        return self.model.likelihood

    def transform_inputs(self, X: Tensor, input_transform=None) -> Tensor:  # noqa: D102
        return X  # the wrapped model transforms what it receives

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool | Tensor = False,
                  posterior_transform=None, **kwargs):  # fmt: skip
        """The wrapped model's posterior at the mapped inputs."""
        return self.model.posterior(
            self.feature_map(X), output_indices=output_indices,
            observation_noise=observation_noise, posterior_transform=posterior_transform,
            **kwargs,
        )  # fmt: skip

    def pool_factor(self, X: Tensor, **kwargs):
        """See :meth:`mfgp.models.base.CholeskyPosteriorMixin.pool_factor`."""
        with torch.no_grad():
            return self.model.pool_factor(self.feature_map(X), **kwargs)

    def factor_cross(self, a, b, rows=None) -> Tensor:
        """See :meth:`mfgp.models.base.CholeskyPosteriorMixin.factor_cross`.

        The factors hold the wrapped model's inputs already.
        """
        return self.model.factor_cross(a, b, rows)

    def posterior_covariance(self, X: Tensor, Z: Tensor, **kwargs) -> Tensor:
        """See :meth:`mfgp.models.base.CholeskyPosteriorMixin.posterior_covariance`."""
        with torch.no_grad():
            return self.model.posterior_covariance(self.feature_map(X), self.feature_map(Z),
                                                   **kwargs)  # fmt: skip

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs) -> FeatureMapModel:
        """Fantasies and conditioning, in the raw input space."""
        inner = self.model.condition_on_observations(self.feature_map(X), Y, **kwargs)
        return FeatureMapModel(inner, self.feature_map)

    def conditioned_on(self, X: Tensor, Y: Tensor, Yvar: Tensor | None = None) -> FeatureMapModel:
        """See :meth:`mfgp.models.base.CholeskyPosteriorMixin.conditioned_on`."""
        with torch.no_grad():
            Z = self.feature_map(X)
        return FeatureMapModel(self.model.conditioned_on(Z, Y, Yvar), self.feature_map)
