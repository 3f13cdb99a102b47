"""mfgp's models: every one a BoTorch ``Model`` on contract inputs (features, fidelity index).

* :class:`SingleFidelityGP`: the baseline, ARD Matern-5/2 on the features.
* :class:`MultiTaskGP`: multi-task, linear model of coregionalisation across fidelities/tasks.
* :class:`AR1GP`: difference, Kennedy-O'Hagan ``f_t = rho_t f_{t-1} + delta_t``.
* :class:`ExplicitLatentGP`: explicit latent, another model's posterior as an input.
* :class:`FeatureMapModel`: any of them on raw composition features (the map is the model's).
* :class:`GPClassifier`: sparse variational GP classification (metals), one or several tasks.
* :class:`LatentInputClassifier`: a classifier with another property as an input
  (:class:`LatentInput`: observed where known, integrated over elsewhere).
"""

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
from mfgp.models.classifier import GPClassifier, LatentInput, LatentInputClassifier
from mfgp.models.composite import linear_combination
from mfgp.models.features import FeatureMap, FeatureMapModel
from mfgp.models.latent import ExplicitLatentGP
from mfgp.models.multifidelity import AR1GP, FidelityGP, MultiTaskGP, SingleFidelityGP

__all__ = [
    "AR1GP",
    "ExplicitLatentGP",
    "FeatureMap",
    "FeatureMapModel",
    "FidelityGP",
    "GPClassifier",
    "LatentInput",
    "LatentInputClassifier",
    "MultiTaskGP",
    "SingleFidelityGP",
    "linear_combination",
]
