"""Shared pieces of the mfgp GP models: the solver policy, per-fidelity means, input checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import gpytorch
import torch
from botorch.models.transforms.input import Normalize
from gpytorch.means import Mean
from torch import Tensor

from mfgp.exceptions import ShapeError

__all__ = [
    "CholeskyPosteriorMixin",
    "FidelityMean",
    "exact_solves",
    "feature_normalize",
    "check_xy",
]

#: Largest n for which exact Cholesky solves are used (GPyTorch's own default switches to
#: conjugate gradients above 800 points, which is slow on a CPU; BoTorch raises it to 4,096 on
#: import, globally). mfgp sets it only inside its own calls, with this context manager.
MAX_CHOLESKY_SIZE = 100_000


@contextlib.contextmanager
def exact_solves(max_size: int = MAX_CHOLESKY_SIZE) -> Iterator[None]:
    """Use Cholesky factorisations (not CG / Lanczos) for all solves inside the block."""
    with (
        gpytorch.settings.max_cholesky_size(max_size),
        gpytorch.settings.fast_computations(
            covar_root_decomposition=False, log_prob=False, solves=False
        ),
    ):
        yield


class CholeskyPosteriorMixin:
    """Make ``posterior`` use exact solves whatever GPyTorch's global settings are."""

    def posterior(self, X: Tensor, *args, **kwargs):  # noqa: D102
        with exact_solves():
            return super().posterior(X, *args, **kwargs)  # type: ignore[misc]


class FidelityMean(Mean):
    """A constant mean per fidelity, read from the last input column."""

    def __init__(self, num_fidelities: int) -> None:
        super().__init__()
        self.num_fidelities = num_fidelities
        self.register_parameter("constants", torch.nn.Parameter(torch.zeros(num_fidelities)))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.constants[x[..., -1].round().long()]


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
    if not torch.isfinite(train_X).all() or not torch.isfinite(train_Y).all():
        raise ShapeError("train_X and train_Y must be finite (NaN or inf found)")
