"""What a mixture of experts learned, and which sources transfer: weights, plot, source ranking."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.exceptions import InputDataError
from mfgp.kernels.experts import AdditiveExpertKernel, GatedExpertKernel
from mfgp.nn.experts import ExpertStack

__all__ = ["plot_source_weights", "rank_sources", "source_weights"]


def _source(model_name: str) -> str:
    return model_name.rsplit("-", 1)[0] if "-" in model_name else model_name


def source_weights(model: torch.nn.Module,
                   level_names: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """The learned weight of each source model in every mixture kernel of a fitted model.

    Args:
        model: a fitted BoTorch model whose input space is an :class:`ExpertStack` (e.g.
            ``MultiFidelityRegressor(experts="all").fit(...).model_``).
        level_names: names of the kernel components in order (e.g. the fidelities of an AR1:
            component ``t`` is the discrepancy ``delta_t`` of level ``t``); default ``0, 1, ...``.

    Returns:
        A tidy frame ``component, level, source, model, weight, mixture`` (weights sum to one
        within a component).

    Raises:
        InputDataError: the model has no mixture kernel (``mixture="concat"`` has no weights).
    """
    stacks = [m for m in model.modules() if isinstance(m, ExpertStack)]
    if not stacks:
        raise InputDataError("this model's input space is not an expert stack (fit with experts=)")
    names = stacks[0].names
    rows = []
    for path, module in model.named_modules():
        if not isinstance(module, (AdditiveExpertKernel, GatedExpertKernel)):
            continue
        found = re.search(r"data_kernels\.(\d+)", path)
        j = int(found.group(1)) if found else 0
        level = level_names[j] if level_names is not None and j < len(level_names) else j
        kind = "additive" if isinstance(module, AdditiveExpertKernel) else "gated"
        for name, w in zip(names, module.weights().cpu().tolist()):
            rows.append({"component": path, "level": level, "source": _source(name),
                         "model": name, "weight": float(w), "mixture": kind})  # fmt: skip
    if not rows:
        raise InputDataError(
            "no mixture kernel in this model: mixture='concat' learns no source weights (use "
            "'additive' or 'gated')"
        )
    return pd.DataFrame(rows)


def plot_source_weights(weights: pd.DataFrame, ax=None, title: str | None = None):
    """Horizontal bars of :func:`source_weights`, one group per level; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.5 + 0.35 * len(weights)))
    levels = list(dict.fromkeys(weights["level"].tolist()))
    sources = list(dict.fromkeys(weights["source"].tolist()))
    height = 0.8 / max(len(levels), 1)
    y = np.arange(len(sources))
    for i, level in enumerate(levels):
        part = weights[weights["level"] == level].set_index("source").reindex(sources)
        ax.barh(y + i * height, part["weight"].fillna(0).to_numpy(), height=height,
                label=str(level))  # fmt: skip
    ax.set_yticks(y + height * (len(levels) - 1) / 2, sources)
    ax.set_xlabel("weight (share of the kernel)")
    ax.set_ylabel("source model")
    ax.set_xlim(0, 1)
    if len(levels) > 1:
        ax.legend(title="level", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def _cv_single(frame: pd.DataFrame, splits, extractor, featurizer: str, options) -> tuple:
    """Out-of-fold ``(mean, std, seconds)`` of a single-fidelity GP on one input space."""
    import time

    from mfgp.data.dataset import MultiFidelityDataset
    from mfgp.models.features import FeatureMap
    from mfgp.models.specs import SingleSpec
    from mfgp.predict import predict_marginals

    mean, std = np.empty(len(frame)), np.empty(len(frame))
    seconds = 0.0
    spec = SingleSpec()
    for train, test in splits:
        tic = time.perf_counter()
        ds = MultiFidelityDataset.from_frame(frame.iloc[train], featurizer=featurizer)
        X, Y, Yvar = ds.tensors()
        fmap = FeatureMap.standardize(X) if extractor is None else FeatureMap(extractor=extractor)
        model = spec.build(X, Y, Yvar, feature_map=fmap)
        spec.fit(model, options)
        seconds += time.perf_counter() - tic
        Z = ds.inputs_for(frame["formula"].iloc[test].tolist())
        m, v = predict_marginals(model, Z, observation_noise=True)
        mean[test], std[test] = m.numpy(), v.clamp_min(1e-12).sqrt().numpy()
    return mean, std, seconds


def rank_sources(target: pd.DataFrame, sources: Sequence[str] | str = "all", *,
                 folds: int = 5, seed: int = 0, include_magpie: bool = True,
                 progress: bool = False, max_iter: int = 100, restarts: int = 0,
                 max_fit_points: int | None = 1500) -> pd.DataFrame:  # fmt: skip
    """Shotgun source selection (XenonPy): cross-validate a GP on each source's features.

    Each source model's features are the input space of a single-fidelity GP on the target's
    own labels (the GP of ``MultiFidelityRegressor("single", experts=[source])``); the sources
    are ranked by out-of-fold MAE (NLPD and 90% coverage of the observation predictive beside
    it), with a GP on standardised Magpie features as the reference row.

    Args:
        target: the labels: a frame with ``formula`` and ``value`` (a ``fidelity`` column, if
            present, must hold one fidelity).
        sources: ``"all"`` (every learned source) or names from :func:`mfgp.experts.available`.
        folds: K of the K-fold split (seeded, shuffled).
        seed: seeds the folds and the fits.
        include_magpie: add the Magpie-feature GP (``source="magpie"``).
        progress: a progress bar over sources.
        max_iter: L-BFGS iterations per fit.
        restarts: extra seeded starts per fit.
        max_fit_points: rows for the hyperparameters.

    Returns:
        A frame ``rank, source, mae, rmse, nlpd, coverage_90, fit_seconds``, best first.
    """
    from sklearn.model_selection import KFold

    from mfgp.calibration.metrics import summary
    from mfgp.experts.library import _index, load_stack
    from mfgp.models.specs import FitOptions

    for col in ("formula", "value"):
        if col not in target.columns:
            raise InputDataError(f"rank_sources needs a {col!r} column; got {list(target.columns)}")
    frame = target.copy()
    if "fidelity" in frame.columns and frame["fidelity"].nunique() > 1:
        raise InputDataError(
            f"rank_sources takes the target's labels only; the frame has fidelities "
            f"{sorted(frame['fidelity'].unique())}: pass frame[frame.fidelity == target]"
        )
    frame["fidelity"] = frame["fidelity"] if "fidelity" in frame.columns else "target"
    frame = frame.reset_index(drop=True)
    frame.attrs.pop("fidelities", None)  # one level, whatever a loader's order declared
    if len(frame) < 2 * folds:
        raise InputDataError(f"rank_sources needs at least {2 * folds} labels; got {len(frame)}")
    names = sorted(_index()["default"]) if isinstance(sources, str) and sources == "all" else (
        [sources] if isinstance(sources, str) else list(sources))  # fmt: skip
    candidates: list[tuple[str, str | None]] = [(n, n) for n in names]
    if include_magpie:
        candidates.insert(0, ("magpie", None))
    splits = list(KFold(folds, shuffle=True, random_state=seed).split(frame))
    options = FitOptions(max_iter=max_iter, restarts=restarts, max_fit_points=max_fit_points,
                         seed=seed)  # fmt: skip
    rows = []
    for label, name in progress_bar(candidates, progress=progress, desc="rank sources"):
        extractor = None if name is None else load_stack([name])
        featurizer = "magpie" if name is None else "extended"
        mean, std, seconds = _cv_single(frame, splits, extractor, featurizer, options)
        s = summary(frame["value"].to_numpy(float), mean, std).loc["all"]
        logger.info("rank_sources %s: MAE %.4g, NLPD %.3g, 90%% coverage %.2f (%.1f s)", label,
                    s["mae"], s["nlpd"], s["coverage_90"], seconds)  # fmt: skip
        rows.append({"source": label, "mae": s["mae"], "rmse": s["rmse"], "nlpd": s["nlpd"],
                     "coverage_90": s["coverage_90"], "fit_seconds": seconds})  # fmt: skip
    out = pd.DataFrame(rows).sort_values("mae", ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out
