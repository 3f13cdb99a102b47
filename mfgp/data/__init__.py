"""The multi-fidelity data container and cross-validation splits."""

from mfgp.data.dataset import DUPLICATE_POLICIES, MultiFidelityDataset
from mfgp.data.reactions import Reaction, parse_reaction
from mfgp.data.splits import (
    ELEMENT_FAMILIES,
    Folds,
    element_family_folds,
    element_family_names,
    grouped_kfold,
    kfold,
)

__all__ = ["DUPLICATE_POLICIES", "ELEMENT_FAMILIES", "Folds", "MultiFidelityDataset", "Reaction",
           "element_family_folds", "element_family_names", "grouped_kfold", "kfold",
           "parse_reaction"]
