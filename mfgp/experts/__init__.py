"""Transfer from many sources: a shipped library of pretrained source models and their mixture.

* :func:`available`, :func:`load`, :func:`card`: the library (weights and model cards are
  package data; nothing is downloaded).
* :class:`ExpertStack`: frozen experts side by side, the input space of a mixture-of-experts GP
  (``MultiFidelityRegressor(experts="all", mixture="additive")``).
* :func:`rank_sources`: shotgun source selection by cross-validation on the target's labels.
"""

from mfgp.experts.library import available, card, load, load_stack, resolve
from mfgp.experts.mixture import plot_source_weights, rank_sources, source_weights
from mfgp.nn.experts import MIXTURES, ElementSetNet, Expert, ExpertStack

__all__ = [
    "MIXTURES",
    "ElementSetNet",
    "Expert",
    "ExpertStack",
    "available",
    "card",
    "load",
    "load_stack",
    "plot_source_weights",
    "rank_sources",
    "resolve",
    "source_weights",
]
