"""The peers' showcase, second problem: Emukit's multi-fidelity Bayesian optimisation example.

Problem (Emukit's notebook "Multi-Fidelity Bayesian Optimization"): minimise the Forrester
function ``f_high(x) = (6x - 2)^2 sin(12x - 4)`` on ``[0, 1]`` with the cheap approximation
``f_low(x) = 0.5 f_high(x) + 10 (x - 0.5) + 5`` available; a low-fidelity evaluation costs 1,
a high-fidelity one 5. Each seed starts, as the notebook does, from 12 uniform random points
evaluated at low fidelity, the first 6 of them also at high fidelity (the same rows for every
strategy of a seed), and acquires one point at a time until the money spent after the start
reaches ``BUDGET`` (default 50: the notebook's high-fidelity-only loop, 10 evaluations).

Strategies:

* ``emukit MF-ES``: the notebook as it runs: ``GPyLinearMultiFidelityModel`` with RBF kernels
  (lengthscales bounded to [0.01, 0.5]), both noise variances fixed at 0.1, 5 optimisation
  restarts, refitted after every evaluation; ``MultiInformationSourceEntropySearch`` divided by
  the cost, maximised by ``MultiSourceAcquisitionOptimizer(GradientAcquisitionOptimizer)``.
  (The notebook's cost acquisition misspells ``evaluate`` in its gradient method, which is never
  called; here it is spelled right.)
* ``emukit ES, high only``: the notebook's comparison: ``GPRegression`` on the high-fidelity
  rows, noise fixed at 0.1, ``EntropySearch``, ``BayesianOptimizationLoop``'s defaults.
* ``mfgp kg``: mfgp's default AR1 (``AR1Spec()``, refitted after every evaluation), the
  discrete-pool multi-fidelity knowledge gradient per unit cost
  (:class:`~mfgp.acquisition.KnowledgeGradient`, minimising) over the notebook's 1,000-point
  search grid at both fidelities, the reference rows the grid at high fidelity.
* ``mfgp kg, target only``: the same with only high-fidelity rows eligible (what the cheap
  fidelity is worth to mfgp's planner).
* ``mfgp mes``: the same model and pool with cost-weighted max-value entropy search.
* ``random``: grid points at high fidelity.

Every strategy recommends the notebook's way: the minimiser of its model's posterior mean at
high fidelity over the 1,000-point grid (random: mfgp's AR1 fitted to its rows). The notebook
records that minimiser at the end of each iteration, before the model has seen the point just
evaluated; here the recommendation is made after the refit, for every strategy alike. Metric:
simple regret ``f_high(x_rec) - min f_high`` against the money spent; "cost to reach" a regret
(``inf`` if never within the budget), medians and 95% bootstrap CIs over seeds.

Emukit and GPy are benchmark-only requirements (``pip install mfgp[compare]``); without them
the Emukit rows are skipped and the table says so.

Writes results/bench_showcase_emukit.{json,md,png}; the JSON's ``summary`` is
``{"showcase_emukit_forrester": {strategy: {...}}}``. Run: ``make bench-showcase-emukit``
(``SEEDS=2 BUDGET=10`` for a quick look, written to bench_showcase_emukit_smoke). Finished
(strategy, seed) cells are kept in results/bench_showcase_emukit.partial.jsonl, so an
interrupted run resumes.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import torch
from _common import (
    RESULTS,
    env_seeds,
    plot_regret,
    regret_summary,
    showcase_main,
)

SEEDS = env_seeds(10)
BUDGET = float(os.environ.get("BUDGET", 50))
NAME = "bench_showcase_emukit" if BUDGET == 50.0 else "bench_showcase_emukit_smoke"
COSTS = (1.0, 5.0)  # low, high
N_LOW, N_HIGH = 12, 6
GRID = np.linspace(0, 1, 1000)  # the notebook's x_search
THRESHOLDS = (1.0, 0.1, 0.01)
STRATEGIES = ("mfgp kg", "mfgp kg, target only", "mfgp mes", "emukit MF-ES",
              "emukit ES, high only", "random")  # fmt: skip
TK = {"dtype": torch.float64}


def f_high(x: np.ndarray) -> np.ndarray:
    return (6 * x - 2) ** 2 * np.sin(12 * x - 4)


def f_low(x: np.ndarray) -> np.ndarray:
    return 0.5 * f_high(x) + 10 * (x - 0.5) + 5


def evaluate(X: np.ndarray) -> np.ndarray:
    """Rows ``[x, source]`` (source 0 low, 1 high) -> ``n x 1`` values."""
    x, s = X[:, 0], X[:, 1]
    return np.where(s == 1, f_high(x), f_low(x))[:, None]


#: the true minimum, on a grid 100x finer than the search grid (f_high's minimum is -6.0207)
F_MIN = float(f_high(np.linspace(0, 1, 100_001)).min())


def regret_of(x: float) -> float:
    return float(f_high(np.array([x]))[0] - F_MIN)


def initial(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's start: 12 uniform points at low fidelity, the first 6 also at high."""
    x_low = np.random.default_rng(seed).random(N_LOW)[:, None]
    X = np.vstack([np.hstack([x_low, np.zeros((N_LOW, 1))]),
                   np.hstack([x_low[:N_HIGH], np.ones((N_HIGH, 1))])])  # fmt: skip
    return X, evaluate(X)


