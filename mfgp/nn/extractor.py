"""An MLP feature extractor, pretrained on a large low-fidelity set, used as the GP input space.

Deep kernel learning over-fits when the network is trained on the small target set through the
GP marginal likelihood. mfgp's default guards against that three ways: the network is trained
on the *abundant* low fidelity (tens of thousands of DFT values) with weight decay and early
stopping on a held-out split, and is then **frozen**; the GP learns only its kernel on top.

The network trains in float32 (an ordinary MLP regression); its features are cast to the
data's dtype (float64 by default) before any GP algebra. Save and load use safetensors for the
weights and JSON for the configuration: no pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mfgp._io import atomic_write
from mfgp._progress import bar as progress_bar
from mfgp._rng import seeded_global_rng
from mfgp.exceptions import InputDataError, ShapeError

__all__ = [
    "FeatureExtractor",
    "PretrainReport",
    "fit_network",
    "load_extractor",
    "pretrain",
    "save_extractor",
    "split_rows",
]


class FeatureExtractor(nn.Module):
    """Standardise composition features, then an MLP to ``out_dim`` learned features.

    Args:
        in_dim: number of input features.
        hidden: widths of the hidden layers.
        out_dim: number of learned features (the GP's input dimension).
        x_mean: per-feature mean for standardisation (default 0).
        x_std: per-feature std for standardisation (default 1).

    Example:
        >>> fx = FeatureExtractor(132, hidden=(64,), out_dim=8)
        >>> fx(torch.zeros(5, 132)).shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...] = (256, 128),
        out_dim: int = 16,
        x_mean: Tensor | None = None,
        x_std: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "hidden": list(hidden), "out_dim": out_dim}
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers += [nn.Linear(width, out_dim), nn.Tanh()]  # bounded features suit stationary kernels
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(out_dim, 1)  # used in pretraining only
        self.register_buffer("x_mean", torch.zeros(in_dim) if x_mean is None else x_mean.clone())
        self.register_buffer("x_std", torch.ones(in_dim) if x_std is None else x_std.clone())

    @classmethod
    def standardized_on(cls, X: Tensor, hidden: tuple[int, ...] = (256, 128),
                        out_dim: int = 16) -> FeatureExtractor:  # fmt: skip
        """An untrained extractor whose input standardisation is that of the rows ``X``."""
        std = X.std(0)
        return cls(X.shape[1], hidden, out_dim, x_mean=X.mean(0),
                   x_std=torch.where(std > 1e-8, std, torch.ones_like(std)))  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """Learned features ``... x out_dim`` (in the dtype of the network's weights)."""
        if x.shape[-1] != self.config["in_dim"]:
            raise ShapeError(
                f"the extractor takes {self.config['in_dim']} features, got {x.shape[-1]}"
            )
        w = self.head.weight
        z = (x.to(w) - self.x_mean) / self.x_std
        return self.body(z)

    @torch.no_grad()
    def transform(self, x: Tensor, batch_size: int = 65536) -> Tensor:
        """Features for GP inputs: evaluated in batches, returned in ``x``'s dtype and device."""
        self.eval()
        parts = [self(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        out = torch.cat(parts) if parts else torch.empty(0, self.config["out_dim"])
        return out.to(dtype=x.dtype, device=x.device)

    def predict(self, x: Tensor) -> Tensor:
        """The pretraining head's prediction of the low-fidelity target, ``... x 1``."""
        return self.head(self(x))


@dataclass
class PretrainReport:
    """Pretraining history: per-epoch train and validation MSE, and the epoch kept."""

    train_mse: list[float] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)
    best_epoch: int = 0
    y_mean: float = 0.0
    y_std: float = 1.0


def pretrain(
    X: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    hidden: tuple[int, ...] = (256, 128),
    out_dim: int = 16,
    epochs: int = 60,
    batch_size: int = 512,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    val_fraction: float = 0.1,
    patience: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> tuple[FeatureExtractor, PretrainReport]:
    """Train a :class:`FeatureExtractor` to regress ``y`` (a low fidelity) from ``X``.

    AdamW with weight decay, a seeded validation split, and early stopping: the weights of the
    epoch with the lowest validation MSE are kept. Targets are standardised for training.

    Args:
        X: ``n x d`` composition features.
        y: ``n`` (or ``n x 1``) low-fidelity values.
        hidden: hidden layer widths.
        out_dim: number of learned features.
        epochs: maximum passes over the training rows.
        batch_size: rows per AdamW step.
        lr: peak learning rate (cosine schedule).
        weight_decay: AdamW weight decay.
        val_fraction: share of rows held out for early stopping.
        patience: epochs without improvement before stopping.
        seed: seeds the split, the initialisation and the batches.
        progress: show a progress bar.

    Returns:
        The frozen extractor (eval mode, ``requires_grad`` off) and a :class:`PretrainReport`.
    """
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(-1, 1)
    if X.dim() != 2 or X.shape[0] != y.shape[0]:
        raise ShapeError(f"X must be n x d and y n; got {tuple(X.shape)} and {tuple(y.shape)}")
    if X.shape[0] < 20:
        raise InputDataError(f"pretraining needs at least 20 rows, got {X.shape[0]}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise InputDataError("pretraining data contain NaN or inf")
    tr, val = split_rows(X.shape[0], val_fraction, seed)
    with seeded_global_rng(seed, X.device):  # layer initialisation; the caller's stream kept
        model = FeatureExtractor.standardized_on(X[tr], hidden, out_dim)
    report = fit_network(model, X, y, tr, val, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, patience=patience, seed=seed,
                         progress=progress)  # fmt: skip
    return model, report


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded ``(train, validation)`` split of ``n`` row indices (at least one of each)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = min(max(1, int(round(val_fraction * n))), n - 1)
    return perm[n_val:], perm[:n_val]


def fit_network(model: nn.Module, X: Tensor, y: Tensor, train: Tensor, val: Tensor, *,
                epochs: int = 60, batch_size: int = 512, lr: float = 2e-3,
                weight_decay: float = 1e-4, patience: int = 8, seed: int = 0,
                progress: bool = True, desc: str = "pretrain") -> PretrainReport:  # fmt: skip
    """Train ``model.predict(X) ~ y`` on rows ``train`` with early stopping on rows ``val``.

    AdamW with a cosine schedule on standardised targets; the weights of the epoch with the
    lowest validation MSE are kept, and the model is returned frozen (eval mode,
    ``requires_grad`` off). ``model`` must have a ``predict`` method (features -> head).

    Returns:
        The :class:`PretrainReport` (MSE in standardised units, target mean and std).
    """
    g = torch.Generator().manual_seed(seed)
    y = y.reshape(-1, 1)
    report = PretrainReport(y_mean=float(y[train].mean()), y_std=float(y[train].std()))
    ys = (y - report.y_mean) / report.y_std
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    best = (float("inf"), None)
    bar = progress_bar(range(epochs), progress=progress, desc=desc, leave=False)
    for epoch in bar:
        model.train()
        order = train[torch.randperm(train.numel(), generator=g)]
        total = 0.0
        for i in range(0, order.numel(), batch_size):
            b = order[i : i + batch_size]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model.predict(X[b]), ys[b])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
        sched.step()
        model.eval()
        with torch.no_grad():
            v = sum(
                float(nn.functional.mse_loss(model.predict(X[val[i : i + 8192]]),
                                             ys[val[i : i + 8192]], reduction="sum"))
                for i in range(0, val.numel(), 8192)
            ) / val.numel()  # fmt: skip
        report.train_mse.append(total / train.numel())
        report.val_mse.append(v)
        bar.set_postfix(val_mse=f"{v:.4f}")
        if v < best[0]:
            best = (v, {k: t.clone() for k, t in model.state_dict().items()})
            report.best_epoch = epoch
        elif epoch - report.best_epoch >= patience:
            break
    model.load_state_dict(best[1])
    model.eval()
    model.requires_grad_(False)
    return report


def save_extractor(model: FeatureExtractor, directory: str | os.PathLike) -> Path:
    """Write ``weights.safetensors`` and ``config.json`` into ``directory`` (atomically)."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(directory / "weights.safetensors", "wb") as fh:
        fh.write(save(state))
    with atomic_write(directory / "config.json") as fh:
        json.dump({"format": "mfgp.FeatureExtractor", "version": 1, **model.config}, fh, indent=2)
    return directory


def load_extractor(directory: str | os.PathLike) -> FeatureExtractor:
    """Load an extractor saved by :func:`save_extractor` (frozen, eval mode)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    try:
        config = json.loads((directory / "config.json").read_text())
    except FileNotFoundError:
        raise InputDataError(f"no config.json in {directory}; save with save_extractor") from None
    if config.get("format") != "mfgp.FeatureExtractor":
        raise InputDataError(f"{directory / 'config.json'} is not an mfgp extractor config")
    model = FeatureExtractor(config["in_dim"], tuple(config["hidden"]), config["out_dim"])
    model.load_state_dict(load_file(str(directory / "weights.safetensors")))
    model.eval()
    model.requires_grad_(False)
    return model
