"""The peers' showcase: BoTorch's discrete multi-fidelity BO tutorial problem, mfgp beside it.

Problem (BoTorch's tutorial "Multi-fidelity BO with discrete fidelities using KG"): maximise
the Augmented Hartmann-6 function ``f(x, s)``, ``x`` in ``[0, 1]^6``, at the target fidelity
``s = 1``, with the cheaper fidelities ``s = 0.5`` and ``0.75`` available; an evaluation costs
``0.25 + s`` (BoTorch's ``AffineFidelityCostModel(fixed_cost=0.25)``), so 0.75 / 1.0 / 1.25.
Each seed starts from the tutorial's 16 random points at random fidelities (the same rows for
every strategy of a seed) and acquires batches of ``q = 4`` until the money spent after the
start reaches ``BUDGET`` (default 30, about eight batches).

Strategies:

* ``mfgp kg``: mfgp's default AR1 (``AR1Spec()``, refitted every batch, as the tutorial
  refits), the discrete-pool multi-fidelity knowledge gradient per unit cost
  (:class:`~mfgp.acquisition.KnowledgeGradient`) over a fixed pool of 2,000 scrambled Sobol
  points at each of the three fidelities (6,000 candidate rows, one row per point in a
  batch), the reference rows the pool's points at the target.
* ``mfgp mes``: the same with cost-weighted max-value entropy search.
* ``mfgp kg, target only``: the same model and pool, only target rows eligible (the
  ablation: what the cheap fidelities are worth to mfgp's planner).
* ``mfgp kg, joint AR1``: ``mfgp kg`` with the AR1's levels fitted jointly
  (``AR1Spec(training="joint")``) instead of the default recursive trainer (the ablation:
  with about 5 start points per level, the recursive fit cannot tell that the levels are
  nearly the same function; the joint likelihood sees every level at once).
* ``mfgp kg, AR1, tutorial prior`` and ``mfgp kg, joint AR1, tutorial prior``: ``mfgp kg``
  (recursive and joint AR1) with the lengthscale prior of BoTorch's tutorial model,
  ``Gamma(3, 6)``, and its output scale prior, ``Gamma(2, 0.15)`` (:func:`tutorial_kernel`),
  instead of mfgp's defaults (the output scale prior on level 0 only,
  :func:`tutorial_ar1_kernel`): the ablation of the model's prior, which
  ``diag_showcase_model.py`` found to be much of what separates mfgp's model from BoTorch's
  on this problem.
* ``mfgp kg, BoTorch's model``: mfgp's planner (the same pool, objective and costs) on
  BoTorch's tutorial model (``SingleTaskMultiFidelityGP``, fitted as ``botorch qMFKG``
  fits it): the ablation that separates the model from the planner. Opt-in (``OPT_IN``: only
  when ``STRATEGIES`` names it): with a generic BoTorch model the planner takes its fantasy
  path, about 25 minutes a seed, and no committed table has it yet.
* ``botorch qMFKG``: BoTorch's own tutorial as it runs it: ``SingleTaskMultiFidelityGP`` with
  ``Standardize``, ``qMultiFidelityKnowledgeGradient`` with 128 fantasies, the current value
  from maximising the posterior mean at ``s = 1`` (10 restarts, 1,024 raw samples), the batch
  from ``optimize_acqf_mixed`` over the three fidelities (5 restarts, 128 raw samples),
  continuous ``x``.
* ``botorch qLogNEI``: single fidelity, the tutorial's comparison: the same model on the same
  data, ``qLogNoisyExpectedImprovement`` at ``s = 1`` optimised continuously (the tutorial
  uses qLogEI; the issue names qLogNEI, its noise-robust form; on this noise-free function the
  two agree).
* ``random``: pool points at the target fidelity.

mfgp acquires from the pool while BoTorch optimises continuously (the pool's own best point
is 0.22-0.75 below the optimum, 0.54 on average over the 10 seeds: its rows are a handicap
for mfgp's acquisitions, not BoTorch's). Every strategy's *recommendation* is made the same way, the tutorial's: maximise
its model's posterior mean at ``s = 1`` over the continuous box (10 restarts, 512 raw samples),
so the regret measures what each planner learnt, not the pool. Metric: simple regret
``3.32237 - f(x_rec, 1)`` after each batch against the money spent; "cost to reach" a regret
(the first batch at which it is reached; ``inf`` if never within the budget), medians and 95%
bootstrap CIs over seeds.

The fidelities of this problem are almost the same function (mean ``|f(x, 0.5) - f(x, 1)|``
about 0.001): the cheapest one carries the target's information at 0.6 of its cost, so a
planner can at best spend 0.6 of what a single-fidelity one spends; the issue's "half the
cost" is out of reach on this problem by construction, and the table says so.

Writes results/bench_showcase.{json,md,png}; the JSON's ``summary`` is
``{"showcase_hartmann6": {strategy: {...}}}``. Run: ``make bench-showcase`` (``SEEDS=2
BUDGET=8`` for a quick look, written to bench_showcase_smoke; ``OUT=name`` writes elsewhere, as
the development seeds do: ``SEEDS_LIST=100,101,102,103,104 OUT=bench_showcase_dev``). Finished (strategy, seed)
cells are kept in results/bench_showcase.partial.jsonl, so an interrupted run resumes.
"""

