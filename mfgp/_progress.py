"""Progress bars and the ``mfgp`` logger: what long work shows, and the one switch that hides it.

Long work (fit restarts and levels, pretraining, fine-tuning, cross-validation, source ranking,
screening, campaigns) shows a tqdm bar when its ``progress`` argument is true, and logs a line
per finished step to the ``mfgp`` logger (``logging.getLogger("mfgp")``, INFO, or DEBUG for
steps that are many): silent unless the application configures logging, e.g.
``logging.basicConfig(level="INFO")``. ``MFGP_QUIET=1`` in the environment turns every bar off,
whatever ``progress`` says (batch jobs, CI, a notebook you want to read).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from tqdm.auto import tqdm

__all__ = ["bar", "logger", "quiet"]

logger = logging.getLogger("mfgp")


def quiet() -> bool:
    """``True`` when ``MFGP_QUIET`` is set to anything but ``""``, ``0``, ``false`` or ``no``."""
    return os.environ.get("MFGP_QUIET", "").strip().lower() not in ("", "0", "false", "no")


def bar(iterable: Iterable | None = None, *, progress: bool, **kwargs) -> tqdm:
    """A tqdm bar over ``iterable``, shown when ``progress`` and not :func:`quiet`.

    Example:
        >>> [i for i in bar(range(3), progress=False, desc="steps")]
        [0, 1, 2]
    """
    return tqdm(iterable, disable=not progress or quiet(), **kwargs)
