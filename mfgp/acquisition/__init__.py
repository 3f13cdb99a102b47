"""Acquisition over a finite pool of candidate rows (a composition at a fidelity).

* :func:`pool_moments`: the joint posterior moments every pool objective needs, batched.
* objectives (:mod:`mfgp.acquisition.objectives`): learn the map, the discrete-pool
  multi-fidelity knowledge gradient, cost-weighted max-value entropy search, window hits,
  upper confidence bound, uncertainty sampling, greedy mean, log noisy expected improvement;
  information objectives are per unit cost, so each row's fidelity competes on value for
  money.
* :func:`select_batch`: greedy batches on fantasies, one row per composition.
"""

from mfgp.acquisition.objectives import (
    OBJECTIVES,
    GreedyMean,
    KnowledgeGradient,
    LearnMap,
    LogNoisyExpectedImprovement,
    MaxValueEntropy,
    Objective,
    Uncertainty,
    UpperConfidenceBound,
    WindowHits,
    envelope_lines,
    expected_max_of_lines,
    expected_max_of_lines_batch,
    make_objective,
    max_value_quantiles,
)
from mfgp.acquisition.pool import (
    GreedyUpdates,
    PoolMoments,
    marginal_moments,
    pool_moments,
    supports_updates,
    twin_moments,
)
from mfgp.acquisition.select import Selection, fantasize, select_batch

__all__ = [
    "OBJECTIVES",
    "GreedyMean",
    "GreedyUpdates",
    "KnowledgeGradient",
    "LearnMap",
    "LogNoisyExpectedImprovement",
    "MaxValueEntropy",
    "Objective",
    "PoolMoments",
    "Selection",
    "Uncertainty",
    "UpperConfidenceBound",
    "WindowHits",
    "envelope_lines",
    "expected_max_of_lines",
    "expected_max_of_lines_batch",
    "fantasize",
    "make_objective",
    "marginal_moments",
    "max_value_quantiles",
    "pool_moments",
    "select_batch",
    "supports_updates",
    "twin_moments",
]
