"""Linear algebra policy of mfgp: exact Cholesky solves and a jittered factorisation.

The lowest layer of the GP code: the models and the trainers both use it, neither is used by it.
"""

from __future__ import annotations

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
import contextlib
import warnings
from collections.abc import Iterator

import gpytorch
import torch
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NotPSDError
from torch import Tensor

from mfgp.exceptions import NumericalError

__all__ = ["MAX_CHOLESKY_SIZE", "exact_solves", "robust_cholesky"]

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


def robust_cholesky(K: Tensor) -> Tensor:
    """Cholesky of a covariance with absolute jitter retries, then jitter relative to its scale.

    Kernels evaluated through ``|x|^2 + |x'|^2 - 2 x.x'`` lose precision for near-duplicate
    inputs and short lengthscales; the resulting small negative eigenvalues are covered by
    a diagonal jitter of up to 1% of the mean variance, with a warning naming the amount.
    """
    try:
        return psd_safe_cholesky(K, max_tries=3)
    except NotPSDError:
        scale = float(K.diagonal(dim1=-2, dim2=-1).mean())
        for rel in (1e-5, 1e-4, 1e-3, 1e-2):
            L, info = torch.linalg.cholesky_ex(
                K + rel * scale * torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
            )
            if not bool(info.any()):
                warnings.warn(
                    f"training covariance not positive definite in floating point; added "
                    f"jitter {rel:g} x its mean variance ({rel * scale:.3g}) to factorise it",
                    stacklevel=4,
                )
                return L
        raise NumericalError(
            "training covariance is not positive definite even with 1% jitter; rescale the "
            "inputs, drop near-duplicate rows or raise the noise lower bound"
        ) from None


