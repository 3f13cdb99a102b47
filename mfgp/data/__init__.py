"""The multi-fidelity data container and cross-validation splits."""

from mfgp.data.dataset import DUPLICATE_POLICIES, MultiFidelityDataset
from mfgp.data.splits import Folds, grouped_kfold, kfold

__all__ = ["DUPLICATE_POLICIES", "Folds", "MultiFidelityDataset", "grouped_kfold", "kfold"]
