"""The multi-fidelity data container and cross-validation splits."""

from mfgp.data.dataset import DUPLICATE_POLICIES, MultiFidelityDataset
from mfgp.data.reactions import Reaction, parse_reaction
from mfgp.data.splits import Folds, grouped_kfold, kfold

__all__ = ["DUPLICATE_POLICIES", "Folds", "MultiFidelityDataset", "Reaction", "grouped_kfold",
           "kfold", "parse_reaction"]
