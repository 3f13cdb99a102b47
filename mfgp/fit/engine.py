"""The fitting engine every mfgp trainer runs on: L-BFGS and Adam, restarts, jitter, reports.

The trainers (:mod:`mfgp.fit.exact`, :mod:`mfgp.fit.recursive`, :mod:`mfgp.fit.variational`)
only say *what* is minimised and over which parameters; this module does the rest, once:

* :func:`lbfgs`: strong-Wolfe L-BFGS on a closure, optionally moving only masked entries of
  shared parameter tensors (a level's own ``rho`` in a vector of all levels' ``rho``);
* :func:`best_of_starts`: the start from the current state plus ``restarts`` seeded random
  ones (:func:`randomize`), each retried with growing Cholesky jitter
  (:func:`with_jitter`), keeping the best state;
* :func:`adam_epochs`: seeded mini-batch Adam for variational objectives;
* :class:`FitReport`: what every trainer returns, in one unit (negative log likelihood or ELBO
  per row).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import gpytorch
import torch
from linear_operator.utils.errors import NanError, NotPSDError
from torch import Tensor

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.exceptions import NumericalError
from mfgp.kernels.coregional import AR1Kernel

__all__ = ["JITTERS", "FitReport", "adam_epochs", "best_of_starts", "lbfgs", "randomize",
           "stratified_subset", "with_jitter"]  # fmt: skip

JITTERS = (1e-8, 1e-6, 1e-4, 1e-3)


@dataclass
class FitReport:
    """What a trainer did (:func:`~mfgp.fit.fit_gp` and the others).

    Attributes:
        loss: best negative marginal log likelihood per data point (on the fitting subset).
        losses: final loss of each start.
        n_fit: rows used for the hyperparameters; n_total: rows conditioned on.
        jitter: Cholesky jitter that worked.
        iterations: L-BFGS iterations of the best start.
        failed_starts: starts that failed numerically (skipped; ``inf`` in ``losses``).

    Every trainer reports the same unit: the negative log marginal likelihood (minus the log
    priors, where the trainer includes them) divided by the number of rows it was computed on.
    """

    loss: float
    losses: list[float] = field(default_factory=list)
    n_fit: int = 0
    n_total: int = 0
    jitter: float = JITTERS[0]
    iterations: int = 0
    failed_starts: list[int] = field(default_factory=list)


def stratified_subset(fidelity: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Row indices of a random subset of ``size`` rows, each fidelity in proportion (>= 1 row)."""
    n = fidelity.shape[0]
    if size >= n:
        return torch.arange(n, device=fidelity.device)
    g = torch.Generator().manual_seed(seed)
    picks = []
    levels = torch.unique(fidelity)
    for level in levels:
        rows = torch.nonzero(fidelity == level).squeeze(-1).cpu()
        k = max(1, round(size * rows.numel() / n))
        picks.append(rows[torch.randperm(rows.numel(), generator=g)[:k]])
    return torch.sort(torch.cat(picks)).values.to(fidelity.device)