from __future__ import annotations

import os
import time
import types
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
BUDGET = float(os.environ.get("BUDGET", 30))
POOL = int(os.environ.get("POOL", 2000))
NAME = os.environ.get(
    "OUT", "bench_showcase" if (BUDGET, POOL) == (30.0, 2000) else "bench_showcase_smoke")
Q = 4
N_INIT = 16
FIDELITIES = (0.5, 0.75, 1.0)
FIXED_COST = 0.25
OPTIMUM = 3.32237
THRESHOLDS = (1.0, 0.5, 0.2)
STRATEGIES = ("mfgp kg", "mfgp mes", "mfgp kg, target only", "mfgp kg, joint AR1",
              "mfgp kg, AR1, tutorial prior", "mfgp kg, joint AR1, tutorial prior",
              "mfgp kg, BoTorch's model", "botorch qMFKG", "botorch qLogNEI", "random")  # fmt: skip
TK = {"dtype": torch.float64}


def problem():
    from botorch.test_functions.multi_fidelity import AugmentedHartmann

    return AugmentedHartmann(negate=True).to(**TK)


def cost_of(s: torch.Tensor) -> torch.Tensor:
    return FIXED_COST + s


def initial(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tutorial's start: 16 uniform points at uniformly drawn fidelities (s in column 6)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N_INIT, 6, generator=g, **TK)
    s = torch.tensor(FIDELITIES, **TK)[torch.randint(3, (N_INIT, 1), generator=g)]
    X = torch.cat([x, s], 1)
    return X, problem()(X).unsqueeze(-1)


def pool(seed: int) -> torch.Tensor:
    from torch.quasirandom import SobolEngine

    return SobolEngine(6, scramble=True, seed=1000 + seed).draw(POOL, dtype=torch.float64)


# -- recommendation (the same for every strategy) ---------------------------------------------

def recommend(model, fidelity_value: float) -> float:
    """Regret of the maximiser of the model's posterior mean at the target (tutorial settings)."""
    from botorch.acquisition import PosteriorMean
    from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
    from botorch.optim import optimize_acqf

    acqf = FixedFeatureAcquisitionFunction(PosteriorMean(model), d=7, columns=[6],
                                           values=[fidelity_value])  # fmt: skip
    bounds = torch.tensor([[0.0] * 6, [1.0] * 6], **TK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=10, raw_samples=512,
                             options={"batch_limit": 5, "maxiter": 200})  # fmt: skip
    X = torch.cat([x, torch.ones(1, 1, **TK)], 1)  # evaluate at s = 1
    return float(OPTIMUM - problem()(X))


# -- mfgp ---------------------------------------------------------------------------------------

def _mfgp_rows(X: torch.Tensor) -> torch.Tensor:
    """BoTorch's rows (s in column 6) as mfgp's contract rows (the fidelity's index last)."""
    index = torch.searchsorted(torch.tensor(FIDELITIES, **TK), X[:, 6].contiguous())
    return torch.cat([X[:, :6], index[:, None].to(X)], 1)


def tutorial_kernel(d: int, batch_shape=None, active_dims=None, outputscale: bool = True):
    """The data kernel with the priors of BoTorch's tutorial model.

    ``SingleTaskMultiFidelityGP``'s shared (unbiased) Matern-5/2 has a ``Gamma(3, 6)`` prior
    on each lengthscale (mode 1/3 of the unit box) and its output scale a ``Gamma(2, 0.15)``
    prior (zero density at zero: the model cannot explain every row as noise). mfgp's default
    is the dimension-scaled ``LogNormal(sqrt(2) + log(d) / 2, sqrt(3))`` lengthscale prior
    (median 10 at d = 6), which 16 points of a 6-D function cannot overrule, and no output
    scale prior (``diag_showcase_model.py``). ``outputscale=False``: the lengthscale prior only.
    ``batch_shape`` and ``active_dims`` are accepted for the data-kernel signature and must be
    left at ``None`` (this problem needs neither).
    """
    if batch_shape is not None or active_dims is not None:
        raise ValueError("tutorial_kernel takes neither batch_shape nor active_dims")
    from gpytorch.kernels import MaternKernel, ScaleKernel
    from gpytorch.priors import GammaPrior

    base = MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=GammaPrior(3.0, 6.0))
    return ScaleKernel(base, outputscale_prior=GammaPrior(2.0, 0.15) if outputscale else None)


