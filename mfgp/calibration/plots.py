"""The plots people look at: parity, calibration, PIT, width vs error, learning curves.

Each function draws on ``ax`` (or a new figure), works headless (Agg), and returns
``(fig, ax)``. matplotlib is imported inside the functions: importing mfgp never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfgp.calibration.predictive import GaussianPredictive, Predictive, _arr

__all__ = [
    "parity_plot",
    "calibration_curve",
    "pit_histogram",
    "interval_width_plot",
    "reliability_diagram",
    "learning_curve",
]


def _axes(ax, figsize=(4.5, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def _pred(pred: Predictive | None, mean: object, std: object) -> Predictive:
    return pred if pred is not None else GaussianPredictive(mean, std)


def parity_plot(
    y: object,
    mean: object = None,
    std: object = None,
    *,
    pred: Predictive | None = None,
    groups: Sequence[object] | None = None,
    level: float = 0.9,
    ax=None,
    units: str = "",
    title: str | None = None,
):
    """Observed vs predicted, with central ``level`` intervals as error bars, coloured by group.

    Example:
        >>> fig, ax = parity_plot([1.0, 2.0], [1.1, 1.9], [0.1, 0.2])  # doctest: +SKIP
    """
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    lo, hi = p.interval(level)
    m = p.mean()
    g = np.asarray(["all"] * y.size if groups is None else list(groups), dtype=object)
    for name in dict.fromkeys(g.tolist()):
        i = g == name
        ax.errorbar(
            y[i], m[i], yerr=np.vstack([m[i] - lo[i], hi[i] - m[i]]).clip(0), fmt="o", ms=3,
            alpha=0.6, elinewidth=0.7, label=str(name) if groups is not None else None,
        )  # fmt: skip
    span = [min(y.min(), lo.min()), max(y.max(), hi.max())]
    ax.plot(span, span, "k--", lw=1)
    u = f" ({units})" if units else ""
    ax.set_xlabel(f"observed{u}")
    ax.set_ylabel(f"predicted{u}, {round(level * 100)}% interval")
    mae = float(np.mean(np.abs(y - m)))
    ax.set_title(title or f"MAE {mae:.3g}{' ' + units if units else ''}")
    if groups is not None:
        ax.legend(title="fidelity", fontsize="small")
    return fig, ax


def calibration_curve(
    y: object,
    mean: object = None,
    std: object = None,
    *,
    pred: Predictive | None = None,
    groups: Sequence[object] | None = None,
    ax=None,
    label: str | None = None,
):
    """Observed coverage of central intervals against nominal level (diagonal: calibrated)."""
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    levels = np.linspace(0.01, 0.99, 50)
    inside = p.covered(y, levels)
    g = np.asarray(["all"] * y.size if groups is None else list(groups), dtype=object)
    for name in dict.fromkeys(g.tolist()):
        i = g == name
        ax.plot(levels, inside[:, i].mean(1), lw=2, label=label or str(name))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("nominal coverage of central interval")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    return fig, ax


def pit_histogram(
    y: object, mean: object = None, std: object = None, *, pred: Predictive | None = None,
    bins: int = 20, ax=None,
):  # fmt: skip
    """Histogram of PIT values: flat when calibrated, U-shaped when over-confident."""
    p = _pred(pred, mean, std)
    fig, ax = _axes(ax)
    ax.hist(p.pit(_arr(y)), bins=bins, range=(0, 1), density=True, alpha=0.8)
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_xlabel("PIT = F(observed)")
    ax.set_ylabel("density")
    return fig, ax


def interval_width_plot(
    y: object, mean: object = None, std: object = None, *, pred: Predictive | None = None,
    level: float = 0.9, ax=None,
):  # fmt: skip
    """Absolute error against interval width: the points should lie under the line ``w / 2``."""
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    lo, hi = p.interval(level)
    width = hi - lo
    ax.scatter(width, np.abs(y - p.mean()), s=6, alpha=0.5)
    top = float(width.max()) if width.size else 1.0
    ax.plot([0, top], [0, top / 2], "k--", lw=1, label="|error| = width / 2")
    ax.set_xlabel(f"{round(level * 100)}% interval width")
    ax.set_ylabel("|observed - mean|")
    ax.legend(fontsize="small")
    return fig, ax


def reliability_diagram(
    y: object, p: object, *, n_bins: int = 10, label: str | None = None, ax=None
):
    """Observed frequency against predicted probability, with bin counts underneath.

    Points on the diagonal are calibrated; the Brier score is shown in the legend.
    """
    from mfgp.calibration.classification import brier_score, reliability_curve

    fig, ax = _axes(ax)
    curve = reliability_curve(y, p, n_bins)
    name = f"{label + ', ' if label else ''}Brier {brier_score(y, p):.3f}"
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    ax.plot(curve["mean_predicted"], curve["observed_frequency"], "o-", label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small", loc="upper left")
    return fig, ax


def learning_curve(
    frame,
    *,
    x: str = "n_train",
    y: str = "mae",
    hue: str = "model",
    highlight: str | None = None,
    band: bool = True,
    ax=None,
    units: str = "",
    title: str | None = None,
):
    """A metric against training size, one line per ``hue`` value: the median over repeats.

    Args:
        frame: a tidy DataFrame, one row per (``hue``, ``x``, repeat), e.g. a benchmark's
            records (seeds or folds are the repeats).
        x: the column of training sizes (a log axis when they span a decade or more).
        y: the column of the metric.
        hue: the column of the things compared (a line each, in order of appearance).
        highlight: a ``hue`` value drawn thicker (the model the figure is about).
        band: shade the range (min to max) over repeats where there are several.
        ax: draw on these axes (default: a new figure).
        units: appended to the y label.
        title: the axes' title.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"model": ["a", "a", "b", "b"], "n_train": [10, 100, 10, 100],
        ...                    "mae": [1.0, 0.5, 0.9, 0.7]})
        >>> fig, ax = learning_curve(df, highlight="a")
        >>> [line.get_label() for line in ax.get_lines()]
        ['a', 'b']
    """
    import matplotlib.ticker

    fig, ax = _axes(ax, figsize=(4.8, 3.6))
    stats = frame.groupby([hue, x], sort=True)[y].agg(["median", "min", "max", "size"])
    for name in dict.fromkeys(frame[hue]):
        s = stats.loc[name]
        line, = ax.plot(s.index, s["median"], marker="o", ms=3, label=str(name),
                        lw=2.2 if name == highlight else 1.2)  # fmt: skip
        if band and (s["size"] > 1).any():
            ax.fill_between(s.index, s["min"], s["max"], color=line.get_color(), alpha=0.12,
                            lw=0)  # fmt: skip
    if frame[x].min() > 0 and frame[x].max() / frame[x].min() >= 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training labels" if x == "n_train" else x)
    ax.set_ylabel(f"{y}{f' ({units})' if units else ''}")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig, ax