# -- mfgp -------------------------------------------------------------------------------------------

def fit_mfgp(X: np.ndarray, Y: np.ndarray):
    from mfgp.models.specs import AR1Spec, FitOptions

    Xt, Yt = torch.as_tensor(X, **TK), torch.as_tensor(Y, **TK)
    spec = AR1Spec()
    model = spec.build(Xt, Yt, observations=(Xt, Yt))
    spec.fit(model, FitOptions())
    return model


def mfgp_recommend(model) -> float:
    R = torch.as_tensor(np.stack([GRID, np.ones_like(GRID)], 1), **TK)
    with torch.no_grad():
        mean = model.posterior(R).mean.squeeze(-1)
    return float(GRID[int(mean.argmin())])


def mfgp_step(model, objective: str, target_only: bool) -> np.ndarray:
    from mfgp.acquisition import KnowledgeGradient, MaxValueEntropy, select_batch

    levels = [1] if target_only else [0, 1]
    C = torch.as_tensor(np.vstack([np.stack([GRID, np.full_like(GRID, t)], 1) for t in levels]),
                        **TK)  # fmt: skip
    cost = torch.as_tensor([COSTS[int(t)] for t in C[:, 1]], **TK)
    R = torch.as_tensor(np.stack([GRID, np.ones_like(GRID)], 1), **TK)
    groups = np.tile(np.arange(len(GRID)), len(levels))
    obj = KnowledgeGradient(maximize=False) if objective == "kg" else MaxValueEntropy(
        maximize=False)
    sel = select_batch(model, C, obj, q=1, R=R, cost=cost, is_target=C[:, 1] == 1,
                       groups=groups, variances="exact")  # fmt: skip
    return C[sel.rows].numpy()


# -- Emukit (the notebook's code, as it runs it) -------------------------------------------------

def _emukit_cost_acquisition():
    from emukit.core.acquisition import Acquisition

    class Cost(Acquisition):
        def __init__(self, costs):
            self.costs = costs

        def evaluate(self, x):
            return np.array([self.costs[int(i)] for i in x[:, -1]])[:, None]

        @property
        def has_gradients(self):
            return True

        def evaluate_with_gradients(self, x):
            return self.evaluate(x), np.zeros(x.shape)

    return Cost(list(COSTS))


def emukit_mf(X: np.ndarray, Y: np.ndarray):
    """The notebook's model, acquisition and point calculator (fitted on ``X, Y``)."""
    import GPy
    from emukit.bayesian_optimization.acquisitions.entropy_search import (
        MultiInformationSourceEntropySearch,
    )
    from emukit.core import ContinuousParameter, InformationSourceParameter, ParameterSpace
    from emukit.core.loop import SequentialPointCalculator
    from emukit.core.optimization import GradientAcquisitionOptimizer
    from emukit.core.optimization.multi_source_acquisition_optimizer import (
        MultiSourceAcquisitionOptimizer,
    )
    from emukit.model_wrappers import GPyMultiOutputWrapper
    from emukit.multi_fidelity.kernels.linear_multi_fidelity_kernel import (
        LinearMultiFidelityKernel,
    )
    from emukit.multi_fidelity.models.linear_model import GPyLinearMultiFidelityModel

    space = ParameterSpace([ContinuousParameter("x", 0, 1), InformationSourceParameter(2)])
    kern_low, kern_err = GPy.kern.RBF(1), GPy.kern.RBF(1)
    kern_low.lengthscale.constrain_bounded(0.01, 0.5)
    kern_err.lengthscale.constrain_bounded(0.01, 0.5)
    gpy = GPyLinearMultiFidelityModel(X, Y, LinearMultiFidelityKernel([kern_low, kern_err]), 2)
    gpy.likelihood.Gaussian_noise.fix(0.1)
    gpy.likelihood.Gaussian_noise_1.fix(0.1)
    model = GPyMultiOutputWrapper(gpy, 2, 5, verbose_optimization=False)
    model.optimize()
    acquisition = MultiInformationSourceEntropySearch(model, space) / _emukit_cost_acquisition()
    optimizer = MultiSourceAcquisitionOptimizer(GradientAcquisitionOptimizer(space), space)
    return model, SequentialPointCalculator(acquisition, optimizer)


