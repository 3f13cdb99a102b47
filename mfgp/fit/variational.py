"""The variational trainer: mini-batch Adam on the ELBO (sparse GP classifiers)."""

from __future__ import annotations

import math

from gpytorch.mlls import VariationalELBO

from mfgp._rng import seeded_global_rng
from mfgp.fit.engine import FitReport, adam_epochs

__all__ = ["fit_variational"]


def fit_variational(
    model,
    *,
    epochs: int = 30,
    batch_size: int = 1024,
    lr: float = 0.02,
    min_steps: int = 300,
    seed: int = 0,
    progress: bool = False,
) -> FitReport:
    """Fit a sparse variational GP (e.g. :class:`~mfgp.models.GPClassifier`) by the ELBO.

    Adam on seeded mini-batches: the variational distribution, kernel and mean are learned
    together; the inducing points stay where the model put them.

    Args:
        model: a BoTorch ``ApproximateGPyTorchModel`` with ``train_inputs`` and ``train_targets``.
        epochs: passes over the training rows.
        batch_size: rows per step.
        lr: Adam learning rate.
        min_steps: run more epochs if needed to take at least this many Adam steps (small data
            sets have one step per epoch).
        seed: seeds the batches and GPyTorch's random start of the variational mean (drawn
            from torch's global generator at the first training call); the caller's global
            random state is left as it was.
        progress: show a progress bar over epochs.

    Returns:
        A :class:`FitReport` whose ``loss`` is the final epoch's negative ELBO per row and
        ``losses`` the per-epoch history.
    """
    X, y = model.train_inputs[0], model.train_targets
    n = X.shape[0]
    model.train()
    elbo = VariationalELBO(model.likelihood, model.model, num_data=n)
    epochs = max(epochs, math.ceil(min_steps / math.ceil(n / batch_size)))
    with seeded_global_rng(seed, X.device):
        history = adam_epochs(lambda b: -elbo(model(X[b]), y[b]),
                              [p for p in model.parameters() if p.requires_grad], n,
                              epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                              device=X.device, progress=progress)  # fmt: skip
    model.eval()
    return FitReport(loss=history[-1], losses=history, n_fit=n, n_total=n,
                     iterations=len(history))  # fmt: skip
