"""Campaign figures: progress against experiments or cost, and the next batch on the map.

Each function draws on ``ax`` (or a new figure), works headless (Agg) and returns
``(fig, ax)``; matplotlib is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mfgp.exceptions import InputDataError

__all__ = ["history", "progress_plot", "suggestion_plot"]

_METRICS = ("best", "hits", "count")


def history(observations: pd.DataFrame, target: str, costs: Mapping[str, float], *,
            maximize: bool = True, window: tuple[float, float] | None = None
            ) -> pd.DataFrame:  # fmt: skip
    """One row per acquired observation, in order: its cost and the campaign so far.

    Columns: ``experiments`` (target rows acquired so far), ``cost`` (spent so far),
    ``formula``, ``fidelity``, ``value``, ``best`` (the best target value acquired so far,
    NaN before the first) and, with a ``window``, ``hits`` (target values inside it so far).
    """
    obs = observations[observations["source"] == "observed"].reset_index(drop=True)
    is_target = (obs["fidelity"] == target).to_numpy()
    values = obs["value"].to_numpy(dtype=float)
    signed = np.where(is_target, values if maximize else -values, -np.inf)
    best = np.maximum.accumulate(signed) if len(signed) else signed
    best = np.where(np.isfinite(best), best if maximize else -best, np.nan)
    out = pd.DataFrame({
        "experiments": np.cumsum(is_target),
        "cost": np.cumsum([float(costs.get(f, 0.0)) for f in obs["fidelity"]]),
        "formula": obs["formula"], "fidelity": obs["fidelity"], "value": values, "best": best,
    })  # fmt: skip
    if window is not None:
        lo, hi = window
        out["hits"] = np.cumsum(is_target & (values >= lo) & (values <= hi))
    return out


def progress_plot(campaign, *, metric: str = "best", x: str = "experiments",
                  baselines: Mapping[str, pd.DataFrame] | None = None, label: str | None = None,
                  ax=None, units: str = "", quantity: str = ""):  # fmt: skip
    """The campaign's progress: best value, window hits or observations vs experiments or cost.

    Args:
        campaign: a :class:`~mfgp.loop.Campaign`.
        metric: ``"best"`` (best target value so far; the objective's direction), ``"hits"``
            (target values inside a window objective's ``[lo, hi]``) or ``"count"``
            (observations acquired).
        x: ``"experiments"`` (target rows acquired) or ``"cost"``.
        baselines: other runs to draw beside it, ``name -> frame`` with columns ``x`` and
            ``metric`` (e.g. :func:`history` of another campaign, or a benchmark's curve).
        label: the campaign's legend entry (default: its objective).
        ax: matplotlib axes to draw on (default: a new figure).
        units: the property's unit, e.g. ``"eV"`` (the ``best`` and ``hits`` axis labels).
        quantity: the property, e.g. ``"band gap"`` (same).
    """
    import matplotlib.pyplot as plt

    if metric not in _METRICS:
        raise InputDataError(f"metric must be one of {list(_METRICS)}; got {metric!r}")
    if x not in ("experiments", "cost"):
        raise InputDataError(f"x must be 'experiments' or 'cost'; got {x!r}")
    objective = campaign.objective
    window = None
    if metric == "hits":
        from mfgp.acquisition.objectives import WindowHits

        if not isinstance(objective, WindowHits):
            raise InputDataError(
                f"metric='hits' needs a window objective; this campaign's is {objective.name!r}"
            )
        window = (objective.lo, objective.hi)
    h = history(campaign.observations(), campaign.target, campaign.costs,
                maximize=getattr(objective, "maximize", True), window=window)  # fmt: skip
    if metric == "count":
        h["count"] = np.arange(1, len(h) + 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    else:
        fig = ax.figure
    ax.step(np.r_[0, h[x]], np.r_[h[metric].iloc[0] if metric == "best" and len(h) else 0,
                                  h[metric]], where="post", lw=2,
            label=label or f"{objective.name} (this campaign)")  # fmt: skip
    for name, frame in (baselines or {}).items():
        missing = [c for c in (x, metric) if c not in frame.columns]
        if missing:
            raise InputDataError(f"baseline {name!r} lacks columns {missing}")
        ax.step(frame[x], frame[metric], where="post", lw=1.2, alpha=0.8, label=name)
    ax.set_xlabel(f"{campaign.target} experiments acquired" if x == "experiments"
                  else "cost spent (units of the campaign's costs)")  # fmt: skip
    q = f" {quantity}" if quantity else ""
    u = f" {units}" if units else ""
    ax.set_ylabel({"best": f"best {campaign.target}{q} so far{f' ({units})' if units else ''}",
                   "hits": (f"hits in [{window[0]:g}, {window[1]:g}]{u} ({campaign.target}{q})"
                            if window else "hits"),
                   "count": "observations acquired"}[metric])  # fmt: skip
    ax.legend(fontsize="small")
    return fig, ax


def suggestion_plot(campaign, suggestions: pd.DataFrame | None = None, *,
                    x_fidelity: str | None = None, level: float = 0.9, ax=None,
                    units: str = "", quantity: str = ""):  # fmt: skip
    """The pool on the map from a computed fidelity to the target, and where the batch lies.

    Every pool composition with a value at ``x_fidelity`` (default: the lowest fidelity) is
    drawn at that value against its predicted target value and central interval (grey);
    acquired target values are black dots; every suggested row is a red marker labelled by its
    rank, at its composition's predicted target value (a star for a target measurement, a plus
    for a lower fidelity's). A suggestion whose composition has no ``x_fidelity`` value yet is
    drawn in a strip left of the map, marked "no <x_fidelity> value".

    Args:
        campaign: a :class:`~mfgp.loop.Campaign`.
        suggestions: what :meth:`~mfgp.loop.Campaign.suggest` returned (default: the pending
            suggestions).
        x_fidelity: the computed fidelity on the x axis (default: the lowest).
        level: the probability of the central intervals drawn.
        ax: matplotlib axes to draw on (default: a new figure).
        units: the property's unit, e.g. ``"eV"`` (both axes).
        quantity: the property, e.g. ``"band gap"`` (both axes).
    """
    import matplotlib.pyplot as plt

    from mfgp.featurize.composition import reduced_composition

    fids = list(campaign.fidelities)
    x_fid = x_fidelity or fids[0]
    if x_fid not in fids or x_fid == campaign.target:
        raise InputDataError(
            f"x_fidelity must be a lower fidelity of {fids}, not the target; got {x_fid!r}"
        )
    obs = campaign.observations()
    comp = pd.Series([str(c) for c in reduced_composition(obs["formula"].tolist())])
    xs = obs[obs.fidelity == x_fid].groupby(comp[obs.fidelity == x_fid].to_numpy())["value"]
    x_of = xs.mean().to_dict()
    pool = campaign.store.pool()
    pool_comp = [str(c) for c in reduced_composition(pool)]
    shown = [i for i, c in enumerate(pool_comp) if c in x_of]
    if not shown:
        raise InputDataError(f"no pool composition has a {x_fid!r} value to place it on the map")
    est, _ = campaign.model()
    formulas = [pool[i] for i in shown]
    pred = est.predictive(formulas)
    lo, hi = pred.interval(level)
    m = pred.mean()
    xv = np.array([x_of[pool_comp[i]] for i in shown])
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    else:
        fig = ax.figure
    ax.errorbar(xv, m, yerr=np.vstack([m - lo, hi - m]).clip(0), fmt="o", ms=2, color="0.6",
                alpha=0.4, elinewidth=0.5,
                label=f"pool: predicted, {round(level * 100)}% interval")  # fmt: skip
    top = obs[(obs.fidelity == campaign.target)]
    top_comp = comp[obs.fidelity == campaign.target].to_numpy()
    on_map = np.array([c in x_of for c in top_comp], dtype=bool)
    ax.plot([x_of[c] for c in top_comp[on_map]], top.value.to_numpy()[on_map], "k.", ms=5,
            label=f"{campaign.target} acquired")  # fmt: skip
    batch = campaign.pending() if suggestions is None else suggestions
    ranks = list(batch["rank"]) if "rank" in batch else list(range(1, len(batch) + 1))
    if len(batch):
        # every suggested row is drawn at its composition's predicted target value (a row at a
        # lower fidelity too); one whose composition has no x_fidelity value goes in a strip
        # left of the map, so no suggestion is left off
        b_comp = [str(c) for c in reduced_composition(batch["formula"].tolist())]
        b_pred = est.predictive(batch["formula"].tolist())
        bm = b_pred.mean()
        has_x = np.array([c in x_of for c in b_comp], dtype=bool)
        lo_x, hi_x = float(xv.min()), float(xv.max())
        strip = lo_x - 0.12 * max(hi_x - lo_x, 1e-9)
        bx = np.array([x_of[c] if c in x_of else strip for c in b_comp])
        fid = batch["fidelity"].to_numpy() if "fidelity" in batch else np.full(len(batch),
                                                                                campaign.target)
        at_target = fid == campaign.target
        for mask, marker, what in ((at_target, "*", f"suggested: {campaign.target}"),
                                   (~at_target, "P", "suggested: a lower fidelity")):
            if mask.any():
                ax.plot(bx[mask], bm[mask], marker, color="r", ms=13 if marker == "*" else 9,
                        ls="none", label=f"{what} ({int(mask.sum())})", zorder=5)
        for a, b, r in zip(bx, bm, ranks):
            ax.annotate(str(r), (a, b), textcoords="offset points", xytext=(6, 4),
                        color="r", fontsize=9)  # fmt: skip
        if not has_x.all():
            ax.axvline(strip + 0.06 * max(hi_x - lo_x, 1e-9), color="0.7", lw=0.8, ls=":")
            ax.annotate(f"no {x_fid} value", (strip, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8,
                        color="0.4")  # fmt: skip
    u = f" ({units})" if units else ""
    q = f" {quantity}" if quantity else ""
    ax.set_xlabel(f"{x_fid}{q}{u}")
    ax.set_ylabel(f"{campaign.target}{q}{u}")
    n_off = int((~has_x).sum()) if len(batch) else 0
    off = f" ({n_off} without a {x_fid} value, at the left)" if n_off else ""
    ax.set_title(f"next batch: {len(batch)} suggested{off}; {len(shown)} of {len(pool)} pool "
                 f"rows on the map", fontsize=10)  # fmt: skip
    ax.legend(fontsize="small")
    return fig, ax
