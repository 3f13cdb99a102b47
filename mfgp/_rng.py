"""Seeded use of torch's global generator, without touching the caller's random stream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded_global_rng"]


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generator of ``device`` inside the block, restore it afterwards.

    For library code that draws from the global generator (GPyTorch's variational start):
    the result depends on ``seed`` only, and the caller's random stream is not touched.
    """
    cuda = []
    if device.type == "cuda":  # "cuda" without an index is the current device
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
