"""Figures from scripts: save what a notebook would show inline.

The numbered examples run both as notebooks and as scripts. In a notebook their figures appear
as cell outputs; run as scripts (``python examples/01_quickstart.py``, headless or not) they end
with :func:`save_figures`, which writes every open figure to PNG files. matplotlib is imported
inside the function: importing this module loads nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["in_notebook", "save_figures"]

#: the environment variable that names the folder figures are saved to
FIGURES_ENV = "MFGP_FIGURES"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where figures are shown as cell outputs)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _default_directory() -> Path:
    """``$MFGP_FIGURES``, else ``figures/`` beside the running script (else the working dir)."""
    if os.environ.get(FIGURES_ENV):
        return Path(os.environ[FIGURES_ENV])
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    return (Path(script).resolve().parent if script else Path.cwd()) / "figures"


def save_figures(name: str, directory: str | os.PathLike | None = None, *, dpi: int = 100,
                 close: bool = False) -> list[Path]:  # fmt: skip
    """Save every open matplotlib figure as ``<directory>/<name>-<k>.png``, outside Jupyter.

    In a Jupyter kernel the figures are already cell outputs, so nothing is written unless
    ``directory`` (or ``$MFGP_FIGURES``) is given. Each saved path is printed.

    Args:
        name: the files' prefix, e.g. the example's name (``"01_quickstart"``).
        directory: where to write (created if missing). Default: ``$MFGP_FIGURES`` if set,
            else ``figures/`` beside the running script (``examples/figures/`` for
            ``python examples/01_quickstart.py``), else ``figures/`` in the working directory.
        dpi: the PNG resolution.
        close: close each figure once saved.

    Returns:
        The paths written, in the figures' order (``k`` counts from 1); empty in a notebook.

    Example:
        >>> import tempfile, matplotlib.pyplot as plt
        >>> plt.close("all")
        >>> fig, ax = plt.subplots()
        >>> paths = save_figures("demo", tempfile.mkdtemp(), close=True)  # doctest: +ELLIPSIS
        saved ...demo-1.png
        >>> [p.name for p in paths]
        ['demo-1.png']
    """
    if directory is None and in_notebook() and not os.environ.get(FIGURES_ENV):
        return []
    import matplotlib.pyplot as plt

    out = Path(directory) if directory is not None else _default_directory()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, number in enumerate(plt.get_fignums(), start=1):
        fig = plt.figure(number)
        path = out / f"{name}-{k}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        print(f"saved {path}")
        paths.append(path)
        if close:
            plt.close(fig)
    return paths
