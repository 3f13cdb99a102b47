"""Marginal predictions in bounded memory, on the model's device.

Screening, cross-validation and the estimators' ``predict`` want one mean and one variance per
row, never a covariance across rows. :func:`predict_marginals` asks the model for ``b x 1 x d``
batches (each row its own one-point posterior: the diagonal only), in chunks sized so that the
largest intermediate (``draws x rows x training rows``) stays under ``max_bytes``.
"""

from __future__ import annotations

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
import torch
from botorch.models.model import Model
from torch import Tensor

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.linalg import exact_solves

__all__ = ["model_device", "predict_marginals", "training_rows"]


def model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's first floating parameter or buffer."""
    for t in (*model.parameters(), *model.buffers()):
        if t is not None and t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float64


def training_rows(model: torch.nn.Module) -> int:
    """The largest training set among the model's exact GPs (the cost of one query row)."""
    n = 1
    for module in model.modules():
        targets = getattr(module, "train_targets", None)
        if isinstance(targets, Tensor):
            n = max(n, targets.shape[-1])
    return n


def predict_marginals(
    model: Model,
    X: Tensor,
    *,
    observation_noise: bool = False,
    batch_size: int = 4096,
    max_bytes: int = 2**28,
) -> tuple[Tensor, Tensor]:
    """Posterior mean and variance of every row of ``X``, computed one row at a time, chunked.

    Args:
        model: any single-output BoTorch model on contract inputs.
        X: ``n x (d + 1)`` inputs; moved to the model's device and dtype.
        observation_noise: the predictive of a new observation (noise included).
        batch_size: at most this many rows per posterior call.
        max_bytes: bound on the largest intermediate of one call: the rows per call are cut
            so that ``draws x rows x training rows`` floats fit (draws: the latent samples of
            an explicit-latent model, 1 otherwise).

    Returns:
        ``(mean, variance)``, each ``n``, on the model's device. Each row's values do not depend
        on the other rows or on the chunking (an explicit-latent model uses the same latent base
        samples for every one-row posterior).

    Example:
        >>> mean, var = predict_marginals(model, X)  # doctest: +SKIP
    """
    if X.dim() != 2:
        raise ShapeError(f"X must be n x (d + 1) contract inputs; got {tuple(X.shape)}")
    if batch_size < 1 or max_bytes < 1:
        raise InputDataError(
            f"batch_size and max_bytes must be >= 1; got {batch_size}, {max_bytes}"
        )
    device, dtype = model_device(model)
    X = X.to(device=device, dtype=dtype)
    n = X.shape[0]
    mean = torch.empty(n, dtype=dtype, device=device)
    var = torch.empty(n, dtype=dtype, device=device)
    groups = [(torch.arange(n, device=device), getattr(model, "n_samples", 1))]
    split = getattr(model, "latent_known", None)
    if split is not None:  # rows whose latent is observed need no latent draws
        known = split(X)
        groups = [(torch.nonzero(m).squeeze(-1), d)
                  for m, d in ((~known, model.n_samples), (known, 1)) if bool(m.any())]  # fmt: skip
    per_row = training_rows(model) * X.element_size() * 4
    with torch.no_grad(), exact_solves():
        for rows, draws in groups:
            chunk = max(1, min(batch_size, max_bytes // (per_row * draws)))
            for i in range(0, rows.numel(), chunk):
                r = rows[i : i + chunk]
                post = model.posterior(X[r].unsqueeze(-2), observation_noise=observation_noise)
                mean[r] = post.mean.reshape(-1)
                var[r] = post.variance.reshape(-1)
    return mean, var
