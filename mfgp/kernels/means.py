"""Mean functions over contract inputs (features, then the fidelity index)."""

from __future__ import annotations

import torch
from gpytorch.means import Mean
from torch import Tensor

__all__ = ["FidelityMean"]


class FidelityMean(Mean):
    """A constant mean per fidelity, read from the last input column."""

    def __init__(self, num_fidelities: int) -> None:
        super().__init__()
        self.num_fidelities = num_fidelities
        self.register_parameter("constants", torch.nn.Parameter(torch.zeros(num_fidelities)))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.constants[x[..., -1].round().long()]