def tutorial_ar1_kernel():
    """The AR1 kernel over the three fidelities with the tutorial model's priors.

    Every level's lengthscales get ``Gamma(3, 6)``; the output scale prior goes to level 0's
    kernel only, the function every fidelity shares (as the tutorial's output scale is that of
    its shared kernel); the discrepancies keep mfgp's default, no prior.
    """
    from mfgp.kernels import AR1Kernel

    return AR1Kernel([tutorial_kernel(6, outputscale=t == 0) for t in range(len(FIDELITIES))])


def fit_mfgp(X, Y, training: str = "auto", prior: str = "default"):
    """mfgp's AR1 on the rows; ``prior="tutorial"``: with :func:`tutorial_ar1_kernel`."""
    if prior not in ("default", "tutorial"):
        raise ValueError(f"prior must be 'default' or 'tutorial'; got {prior!r}")
    from mfgp.models.specs import AR1Spec, FitOptions

    Xm = _mfgp_rows(X)
    if prior == "tutorial":
        from mfgp.fit import fit_ar1_recursive, fit_gp
        from mfgp.kernels.means import FidelityMean
        from mfgp.models import AR1GP
        from mfgp.models.specs import joint_priors

        model = AR1GP(Xm, Y, covar_module=tutorial_ar1_kernel(), **(
            {} if training == "joint"  # AR1Spec's joint build: one shared constant mean
            else {"mean_module": FidelityMean(len(FIDELITIES)).to(Xm)}))  # or one per level
        if training == "joint":  # and its priors
            joint_priors(model.covar_module, Xm[:, -1])
        (fit_gp if training == "joint" else fit_ar1_recursive)(model)
        return model
    spec = AR1Spec(training=training)
    model = spec.build(Xm, Y, observations=(Xm, Y))
    spec.fit(model, FitOptions())
    return model


def mfgp_step(model, P: torch.Tensor, objective: str, target_only: bool,
              botorch_rows: bool = False) -> torch.Tensor:  # fmt: skip
    """mfgp's batch from the pool; ``botorch_rows``: ``model`` reads s, not a level index."""
    from mfgp.acquisition import KnowledgeGradient, MaxValueEntropy, select_batch

    levels = [2] if target_only else [0, 1, 2]
    column = (lambda t: FIDELITIES[t]) if botorch_rows else float
    C = torch.cat([torch.cat([P, torch.full((len(P), 1), column(t), **TK)], 1) for t in levels])
    level = torch.tensor(levels, **TK).repeat_interleave(len(P))
    cost = cost_of(torch.tensor([FIDELITIES[int(t)] for t in level], **TK))
    R = torch.cat([P, torch.full((len(P), 1), column(2), **TK)], 1)
    groups = np.tile(np.arange(len(P)), len(levels))
    obj = KnowledgeGradient(maximize=True) if objective == "kg" else MaxValueEntropy(maximize=True)
    sel = select_batch(model, C, obj, q=Q, R=R, cost=cost, is_target=level == 2,
                       groups=groups, variances="exact")  # fmt: skip
    rows = C[sel.rows]
    if botorch_rows:
        return rows
    return torch.cat([rows[:, :6], torch.tensor(FIDELITIES, **TK)[rows[:, -1].long()][:, None]], 1)