def randomize(model: torch.nn.Module, g: torch.Generator) -> None:
    """Seeded random restart.

    Lengthscales: log-uniform in [0.1, 10] times their current value (at least 0.05 and 5%
    above their lower bound). AR1 scale factors ``rho``:
    drawn from N(1, 1), since the marginal likelihood in ``rho`` is often multi-modal (a level
    explained by the one below, or by its own discrepancy).
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, AR1Kernel) and module.rho.numel():
                module.rho.copy_(1.0 + torch.randn(module.rho.shape, generator=g).to(module.rho))
            if isinstance(module, gpytorch.kernels.Kernel) and module.has_lengthscale:
                ls = module.lengthscale
                factor = torch.exp((torch.rand(ls.shape, generator=g) * 2 - 1) * math.log(10)).to(
                    ls
                )
                bound = module.raw_lengthscale_constraint.lower_bound.to(ls)
                module.lengthscale = torch.maximum(ls * factor, (1.05 * bound).clamp_min(0.05))


def lbfgs(objective: Callable[[], Tensor],
          owned: list[tuple[torch.nn.Parameter, Tensor | None]], max_iter: int
          ) -> tuple[float, int]:  # fmt: skip
    """Strong-Wolfe L-BFGS on ``objective()``; returns ``(final loss, iterations)``.

    Args:
        objective: the loss to minimise (recomputed at every step).
        owned: ``(parameter, mask)`` pairs: the parameters to move and, where a mask is given,
            the entries of that tensor that may move (the others' gradients are zeroed).
        max_iter: iterations.
    """
    params = [p for p, _ in owned]
    opt = torch.optim.LBFGS(
        params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        for p, mask in owned:
            if mask is not None and p.grad is not None:
                p.grad.mul_(mask.to(p.grad))
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = float(objective())
    return loss, int(opt.state[opt._params[0]].get("n_iter", 0))


def with_jitter(model, init: dict, run, fallback: bool, where: str) -> tuple[float, int, float]:
    """``run(jitter) -> (loss, iterations)`` from state ``init``, retried with growing jitter.

    Returns ``(loss, iterations, jitter)``; when every jitter fails, ``(inf, 0, jitter)`` if an
    earlier start can stand in (``fallback``), else :class:`NumericalError`.
    """
    for jitter in JITTERS:
        model.load_state_dict(init)  # each jitter retries the same start
        try:
            with gpytorch.settings.cholesky_jitter(jitter, jitter):
                loss, iters = run(jitter)
            if not math.isfinite(loss):
                raise NotPSDError("non-finite loss")
            return loss, iters, jitter
        except (NotPSDError, NanError, torch.linalg.LinAlgError) as err:
            if jitter == JITTERS[-1]:
                if fallback:
                    return math.inf, 0, jitter
                raise NumericalError(
                    f"{where}Cholesky failed with jitter up to {jitter:g} ({err}); rescale the "
                    "inputs, drop duplicated rows or raise the noise lower bound"
                ) from err
    raise AssertionError("unreachable")


@dataclass
class Starts:
    """The outcome of :func:`best_of_starts`."""

    loss: float
    iterations: int
    jitter: float
    losses: list[float] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def best_of_starts(model: torch.nn.Module, run: Callable[[float], tuple[float, int]], *,
                   restarts: int, randomize_start: Callable[[torch.Generator], None],
                   g: torch.Generator, where: str = "", progress: bool = False,
                   desc: str = "fit") -> Starts:  # fmt: skip
    """Run ``run(jitter)`` from the current state and from ``restarts`` random ones; keep the best.

    Every start begins from the state the model had on entry (``randomize_start(g)`` perturbs
    it for starts after the first), is retried with growing jitter (:func:`with_jitter`), and
    the model ends in the state of the lowest finite loss.

    Raises:
        NumericalError: every start failed.
    """
    start_state = {k: v.clone() for k, v in model.state_dict().items()}
    best: tuple[float, dict, int] | None = None
    out = Starts(loss=math.inf, iterations=0, jitter=JITTERS[0])
    for start in progress_bar(range(restarts + 1), progress=progress, desc=desc, leave=False):
        model.load_state_dict(start_state)
        if start > 0:
            randomize_start(g)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        loss, iters, jitter = with_jitter(model, init, run, True, where)
        out.losses.append(loss)
        logger.debug("%sstart %d of %d: loss %.6g after %d iterations (jitter %g)", where,
                     start + 1, restarts + 1, loss, iters, jitter)  # fmt: skip
        if not math.isfinite(loss):
            out.failed.append(start)
            continue
        out.jitter = max(out.jitter, jitter)
        if best is None or loss < best[0]:
            best = (loss, {k: v.clone() for k, v in model.state_dict().items()}, iters)
    if best is None:
        raise NumericalError(
            f"{where}every start ({restarts + 1}) failed: the Cholesky factorisation failed "
            f"with jitter up to {JITTERS[-1]:g} or the loss was not finite; rescale the inputs, "
            "drop duplicated rows or raise the noise lower bound"
        )
    model.load_state_dict(best[1])
    out.loss, out.iterations = best[0], best[2]
    return out


def adam_epochs(loss_of: Callable[[Tensor], Tensor], params: list[torch.nn.Parameter], n: int, *,
                epochs: int, batch_size: int, lr: float, seed: int, device: torch.device,
                progress: bool = False) -> list[float]:  # fmt: skip
    """Seeded mini-batch Adam: ``loss_of(rows)`` per batch; returns each epoch's mean loss.

    Raises:
        NumericalError: the loss became non-finite (the message names the learning rate).
    """
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    history: list[float] = []
    bar = progress_bar(range(epochs), progress=progress, desc="fit", leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=g).to(device)
        total = 0.0
        for i in range(0, n, batch_size):
            b = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_of(b)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
        history.append(total / n)
        if not math.isfinite(history[-1]):
            raise NumericalError(
                f"the objective became non-finite after {len(history)} epochs; lower lr={lr:g}"
            )
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    return history
