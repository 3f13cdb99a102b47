"""Progress bars and the ``mfgp`` logger: what long work shows, and the one switch that hides it.

Long work (fit restarts and levels, pretraining, fine-tuning, cross-validation, source ranking,
screening, campaigns) shows a tqdm bar when its ``progress`` argument is true, and logs a line
per finished step to the ``mfgp`` logger (``logging.getLogger("mfgp")``, INFO, or DEBUG for
steps that are many), and one as each part of a composite fit starts (:func:`stage`): silent
unless the application configures logging, e.g. ``logging.basicConfig(level="INFO")``.
``MFGP_QUIET=1`` in the environment turns every bar off, whatever ``progress`` says (batch
jobs, CI, a notebook you want to read).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from tqdm.auto import tqdm

__all__ = ["bar", "logger", "quiet", "stage"]

logger = logging.getLogger("mfgp")


def quiet() -> bool:
    """``True`` when ``MFGP_QUIET`` is set to anything but ``""``, ``0``, ``false`` or ``no``."""
    return os.environ.get("MFGP_QUIET", "").strip().lower() not in ("", "0", "false", "no")


#: the parts of a composite fit now running, outermost first (:func:`stage`)
_STAGES: ContextVar[tuple[str, ...]] = ContextVar("mfgp_progress_stages", default=())


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Name the part of a composite job that runs inside: bars and log lines say it.

    A bar's description inside ``stage("hurdle: classifier")`` reads ``"hurdle: classifier:
    fit"``, so a user watching a fit of several models knows which one is running; stages
    nest. A context variable: safe across threads and asyncio tasks.

    Example:
        >>> with stage("hurdle: regression"):
        ...     described("AR1 levels")
        'hurdle: regression: AR1 levels'
    """
    token = _STAGES.set((*_STAGES.get(), name))
    logger.info("%s", described(None))
    try:
        yield
    finally:
        _STAGES.reset(token)


def described(desc: str | None) -> str:
    """``desc`` after the names of the stages it runs in (:func:`stage`)."""
    return ": ".join((*_STAGES.get(), *((desc,) if desc else ())))


def bar(iterable: Iterable | None = None, *, progress: bool, **kwargs) -> tqdm:
    """A tqdm bar over ``iterable``, shown when ``progress`` and not :func:`quiet`.

    Its ``desc`` is prefixed with the stages it runs in (:func:`stage`).

    Example:
        >>> [i for i in bar(range(3), progress=False, desc="steps")]
        [0, 1, 2]
    """
    if _STAGES.get():
        kwargs["desc"] = described(kwargs.get("desc"))
    return tqdm(iterable, disable=not progress or quiet(), **kwargs)