class _MfgpMean(torch.nn.Module):
    """mfgp's model seen with BoTorch's fidelity column (s), for the shared recommendation."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.num_outputs = 1

    def posterior(self, X, **kwargs):
        shape = X.shape
        flat = X.reshape(-1, shape[-1])
        post = self.model.posterior(_mfgp_rows(flat))
        return types.SimpleNamespace(mean=post.mean.reshape(*shape[:-1], 1))


def mfgp_recommend(model) -> float:
    return recommend(_MfgpMean(model), 1.0)  # BoTorch's PosteriorMean reads .mean only


# -- BoTorch --------------------------------------------------------------------------------------

def fit_botorch(X, Y):
    from botorch import fit_gpytorch_mll
    from botorch.models.gp_regression_fidelity import SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls.exact_marginal_log_likelihood import ExactMarginalLogLikelihood

    model = SingleTaskMultiFidelityGP(X, Y, outcome_transform=Standardize(m=1),
                                      data_fidelities=[6])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def botorch_mfkg_step(model) -> torch.Tensor:
    """The tutorial's get_mfkg + optimize_mfkg_and_get_observation, as it runs them."""
    from botorch.acquisition import PosteriorMean
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
    from botorch.acquisition.knowledge_gradient import qMultiFidelityKnowledgeGradient
    from botorch.acquisition.utils import project_to_target_fidelity
    from botorch.models.cost import AffineFidelityCostModel
    from botorch.optim.optimize import optimize_acqf, optimize_acqf_mixed

    bounds = torch.tensor([[0.0] * 7, [1.0] * 7], **TK)
    cost_model = AffineFidelityCostModel(fidelity_weights={6: 1.0}, fixed_cost=FIXED_COST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cur = FixedFeatureAcquisitionFunction(PosteriorMean(model), d=7, columns=[6], values=[1])
        _, current_value = optimize_acqf(cur, bounds=bounds[:, :-1], q=1, num_restarts=10,
                                         raw_samples=1024,
                                         options={"batch_limit": 10, "maxiter": 200})  # fmt: skip
        acqf = qMultiFidelityKnowledgeGradient(
            model=model, num_fantasies=128, current_value=current_value,
            cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model),
            project=lambda X: project_to_target_fidelity(X=X, target_fidelities={6: 1.0}, d=7),
        )
        cand, _ = optimize_acqf_mixed(acqf, bounds=bounds,
                                      fixed_features_list=[{6: s} for s in FIDELITIES], q=Q,
                                      num_restarts=5, raw_samples=128,
                                      options={"batch_limit": 5, "maxiter": 200})  # fmt: skip
    return cand.detach()


