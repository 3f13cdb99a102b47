"""Acquisition over a finite pool of candidate rows (a composition at a fidelity).

* :func:`pool_moments`: the joint posterior moments every pool objective needs, batched.
* objectives (:mod:`mfgp.acquisition.objectives`): learn the map, the discrete-pool
  multi-fidelity knowledge gradient, window hits, upper confidence bound, log noisy expected
  improvement; information objectives are per unit cost, so each row's fidelity competes on
  value for money.
* :func:`select_batch`: greedy batches on fantasies, one row per composition.
"""

from mfgp.acquisition.objectives import (
    OBJECTIVES,
    KnowledgeGradient,
    LearnMap,
    LogNoisyExpectedImprovement,
    Objective,
    UpperConfidenceBound,
    WindowHits,
    expected_max_of_lines,
    make_objective,
)
from mfgp.acquisition.pool import PoolMoments, pool_moments
from mfgp.acquisition.select import Selection, fantasize, select_batch

__all__ = [
    "OBJECTIVES",
    "KnowledgeGradient",
    "LearnMap",
    "LogNoisyExpectedImprovement",
    "Objective",
    "PoolMoments",
    "Selection",
    "UpperConfidenceBound",
    "WindowHits",
    "expected_max_of_lines",
    "fantasize",
    "make_objective",
    "pool_moments",
    "select_batch",
]
