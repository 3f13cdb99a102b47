"""Active-learning campaigns: plan, record and resume experiments on a pool of compositions.

* :class:`Campaign`: ``suggest(q)``, ``observe(results)``, ``run(oracle, stop)``, ``status()``;
  its state in one SQLite store (:class:`Store`), every change one transaction.
* stopping conditions (:mod:`mfgp.loop.stopping`) that compose with ``&`` and ``|``.
* :class:`TableOracle`: a simulated lab answering from a hidden table (benchmarks, tests).
"""

from mfgp.loop.campaign import Campaign, TableOracle
from mfgp.loop.stopping import Budget, Experiments, HitsFound, PredictiveChange, StoppingCondition
from mfgp.loop.store import Store

__all__ = [
    "Budget",
    "Campaign",
    "Experiments",
    "HitsFound",
    "PredictiveChange",
    "StoppingCondition",
    "Store",
    "TableOracle",
]