def emukit_hf(X: np.ndarray, Y: np.ndarray):
    """The notebook's high-fidelity-only comparison (fitted on the high rows of ``X, Y``)."""
    import GPy
    from emukit.bayesian_optimization.acquisitions.entropy_search import EntropySearch
    from emukit.bayesian_optimization.loops import BayesianOptimizationLoop
    from emukit.core import ContinuousParameter, ParameterSpace
    from emukit.model_wrappers import GPyModelWrapper

    high = X[:, 1] == 1
    gpy = GPy.models.GPRegression(X[high, :1], Y[high])
    gpy.Gaussian_noise.variance.fix(0.1)
    model = GPyModelWrapper(gpy)
    model.optimize()
    space = ParameterSpace([ContinuousParameter("x", 0, 1)])
    loop = BayesianOptimizationLoop(space, model, EntropySearch(model, space))
    return model, loop.candidate_point_calculator


def emukit_recommend(model, multi: bool) -> float:
    grid = np.stack([GRID, np.ones_like(GRID)], 1) if multi else GRID[:, None]
    mean, _ = model.predict(grid)
    return float(GRID[int(np.argmin(mean))])


# -- one run ----------------------------------------------------------------------------------------

def run(strategy: str, seed: int) -> dict:
    from emukit.core.loop.loop_state import create_loop_state

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (Emukit's samplers and GPy's restarts use the global state)
    X, Y = initial(seed)
    rng = np.random.default_rng(seed)
    spent, costs, regrets, sources, seconds = 0.0, [], [], [], 0.0
    while True:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if strategy.startswith("emukit"):
                multi = strategy == "emukit MF-ES"
                if multi:
                    model, calculator = emukit_mf(X, Y)
                    state = create_loop_state(X, Y)
                else:
                    model, calculator = emukit_hf(X, Y)
                    high = X[:, 1] == 1
                    state = create_loop_state(X[high, :1], Y[high])
                x_rec = emukit_recommend(model, multi)
            else:
                model = fit_mfgp(X, Y)
                x_rec = mfgp_recommend(model)
            costs.append(spent)
            regrets.append(regret_of(x_rec))
            if spent >= BUDGET - 1e-9:
                seconds += time.perf_counter() - t0
                break
            if strategy == "mfgp kg":
                new = mfgp_step(model, "kg", False)
            elif strategy == "mfgp kg, target only":
                new = mfgp_step(model, "kg", True)
            elif strategy == "mfgp mes":
                new = mfgp_step(model, "mes", False)
            elif strategy == "emukit MF-ES":
                new = calculator.compute_next_points(state)
            elif strategy == "emukit ES, high only":
                new = np.hstack([calculator.compute_next_points(state), np.ones((1, 1))])
            elif strategy == "random":
                new = np.array([[GRID[rng.integers(len(GRID))], 1.0]])
            else:
                raise ValueError(strategy)
        seconds += time.perf_counter() - t0
        new = np.asarray(new, dtype=float).reshape(1, 2)
        X, Y = np.vstack([X, new]), np.vstack([Y, evaluate(new)])
        spent += COSTS[int(new[0, 1])]
        sources.append(int(new[0, 1]))
        print(f"  {strategy} seed {seed}: spent {spent:g}, regret {regrets[-1]:.4f}", flush=True)
    return {"strategy": strategy, "seed": seed, "cost": costs, "regret": regrets,
            "sources": sources, "seconds": round(seconds, 1), "budget": BUDGET}  # fmt: skip


# -- summary ----------------------------------------------------------------------------------------

def summarize(done: list[dict]):
    summary, table = regret_summary(
        done, STRATEGIES, BUDGET, THRESHOLDS, share_key="share_high_fidelity",
        share=lambda r: float(np.mean(np.array(r["sources"]) == 1)), reference="mfgp kg",
        others=("mfgp kg, target only", "emukit MF-ES", "emukit ES, high only"))  # fmt: skip
    return {"showcase_emukit_forrester": summary}, table


def plot(done: list[dict]) -> None:
    plot_regret(done, STRATEGIES, BUDGET, RESULTS / f"{NAME}.png", floor=1e-6,
                xlabel="money spent after the 18 start rows (low fidelity 1, high 5)",
                ylabel="simple regret, f_high(x_rec) - min f_high",
                title="Emukit's multi-fidelity Forrester example: median, IQR (floor 1e-6)")  # fmt: skip


def _have_emukit() -> bool:
    try:
        import emukit  # noqa: F401
        import GPy  # noqa: F401
    except ImportError:
        return False
    return True


def problem() -> dict:
    return {"f_min": F_MIN, "costs": {"low": COSTS[0], "high": COSTS[1]},
            "start": f"{N_LOW} low, {N_HIGH} of them also high", "grid": len(GRID)}


def main() -> None:
    skip = ()
    if not _have_emukit():
        print("[showcase-emukit] emukit / GPy not installed (pip install mfgp[compare]): "
              "the Emukit rows are skipped", flush=True)  # fmt: skip
        skip = tuple(s for s in STRATEGIES if s.startswith("emukit"))
    showcase_main("showcase-emukit", NAME, STRATEGIES, SEEDS, BUDGET, run, summarize, plot,
                  problem, skip=skip)  # fmt: skip


if __name__ == "__main__":
    main()
