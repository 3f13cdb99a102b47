"""The plots people look at: parity, calibration, PIT, width vs error, learning curves.

Each function draws on ``ax`` (or a new figure), works headless (Agg), and returns
``(fig, ax)``. matplotlib is imported inside the functions: importing mfgp never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfgp.distributions import GaussianPredictive, Predictive, _arr

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


def _label(quantity: str, units: str, prefix: str = "") -> str:
    """``"observed band gap (eV)"`` from its parts (any of them may be empty)."""
    text = " ".join(w for w in (prefix, quantity) if w) or "value"
    return f"{text} ({units})" if units else text


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
    quantity: str = "",
    folds: int | None = None,
    title: str | None = None,
):
    """Observed vs predicted, with central ``level`` intervals as error bars, coloured by group.

    The title gives the MAE of the predictive means (with ``units``), the number of points and,
    with ``folds``, that the predictions are out-of-fold over that many folds.

    Args:
        y: the observed values, `n`.
        mean: Gaussian predictive means, `n` (or give ``pred``).
        std: their standard deviations, `n`.
        pred: any :class:`~mfgp.calibration.Predictive` of the `n` points instead.
        groups: a label per point (e.g. the fidelity): one colour and legend entry each.
        level: the probability of the central intervals drawn.
        ax: matplotlib axes to draw on (default: a new figure).
        units: the property's unit, e.g. ``"eV"`` (on both axes and in the title).
        quantity: the property, e.g. ``"band gap"`` (on both axes).
        folds: the predictions are out-of-fold over this many cross-validation folds.
        title: replaces the title described above.

    Example:
        >>> fig, ax = parity_plot([1.0, 2.0], [1.1, 1.9], [0.1, 0.2], units="eV",
        ...                       quantity="band gap", folds=2)
        >>> ax.get_title()
        'MAE 0.1 eV, n = 2, out-of-fold over 2 folds'
        >>> ax.get_xlabel()
        'observed band gap (eV)'
    """
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    lo, hi = p.interval(level)
    m = p.mean()
    pct = f"{level * 100:g}%"
    g = np.asarray(["all"] * y.size if groups is None else list(groups), dtype=object)
    for name in dict.fromkeys(g.tolist()):
        i = g == name
        ax.errorbar(
            y[i], m[i], yerr=np.vstack([m[i] - lo[i], hi[i] - m[i]]).clip(0), fmt="o", ms=3,
            alpha=0.6, elinewidth=0.7,
            label=str(name) if groups is not None else f"predictive mean, {pct} interval",
        )  # fmt: skip
    span = [min(y.min(), lo.min()), max(y.max(), hi.max())]
    ax.plot(span, span, "k--", lw=1, label="predicted = observed")
    ax.set_xlabel(_label(quantity, units, "observed"))
    ax.set_ylabel(_label(quantity, units, "predicted") + f", {pct} interval")
    mae = float(np.mean(np.abs(y - m)))
    where = f", out-of-fold over {folds} folds" if folds else ""
    ax.set_title(title or f"MAE {mae:.3g}{' ' + units if units else ''}, n = {y.size}{where}")
    ax.legend(title="fidelity" if groups is not None else None, fontsize="small")
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
    title: str | None = None,
):
    """Observed coverage of central intervals against nominal level (diagonal: calibrated).

    Both axes are fractions (no unit); each curve's legend entry gives its number of points.

    Example:
        >>> fig, ax = calibration_curve([0.0, 1.0, 2.0], [0.1, 1.2, 1.7], [0.3, 0.3, 0.3],
        ...                             label="raw")
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['raw (n = 3)', 'calibrated']
    """
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    levels = np.linspace(0.01, 0.99, 50)
    inside = p.covered(y, levels)
    g = np.asarray(["all"] * y.size if groups is None else list(groups), dtype=object)
    for name in dict.fromkeys(g.tolist()):
        i = g == name
        name = label if label and groups is None else (f"{label}: {name}" if label else name)
        ax.plot(levels, inside[:, i].mean(1), lw=2, label=f"{name} (n = {int(i.sum())})")
    if "calibrated" not in [line.get_label() for line in ax.get_lines()]:
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage (fraction inside)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig, ax


def pit_histogram(
    y: object, mean: object = None, std: object = None, *, pred: Predictive | None = None,
    bins: int = 20, ax=None, label: str | None = None,
):  # fmt: skip
    """Histogram of PIT values: flat when calibrated, U-shaped when over-confident.

    Both axes are unitless (PIT is a probability); the legend names the histogram (``label``,
    with its number of points) and the flat line of a calibrated model.
    """
    p = _pred(pred, mean, std)
    fig, ax = _axes(ax)
    y = _arr(y)
    ax.hist(p.pit(y), bins=bins, range=(0, 1), density=True, alpha=0.8,
            label=f"{label or 'PIT of the observed values'} (n = {y.size})")  # fmt: skip
    ax.axhline(1.0, color="k", ls="--", lw=1, label="calibrated (uniform)")
    ax.set_xlabel("PIT = F(observed), predictive CDF at the observed value")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return fig, ax


def interval_width_plot(
    y: object, mean: object = None, std: object = None, *, pred: Predictive | None = None,
    level: float = 0.9, ax=None, units: str = "", quantity: str = "",
):  # fmt: skip
    """Absolute error against interval width: the points should lie under the line ``w / 2``.

    ``units`` and ``quantity`` (e.g. ``"eV"``, ``"band gap"``) label both axes.
    """
    p = _pred(pred, mean, std)
    y = _arr(y)
    fig, ax = _axes(ax)
    lo, hi = p.interval(level)
    width = hi - lo
    ax.scatter(width, np.abs(y - p.mean()), s=6, alpha=0.5, label=f"points (n = {y.size})")
    top = float(width.max()) if width.size else 1.0
    ax.plot([0, top], [0, top / 2], "k--", lw=1, label="|error| = width / 2")
    u = f" ({units})" if units else ""
    what = f" of the {quantity}" if quantity else ""
    ax.set_xlabel(f"{level * 100:g}% interval width{what}{u}")
    ax.set_ylabel(f"|observed - predictive mean|{u}")
    ax.legend(fontsize="small")
    return fig, ax


def reliability_diagram(
    y: object, p: object, *, n_bins: int = 10, label: str | None = None, ax=None,
    event: str = "",
):  # fmt: skip
    """Observed frequency against predicted probability, in ``n_bins`` bins of ``p``.

    Points on the diagonal are calibrated; the legend gives the Brier score and the number of
    points. ``event`` (e.g. ``"metal"``) names what the probability is of, on both axes.
    """
    from mfgp.calibration.classification import brier_score, reliability_curve

    fig, ax = _axes(ax)
    curve = reliability_curve(y, p, n_bins)
    n = int(np.size(_arr(p)))
    name = f"{label + ', ' if label else ''}Brier {brier_score(y, p):.3f}, n = {n}"
    ax.plot(curve["mean_predicted"], curve["observed_frequency"], "o-", label=name)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    ax.set_xlabel(f"predicted P({event})" if event else "predicted probability")
    ax.set_ylabel(f"observed frequency of {event}" if event else "observed frequency")
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
