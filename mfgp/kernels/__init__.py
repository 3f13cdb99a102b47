"""Fidelity / task kernels over (features, fidelity index) inputs.

Every kernel here takes inputs whose last column is the 0-based fidelity index (the tensor
contract, ``docs/design.md``) and computes ``K((x, s), (x', t)) = sum_q B_q[s, t] k_q(x, x')``:
a sum of data kernels ``k_q`` on the features weighted by task covariances ``B_q``.
"""

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
from mfgp.kernels.coregional import (
    AR1Kernel,
    CoregionalKernel,
    LCMKernel,
    MaternKernel,
    default_data_kernel,
    matern_ard,
)
from mfgp.kernels.effect import CompositionEffect, CompositionKeyedMap, WithCompositionEffect

__all__ = ["AR1Kernel", "CompositionEffect", "CompositionKeyedMap", "CoregionalKernel",
           "LCMKernel", "MaternKernel", "WithCompositionEffect", "default_data_kernel",
           "matern_ard"]  # fmt: skip