def botorch_nei_step(model, X) -> torch.Tensor:
    from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.optim import optimize_acqf

    bounds = torch.tensor([[0.0] * 6, [1.0] * 6], **TK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xt = X.clone()
        Xt[:, 6] = 1.0  # the baseline: the observed points at the target (NEI's X_baseline)
        acqf = FixedFeatureAcquisitionFunction(
            qLogNoisyExpectedImprovement(model, X_baseline=Xt, prune_baseline=True),
            d=7, columns=[6], values=[1.0])  # fmt: skip
        x, _ = optimize_acqf(acqf, bounds=bounds, q=Q, num_restarts=5, raw_samples=128,
                             options={"batch_limit": 5, "maxiter": 200})  # fmt: skip
    return torch.cat([x.detach(), torch.ones(Q, 1, **TK)], 1)


# -- one run ------------------------------------------------------------------------------------

def run(strategy: str, seed: int) -> dict:
    torch.manual_seed(seed)
    X, Y = initial(seed)
    P = pool(seed)
    rng = np.random.default_rng(seed)
    f = problem()
    spent, costs, regrets, fids, seconds = 0.0, [], [], [], 0.0
    while True:
        t0 = time.perf_counter()
        if strategy.startswith("mfgp") and not strategy.endswith("BoTorch's model"):
            model = fit_mfgp(X, Y, "joint" if "joint AR1" in strategy else "auto",
                             "tutorial" if strategy.endswith("tutorial prior") else "default")
            regret = mfgp_recommend(model)
        else:
            model = fit_botorch(X, Y)
            regret = recommend(model, 1.0)
        costs.append(spent)
        regrets.append(regret)
        if spent >= BUDGET - 1e-9:
            seconds += time.perf_counter() - t0
            break
        if strategy == "mfgp kg":
            new = mfgp_step(model, P, "kg", False)
        elif strategy == "mfgp mes":
            new = mfgp_step(model, P, "mes", False)
        elif strategy == "mfgp kg, target only":
            new = mfgp_step(model, P, "kg", True)
        elif strategy in ("mfgp kg, joint AR1", "mfgp kg, AR1, tutorial prior",
                          "mfgp kg, joint AR1, tutorial prior"):
            new = mfgp_step(model, P, "kg", False)
        elif strategy == "mfgp kg, BoTorch's model":
            new = mfgp_step(model, P, "kg", False, botorch_rows=True)
        elif strategy == "botorch qMFKG":
            new = botorch_mfkg_step(model)
        elif strategy == "botorch qLogNEI":
            new = botorch_nei_step(model, X)
        elif strategy == "random":
            pick = rng.choice(len(P), Q, replace=False)
            new = torch.cat([P[pick], torch.ones(Q, 1, **TK)], 1)
        else:
            raise ValueError(strategy)
        seconds += time.perf_counter() - t0
        X = torch.cat([X, new])
        Y = torch.cat([Y, f(new).unsqueeze(-1)])
        spent += float(cost_of(new[:, 6]).sum())
        fids.extend(float(s) for s in new[:, 6])
        print(f"  {strategy} seed {seed}: spent {spent:.2f}, regret {regret:.3f}", flush=True)
    return {"strategy": strategy, "seed": seed, "cost": costs, "regret": regrets,
            "fidelities": fids, "seconds": round(seconds, 1), "budget": BUDGET,
            "pool": POOL}  # fmt: skip


# -- summary --------------------------------------------------------------------------------------

def summarize(done: list[dict]):
    summary, table = regret_summary(
        done, STRATEGIES, BUDGET, THRESHOLDS, share_key="share_target_fidelity",
        share=lambda r: float(np.mean(np.array(r["fidelities"]) == 1.0)),
        reference=("mfgp kg", "mfgp kg, joint AR1", "mfgp kg, joint AR1, tutorial prior"),
        others=("mfgp kg", "mfgp kg, target only", "botorch qLogNEI",
                "botorch qMFKG"))  # fmt: skip
    return {"showcase_hartmann6": summary}, table


def plot(done: list[dict]) -> None:
    plot_regret(done, STRATEGIES, BUDGET, RESULTS / f"{NAME}.png",
                xlabel="money spent after the 16 start points (cost 0.25 + s per evaluation)",
                ylabel="simple regret of the recommendation, f* - f(x_rec, 1)",
                title="BoTorch's Augmented Hartmann-6, s in {0.5, 0.75, 1}: median, IQR")  # fmt: skip


def problem_facts() -> dict:
    """What the docs say of the problem, measured: how far apart the fidelities are, how far
    each seed's pool is from the optimum, and what the default AR1 fits from the 16 start
    points (the output scales of the lowest level and of the top level's discrepancy)."""
    f = problem()
    facts: dict = {"pool_best_regret": {}, "ar1_start_outputscale": {}}
    for seed in SEEDS:
        P = pool(seed)
        at = {s: f(torch.cat([P, torch.full((len(P), 1), s, **TK)], 1)) for s in FIDELITIES}
        if seed == SEEDS[0]:
            facts["mean_abs_fidelity_gap"] = {
                f"{s:g}": float((at[s] - at[1.0]).abs().mean()) for s in FIDELITIES[:-1]}
        facts["pool_best_regret"][str(seed)] = float(OPTIMUM - at[1.0].max())
        kernels = fit_mfgp(*initial(seed)).covar_module.data_kernels
        facts["ar1_start_outputscale"][str(seed)] = {
            "level_0": float(kernels[0].outputscale.detach()), "top_discrepancy": float(
                kernels[-1].outputscale.detach())}  # fmt: skip
    return facts


#: run only when ``STRATEGIES`` names them (about 25 minutes a seed; not run for the tables)
OPT_IN = ("mfgp kg, BoTorch's model",)


def main() -> None:
    named = os.environ.get("STRATEGIES", "").split(";")
    showcase_main("showcase", NAME, STRATEGIES, SEEDS, BUDGET, run, summarize, plot,
                  problem_facts, skip=[s for s in OPT_IN if s not in named])  # fmt: skip


if __name__ == "__main__":
    main()
