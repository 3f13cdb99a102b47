"""Deep kernel learning done carefully: fine-tune a pretrained extractor with the GP.

Deep kernel learning (Wilson et al. 2016) trains the feature network through the GP marginal
likelihood. On a few hundred labels it over-fits: the network can map the training points to
features where the GP explains everything as signal (Ober, Rasmussen and van der Wilk 2021). So
:func:`finetune_extractor` starts from the *pretrained* extractor and the GP fitted on its
frozen features, and guards the joint steps three ways:

* **early stopping on held-out target rows**: every ``eval_every`` steps the GP, conditioned on
  the training rows only, predicts a seeded validation share of the target fidelity; the state
  (network and hyperparameters) with the lowest validation NLPD is kept, and training stops
  after ``patience`` evaluations without improvement. Step 0, the frozen extractor, is always a
  candidate, so fine-tuning can only be kept when it helps on held-out rows;
* **weight decay** (AdamW) on the network's weights, pulling them back towards zero;
* a **small learning rate** for the network (``lr_extractor``) and a larger one for the GP.

The validation rows are used for model selection only; the returned model is conditioned on
*all* rows with the selected features.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from mfgp._progress import bar as progress_bar
from mfgp.exceptions import InputDataError
from mfgp.nn.extractor import FeatureExtractor

__all__ = ["FinetuneReport", "finetune_extractor"]


@dataclass
class FinetuneReport:
    """What :func:`finetune_extractor` did.

    Attributes:
        val_nlpd: validation NLPD (per row, original units) at each evaluation; entry 0 is the
            frozen extractor.
        steps: the step of each evaluation.
        best_step: the step whose state was kept (0: fine-tuning did not help).
        n_val: validation rows.
    """

    val_nlpd: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    best_step: int = 0
    n_val: int = 0


def _inputs(fx: FeatureExtractor, X: Tensor) -> Tensor:
    return torch.cat([fx(X[:, :-1]).to(X), X[:, -1:]], dim=-1)


@torch.no_grad()
def _val_nlpd(model, fx, X_fit, y_fit, X_val, y_val) -> float:
    model.train()  # BoTorch transforms the training inputs when entering eval mode
    model.set_train_data(_inputs(fx, X_fit), y_fit, strict=False)
    model.eval()
    post = model.posterior(_inputs(fx, X_val), observation_noise=True)
    mu, var = post.mean.squeeze(-1), post.variance.squeeze(-1).clamp_min(1e-12)
    nlpd = 0.5 * (torch.log(2 * math.pi * var) + (y_val - mu) ** 2 / var)
    return float(nlpd.mean())


def finetune_extractor(
    model,
    extractor: FeatureExtractor,
    X: Tensor,
    *,
    steps: int = 300,
    lr_extractor: float = 1e-4,
    lr_gp: float = 1e-2,
    weight_decay: float = 1e-3,
    batch_size: int = 1000,
    val_fraction: float = 0.15,
    eval_every: int = 20,
    patience: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> tuple[FeatureExtractor, FinetuneReport]:
    """Fine-tune a copy of ``extractor`` jointly with ``model``'s hyperparameters.

    Args:
        model: a fitted exact GP (:class:`~mfgp.models.FidelityGP` family) whose training inputs
            are ``extractor``'s features of ``X`` plus the fidelity column, row for row.
        extractor: the pretrained extractor (left unchanged: a copy is tuned).
        X: ``n x (d + 1)`` raw composition features and fidelity index, the rows of ``model``.
        steps: maximum joint Adam steps.
        lr_extractor: Adam learning rate of the network.
        lr_gp: Adam learning rate of the GP hyperparameters.
        weight_decay: AdamW weight decay on the network.
        batch_size: rows of each marginal-likelihood step (a random subset, fidelity-stratified
            by construction of the random draw).
        val_fraction: share of the *target* fidelity's rows held out for early stopping.
        eval_every: steps between validation checks.
        patience: checks without improvement before stopping.
        seed: seeds the split and the batches.
        progress: show a progress bar.

    Returns:
        The tuned extractor (frozen, eval mode) and a :class:`FinetuneReport`. ``model`` is left
        conditioned on all rows with the tuned features (its hyperparameters are the kept ones).
    """
    model.train()
    y_all = model.train_targets
    n = y_all.shape[-1]
    if X.shape[0] != n:
        raise InputDataError(
            f"X has {X.shape[0]} rows but the model was trained on {n}: pass the raw features "
            "of the model's training rows, in order"
        )
    g = torch.Generator().manual_seed(seed)
    top = torch.nonzero(X[:, -1] == X[:, -1].max()).squeeze(-1)
    n_val = max(1, round(val_fraction * top.numel()))
    if top.numel() - n_val < 2:
        raise InputDataError(
            f"{top.numel()} target rows are too few to hold out {n_val} for early stopping"
        )
    val = top[torch.randperm(top.numel(), generator=g)[:n_val].to(top.device)]
    keep = torch.ones(n, dtype=torch.bool, device=X.device)
    keep[val] = False
    fit_rows = torch.nonzero(keep).squeeze(-1)
    y_val_orig = model.outcome_transform.untransform(y_all[val].unsqueeze(-1))[0].squeeze(-1)

    fx = copy.deepcopy(extractor)
    for p in fx.body.parameters():
        p.requires_grad_(True)
    fx.train()
    gp_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": list(fx.body.parameters()), "lr": lr_extractor,
             "weight_decay": weight_decay},
            {"params": gp_params, "lr": lr_gp, "weight_decay": 0.0},
        ]
    )  # fmt: skip
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    report = FinetuneReport(n_val=int(n_val))

    def snapshot():
        return copy.deepcopy(fx.state_dict()), copy.deepcopy(model.state_dict())

    def check(step: int) -> bool:
        """Record the validation NLPD; ``True`` when it is the best so far."""
        fx.eval()
        score = _val_nlpd(model, fx, X[fit_rows], y_all[fit_rows], X[val], y_val_orig)
        fx.train()
        report.val_nlpd.append(score)
        report.steps.append(step)
        return score <= min(report.val_nlpd)

    check(0)
    best = snapshot()
    waited = 0
    for step in progress_bar(range(1, steps + 1), progress=progress, desc="finetune",
                             leave=False):
        b = fit_rows[torch.randperm(fit_rows.numel(), generator=g)[:batch_size].to(X.device)]
        model.train()
        inputs = _inputs(fx, X[b])
        model.set_train_data(inputs, y_all[b], strict=False)
        opt.zero_grad()
        loss = -mll(model(inputs), y_all[b], inputs)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            if check(step):
                best, report.best_step, waited = snapshot(), step, 0
            else:
                waited += 1
                if waited >= patience:
                    break
    fx.load_state_dict(best[0])
    model.load_state_dict(best[1])
    fx.eval()
    for p in fx.parameters():
        p.requires_grad_(False)
    model.train()
    with torch.no_grad():
        model.set_train_data(_inputs(fx, X), y_all, strict=False)
    model.eval()
    return fx, report
