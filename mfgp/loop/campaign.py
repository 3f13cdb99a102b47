"""Active-learning campaigns over a pool of compositions: suggest, observe, resume.

A :class:`Campaign` holds a pool of candidate formulas, the observations so far (cheap
computed values and expensive measurements, at named fidelities), a cost per fidelity and an
objective (:mod:`mfgp.acquisition.objectives`). ``suggest(q)`` fits the model (or conditions the
last fitted one on what is new), scores every unobserved (formula, fidelity) row of the pool
and records a diverse batch as pending; ``observe(results)`` records measurements; ``run``
simulates a campaign against an oracle. Everything lives in one SQLite store
(:class:`~mfgp.loop.store.Store`): a campaign killed at any moment loses no committed
observation and, reopened, makes the same next suggestion as an uninterrupted one.

Example:
    >>> camp = Campaign(MultiFidelityRegressor("ar1"), pool, target="expt",
    ...                 costs={"pbe": 1, "expt": 500}, objective="learn", data=known,
    ...                 store="gaps.db")  # doctest: +SKIP
    >>> batch = camp.suggest(4)  # doctest: +SKIP
    >>> camp.observe(batch.assign(value=measured))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.acquisition import make_objective, select_batch
from mfgp.exceptions import (
    InputDataError,
    NonFiniteValueError,
    PoolExtendedWarning,
    UnknownFidelityError,
)
from mfgp.featurize.composition import reduced_composition
from mfgp.loop.stopping import StoppingCondition
from mfgp.loop.store import Store

__all__ = ["Campaign", "TableOracle"]

#: the estimators a campaign stores by their parameters (the store keeps the class's name)
_ESTIMATORS = ("MultiFidelityRegressor", "HurdleRegressor")

#: checkpoints kept in the store (the newest serves a resumed campaign)
KEEP_CHECKPOINTS = 2


def _estimator_class(name: str):
    import mfgp.estimators as est

    if name not in _ESTIMATORS:
        raise InputDataError(f"a campaign's model is one of {list(_ESTIMATORS)}; got {name!r}")
    return getattr(est, name)


class TableOracle:
    """A simulated lab: answers suggestions from a hidden table (``formula, fidelity, value``).

    Repeated rows of one (composition, fidelity) are averaged; a suggestion the table cannot
    answer raises :class:`~mfgp.exceptions.InputDataError`.
    """

    def __init__(self, table: pd.DataFrame) -> None:
        comps = reduced_composition(table["formula"].tolist())
        keyed = table.assign(_key=[str(c) for c in comps])
        groups = keyed.groupby(["_key", "fidelity"])
        self.values = groups["value"].mean().to_dict()
        # known noise travels with the answers (the variance of a mean of k repeats is s / k)
        self.noise = ((groups["noise"].mean() / groups.size()).to_dict() if "noise" in table
                      else None)  # fmt: skip

    def __call__(self, suggestions: pd.DataFrame) -> pd.DataFrame:  # noqa: D102
        comps = reduced_composition(suggestions["formula"].tolist())
        values, noise = [], []
        for comp, fid, formula in zip(comps, suggestions["fidelity"], suggestions["formula"]):
            key = (str(comp), fid)
            if key not in self.values:
                raise InputDataError(f"the oracle has no {fid!r} value for {formula!r}")
            values.append(self.values[key])
            if self.noise is not None:
                noise.append(self.noise[key])
        out = suggestions.assign(value=values)
        return out if self.noise is None else out.assign(noise=noise)


class Campaign:
    """An active-learning campaign on a SQLite store (see the module).

    Args:
        model: an unfitted :class:`~mfgp.MultiFidelityRegressor` (or
            :class:`~mfgp.HurdleRegressor`) whose parameters describe the model; stored by
            its parameters and refitted on the observations.
        pool: candidate formulas (a list, or a DataFrame with ``formula``).
        target: the fidelity whose values the campaign is about (the last of ``costs``).
        costs: cost per fidelity that may be acquired, low to high fidelity, the target last
            (e.g. ``{"pbe": 1, "hse": 20, "expt": 500}``); fidelities not listed are never
            suggested (their observations still inform the model).
        objective: ``"learn"``, ``"kg"``, ``"mes"``, ``"window"``, ``"ucb"``, ``"logei"`` or an
            :class:`~mfgp.acquisition.Objective`; ``objective_options`` go to its constructor.
        data: the observations known at the start (``formula, fidelity, value[, noise]``).
        store: the SQLite file; an existing one is reopened (then pass only ``store``, or
            use :meth:`open`).
        fidelities: all fidelities low to high (default: ``data.attrs["fidelities"]`` as the
            shipped loaders set it, else the keys of ``costs``).
        seed: seeds the reference sample, the model's fits (it replaces the model's own
            ``seed``) and the objectives that sample (``logei``).
        refit_every: refit the hyperparameters once this many observations are new since the
            last fit; in between the last fitted model is conditioned on them (exact, fast).
        reference_size: target rows of the pool that information objectives average over and
            :class:`~mfgp.loop.PredictiveChange` watches: a seeded sample of the pool, chosen
            once at creation (formulas added later do not change it).
        allow_repeats: allow several rows of one composition in a batch, and suggesting rows
            already observed.
    """

    def __init__(self, model=None, pool=None, *, target: str | None = None,
                 costs: dict[str, float] | None = None, objective="learn",
                 objective_options: dict | None = None, data: pd.DataFrame | None = None,
                 store: str | os.PathLike = "campaign.db", fidelities: Sequence[str] | None = None,
                 seed: int = 0, refit_every: int = 1, reference_size: int = 256,
                 allow_repeats: bool = False) -> None:  # fmt: skip
        existed = Path(store).exists()
        self.store = Store(store)
        try:
            given = model is not None or pool is not None or costs is not None
            if not given and self.store.get("config") is None:
                raise InputDataError(
                    f"{str(store)!r} holds no campaign (none was created, or its creation was "
                    "interrupted): create it with model, pool and costs"
                )
            if given:
                if model is None or pool is None or costs is None:
                    missing = [k for k, v in (("model", model), ("pool", pool),
                                              ("costs", costs)) if v is None]  # fmt: skip
                    raise InputDataError(
                        f"a new campaign needs model, pool and costs; {missing} not given "
                        "(to reopen a campaign, pass only store=, or use Campaign.open)"
                    )
                self._create(model, pool, target, costs, objective, objective_options or {},
                             data, fidelities, seed, refit_every, reference_size,
                             allow_repeats)  # fmt: skip
            self._load_config()
        except BaseException:
            self.store.close()
            if not existed:  # a failed creation leaves no store and no lock file behind
                for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
                    Path(f"{store}{suffix}").unlink(missing_ok=True)
            raise

    @classmethod
    def open(cls, store: str | os.PathLike) -> Campaign:
        """Reopen the campaign in ``store``."""
        if not Path(store).is_file():
            raise InputDataError(f"no campaign store at {str(store)!r}")
        return cls(store=store)

    def close(self) -> None:
        """Close the store (releases its lock)."""
        self.store.close()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- configuration -----------------------------------------------------------------------
    def _create(self, model, pool, target, costs, objective, objective_options, data,
                fidelities, seed, refit_every, reference_size, allow_repeats) -> None:  # fmt: skip
        name = type(model).__name__
        _estimator_class(name)
        from mfgp.surrogates import check_campaign_model

        check_campaign_model(model, make_objective(objective, **objective_options))
        if fidelities is None and isinstance(data, pd.DataFrame) and "fidelities" in data.attrs:
            fidelities = data.attrs["fidelities"]  # the shipped loaders' order, low to high
        fids = list(fidelities) if fidelities is not None else list(costs)
        if fidelities is None and isinstance(data, pd.DataFrame) and "fidelity" in data:
            extra = [f for f in dict.fromkeys(data["fidelity"].astype(str)) if f not in fids]
            if extra:
                raise UnknownFidelityError(
                    f"data has fidelities {extra} that costs does not list; pass "
                    f"fidelities=[...] low to high, the target last (e.g. "
                    f"{extra + fids}), or set data.attrs['fidelities']"
                )  # fmt: skip
        target = fids[-1] if target is None else str(target)
        if target != fids[-1]:
            raise InputDataError(
                f"the target {target!r} must be the last fidelity; fidelities are {fids}"
            )
        for fid, cost in costs.items():
            if fid not in fids:
                raise UnknownFidelityError(f"cost given for {fid!r}, not one of {fids}")
            if not (isinstance(cost, (int, float)) and math.isfinite(cost) and cost > 0):
                raise InputDataError(f"the cost of {fid!r} must be a positive number; got {cost!r}")
        if target not in costs:
            raise InputDataError(f"give the cost of the target {target!r} in costs")
        if refit_every < 1 or reference_size < 1:
            raise InputDataError("refit_every and reference_size must be >= 1")
        obj = make_objective(objective, **objective_options)
        formulas = pool["formula"].tolist() if isinstance(pool, pd.DataFrame) else list(pool)
        if not formulas:
            raise InputDataError("the pool is empty")
        reduced_composition(formulas)  # names the row of a bad formula
        params = clone(model).set_params(fidelities=fids, seed=int(seed)).get_params(deep=False)
        config = {"model": name, "params": _jsonable(params), "target": target,
                  "fidelities": fids, "costs": {k: float(v) for k, v in costs.items()},
                  "objective": obj.to_dict(), "seed": int(seed),
                  "refit_every": int(refit_every), "reference_size": int(reference_size),
                  "allow_repeats": bool(allow_repeats)}  # fmt: skip
        initial = None if data is None else self._validated(data, fids)
        import hashlib

        digest = hashlib.sha256(json.dumps(
            [formulas, None if initial is None else initial.astype(str).values.tolist()]
        ).encode()).hexdigest()  # fmt: skip
        config["inputs"] = digest
        stored = self.store.get("config")
        if stored is not None:  # the same campaign again (a rerun cell, a restarted script)
            if stored != config:
                diff = sorted(k for k in config if stored.get(k) != config[k])
                raise InputDataError(
                    f"{str(self.store.path)!r} holds a different campaign (it differs in "
                    f"{diff}); reopen it with Campaign.open(store), or use another store"
                )
            return
        if initial is not None:
            _check_noise(initial)
        with self.store.transaction():
            self.store.add_pool(formulas)
            if initial is not None:
                self.store.add_observations(initial, "initial")
            self.store.set("reference", _reference_sample(formulas, reference_size, seed))
            self.store.set("config", config)

    def _load_config(self) -> None:
        c = self.store.get("config")
        self.config = c
        self.target = c["target"]
        self.fidelities = list(c["fidelities"])
        self.costs = dict(c["costs"])
        self.objective = make_objective(c["objective"])
        self._fitted: tuple[int, object] | None = None
        if self.store.get("reference") is None:  # a store written before it was kept
            self.store.set("reference", _reference_sample(self.store.pool(),
                                                          c["reference_size"], c["seed"]))

    def reference(self) -> list[str]:
        """The formulas whose target predictions information objectives average over."""
        return list(self.store.get("reference"))

    # -- data --------------------------------------------------------------------------------
    @staticmethod
    def _validated(frame: pd.DataFrame, fidelities: list[str]) -> pd.DataFrame:
        """Rows ``formula, fidelity, value[, noise][, suggestion]``, checked; names bad rows."""
        if not isinstance(frame, pd.DataFrame):
            raise InputDataError(f"observations must be a DataFrame; got {type(frame).__name__}")
        missing = [c for c in ("formula", "fidelity", "value") if c not in frame.columns]
        if missing:
            raise InputDataError(f"observations need columns formula, fidelity, value; "
                                 f"missing {missing}")  # fmt: skip
        cols = [c for c in ("formula", "fidelity", "value", "noise", "suggestion")
                if c in frame.columns]  # fmt: skip
        out = frame[cols].reset_index(drop=True).copy()
        out["fidelity"] = out["fidelity"].astype(str)
        for i, (fid, formula) in enumerate(zip(out["fidelity"], out["formula"])):
            if fid not in fidelities:
                raise UnknownFidelityError(
                    f"row {i}: fidelity {fid!r} of {formula!r} is not one of {fidelities}"
                )
        values = pd.to_numeric(out["value"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NonFiniteValueError(
                f"row {i}: value {frame['value'].iloc[i]!r} of {out['formula'][i]!r} is not a "
                "finite number"
            )
        out["value"] = values
        if "noise" in out:
            noise = pd.to_numeric(out["noise"], errors="coerce").to_numpy(dtype=float)
            if (noise[~np.isnan(noise)] < 0).any():
                i = int(np.flatnonzero(noise < 0)[0])
                raise InputDataError(f"row {i}: noise {noise[i]:g} is negative")
        reduced_composition(out["formula"].tolist())
        return out

    def observations(self) -> pd.DataFrame:
        """Every observation (``source``: ``"initial"`` or ``"observed"``), in order."""
        return self.store.observations()

    def pending(self) -> pd.DataFrame:
        """Suggestions not answered yet."""
        return self.store.suggestions("pending")

    def spent(self) -> float:
        """The cost of the observations acquired since the start."""
        obs = self.observations()
        acquired = obs[obs.source == "observed"]
        return float(sum(self.costs.get(f, 0.0) for f in acquired.fidelity))

    def frame(self) -> pd.DataFrame:
        """The observations as a long frame for the model (fidelity order attached)."""
        obs = self.observations()
        cols = ["formula", "fidelity", "value"] + (["noise"] if obs["noise"].notna().any()
                                                   else [])  # fmt: skip
        df = obs[cols].copy()
        df.attrs["fidelities"] = list(self.fidelities)
        return df

    # -- the model ---------------------------------------------------------------------------
    def model(self, refit: bool = False):
        """The fitted estimator behind the next suggestion (refit per ``refit_every``).

        Args:
            refit: fit now on every observation, whatever ``refit_every`` says (the new fit is
                checkpointed and serves the next suggestions).

        Returns:
            ``(estimator, n_fit)``: the estimator fitted on the first ``n_fit`` observations.
        """
        n = len(self.observations())
        if n == 0:
            raise InputDataError("the campaign has no observations yet: observe some first")
        from mfgp.estimators import estimator_from_bytes, estimator_to_bytes

        if self._fitted is None:
            saved = self.store.latest_checkpoint()
            if saved is not None:
                cls = _estimator_class(self.config["model"])
                self._fitted = (saved[0], estimator_from_bytes(saved[1], cls))
        stale = self._fitted is None or n - self._fitted[0] >= self.config["refit_every"]
        if stale or (refit and self._fitted[0] != n):
            cls = _estimator_class(self.config["model"])
            est = cls(**{**self.config["params"], "progress": False})
            est.fit(self.frame(), candidates=self.store.pool())
            self.store.add_checkpoint(n, estimator_to_bytes(est), keep=KEEP_CHECKPOINTS)
            self._fitted = (n, est)
        return self._fitted[1], self._fitted[0]

    def surrogate(self):
        """What the next suggestion is scored with: a conditioned surrogate.

        The fitted model's :class:`~mfgp.surrogates.Surrogate`, conditioned on every
        observation since the fit and on the pending suggestions.
        """
        est, n_fit = self.model()
        return self._base_surrogate(est).conditioned(self.observations().iloc[n_fit:],
                                                     self.pending())  # fmt: skip

    def _base_surrogate(self, est):
        """The fitted estimator's surrogate, made once per fit (it caches what the fit fixes)."""
        held = getattr(self, "_surrogate", None)
        if held is None or held[0] is not est:
            held = (est, est.surrogate())
            self._surrogate = held
        return held[1]

    # -- suggestions -------------------------------------------------------------------------
    def suggest(self, q: int = 1, max_cost: float | None = None,
                max_count: dict[str, float] | None = None, *, cap=None) -> pd.DataFrame:
        """Score the pool and record the best ``q`` rows as pending; returns them.

        The rows are scored with the fitted model conditioned on every observation since the
        fit and on the pending suggestions (:meth:`surrogate`). With ``max_cost`` (and
        ``max_count``: fidelity -> the most rows of it, or ``cap``: a stopping condition's
        :meth:`~mfgp.loop.StoppingCondition.cap`), the batch is chosen among the rows that
        still fit: a cheaper row is taken when an expensive one no longer does (empty if none
        fits).

        Columns: ``suggestion`` (its id in the store), ``rank`` (its place in this batch),
        ``formula``, ``fidelity``, ``score`` (the objective when the row was chosen, in
        ``attrs["score_units"]``; per unit cost for information objectives), ``mean``,
        ``std``, ``lower_90``, ``upper_90`` (the predictive of a new observation at that
        fidelity, on the target's own scale: a hurdle's point mass at zero included),
        ``cost`` and ``target_mean``, ``target_lower_90``, ``target_upper_90`` (the forecast
        of the target measurement of that composition, also for a cheaper row).
        """
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise InputDataError(f"q must be a positive integer; got {q!r}")
        from mfgp.loop.stopping import Cap

        if max_cost is not None or max_count:
            limit = Cap(math.inf if max_cost is None else float(max_cost), dict(max_count or {}))
            cap = limit if cap is None else _both_caps(cap, limit)
        objective = self.objective
        est, n_fit = self.model()
        sur = self._base_surrogate(est)
        if objective.needs_gaussian and not sur.gaussian:
            from mfgp.surrogates import not_gaussian

            raise InputDataError(not_gaussian(objective, est))
        obs = self.observations()
        pool = self.store.pool()
        fids = [f for f in self.fidelities if f in self.costs]
        if not objective.information:
            fids = [self.target]
        pend = self.pending()
        taken = _keys(pend) if self.config["allow_repeats"] else _keys(obs) | _keys(pend)
        comps = [str(c) for c in reduced_composition(pool)]
        rows = [(p, c, f) for f in fids for p, c in zip(pool, comps) if (c, f) not in taken]
        if not rows:
            return self._empty_suggestions()
        # an additive objective's value of a row does not depend on the pending ones
        scoring = sur.conditioned(obs.iloc[n_fit:], None if objective.additive else pend)
        by_fid = {f: [p for p, _, g in rows if g == f] for f in fids}
        by_fid = {f: v for f, v in by_fid.items() if v}
        C = torch.cat([scoring.inputs(v, f) for f, v in by_fid.items()])
        rows = [r for f in by_fid for r in rows if r[2] == f]  # the order of C
        formulas = [r[0] for r in rows]
        reference = self.reference()
        R = scoring.inputs(reference, self.target) if objective.information else None
        cost = torch.tensor([self.costs[f] for _, _, f in rows], dtype=C.dtype)
        is_target = torch.tensor([f == self.target for _, _, f in rows])
        groups = np.array([c for _, c, _ in rows]) if not self.config["allow_repeats"] else None
        ref_weight = obs_weight = None
        if objective.information:
            w = scoring.reference_weights(reference)
            ref_weight = None if w is None else torch.as_tensor(w)
            parts = [scoring.weights(v, f) for f, v in by_fid.items()]
            if any(p is not None for p in parts):
                obs_weight = torch.as_tensor(np.concatenate(
                    [np.ones(len(v)) if p is None else p for p, v in zip(parts, by_fid.values())]
                ))  # fmt: skip

        def predictive(mean, var_y, idx):
            return scoring.user_predictive(mean, var_y, [formulas[i] for i in idx], self.target)

        sel = select_batch(
            scoring.model, C, objective, q=int(q), R=R, cost=cost, is_target=is_target,
            groups=groups, baseline=scoring.baseline() if objective.needs_baseline else None,
            predictive=predictive, kinds=np.array([f for _, _, f in rows]),
            fits=None if cap is None else cap.allows,
            ref_weight=ref_weight, obs_weight=obs_weight, seed=int(self.config["seed"]),
        )  # fmt: skip
        if not sel.rows:
            return self._empty_suggestions()
        chosen = [rows[i] for i in sel.rows]
        out = pd.DataFrame({
            "rank": np.arange(1, len(sel.rows) + 1),
            "formula": [r[0] for r in chosen],
            "fidelity": [r[2] for r in chosen],
            "score": sel.scores,
        })  # fmt: skip
        for col in ("mean", "std", "lower_90", "upper_90"):
            out[col] = np.nan
        for fid in dict.fromkeys(out["fidelity"]):
            at = np.flatnonzero(out["fidelity"].to_numpy() == fid)
            idx = np.asarray(sel.rows)[at]
            pred = scoring.user_predictive(sel.mean[idx], sel.std[idx] ** 2,
                                           out["formula"].iloc[at].tolist(), fid)  # fmt: skip
            out.loc[at, "mean"], out.loc[at, "std"] = pred.mean(), pred.std()
            out.loc[at, "lower_90"], out.loc[at, "upper_90"] = pred.ppf(0.05), pred.ppf(0.95)
        out["cost"] = [self.costs[r[2]] for r in chosen]
        forecast = scoring.predictive(out["formula"].tolist(), self.target)
        out["target_mean"] = forecast.mean()
        out["target_lower_90"], out["target_upper_90"] = forecast.ppf(0.05), forecast.ppf(0.95)
        history = self.store.get("reference_means", [])
        history = [h for h in history if isinstance(h, dict)]
        record = not history or history[-1]["n_obs"] != len(obs)
        if record:
            ref_mean = scoring.predictive(reference, self.target).mean()
            history = (history + [{"n_obs": len(obs),
                                   "means": np.asarray(ref_mean, dtype=float).tolist()}])[-2:]
        round_ = int(self.store.get("rounds", 0)) + 1
        with self.store.transaction():
            ids = self.store.add_suggestions(out, round_)
            self.store.set("rounds", round_)
            if record:
                self.store.set("reference_means", history)
        out.insert(0, "suggestion", ids)
        out.attrs["score_units"] = objective.units + (
            f", on {scoring.scale}" if objective.information and not scoring.gaussian else "")
        return out

    def _empty_suggestions(self) -> pd.DataFrame:
        out = pd.DataFrame(columns=list(SUGGESTION_COLUMNS))
        out.attrs["score_units"] = self.objective.units
        return out

    # -- observations ------------------------------------------------------------------------
    def observe(self, results: pd.DataFrame) -> pd.DataFrame:
        """Record measurements (``formula, fidelity, value[, noise]``) in one transaction.

        Rows answer the pending suggestion of their (composition, fidelity), if any; a formula
        outside the pool is added to it. A bad row raises an error naming it, and nothing is
        recorded. Returns the rows recorded.
        """
        frame = self._validated(results, self.fidelities)
        _check_noise(frame, self.observations()["noise"])
        pend = self.pending()
        key = {(str(c), f): int(i) for c, f, i in zip(reduced_composition(pend.formula.tolist()),
                                                      pend.fidelity, pend.id)}  # fmt: skip
        comps = [str(c) for c in reduced_composition(frame.formula.tolist())]
        frame["suggestion"] = [key.pop((c, f), None) for c, f in zip(comps, frame.fidelity)]
        pool = {str(c) for c in reduced_composition(self.store.pool())}
        new = list(dict.fromkeys(f for f, c in zip(frame.formula, comps) if c not in pool))
        if new:
            shown = ", ".join(repr(f) for f in new[:5]) + (" ..." if len(new) > 5 else "")
            warnings.warn(
                f"{len(new)} observed formula(s) not in the pool were added to it: {shown}",
                PoolExtendedWarning, stacklevel=2,
            )  # fmt: skip
        with self.store.transaction():
            self.store.add_pool(frame.formula.tolist())
            self.store.add_observations(frame, "observed")
        return frame

    def run(self, oracle: Callable[[pd.DataFrame], pd.DataFrame], stop: StoppingCondition,
            *, q: int = 1, max_rounds: int = 1000,
            progress: bool = False) -> pd.DataFrame:  # fmt: skip
        """Suggest, ask the oracle, observe, until ``stop`` holds; returns the observations.

        Pending suggestions (e.g. of a campaign killed before their answers were recorded) are
        answered first, so a resumed run continues exactly where the uninterrupted one would.
        """
        bar = progress_bar(range(max_rounds), progress=progress, desc="campaign", leave=False)
        for _ in bar:
            if stop(self):
                break
            cap = stop.cap(self)
            batch = self.pending()
            if not batch.empty:
                k = cap.allows(batch["cost"].tolist(), batch["fidelity"].tolist())
                if k < len(batch):  # those that no longer fit are cancelled, and said so
                    late = batch.iloc[k:]
                    self.store.cancel(late["id"].tolist())
                    logger.warning("campaign %s: %d pending suggestion(s) exceed what %r "
                                   "allows; cancelled", self.store.path.name, len(late), stop)
                batch = batch.iloc[:k]
            if batch.empty:
                batch = self.suggest(q, cap=None if cap.unlimited else cap)
                if batch.empty:
                    break  # the pool is exhausted, or nothing more fits the stopping condition
            answers = oracle(batch[["formula", "fidelity"]].reset_index(drop=True))
            cols = ["formula", "fidelity", "value"] + (["noise"] if "noise" in answers else [])
            self.observe(answers[cols])
            logger.info("campaign %s: observed %d, spent %g", self.store.path.name, len(answers),
                        self.spent())  # fmt: skip
            bar.set_postfix(spent=f"{self.spent():g}")
        return self.observations()

    def history(self) -> pd.DataFrame:
        """Each acquired observation in order, with what the campaign had reached by then.

        Experiments and cost so far, the best target value so far and, for a window
        objective, the hits so far (:func:`mfgp.loop.plots.history`).
        """
        from mfgp.acquisition.objectives import WindowHits
        from mfgp.loop.plots import history

        window = ((self.objective.lo, self.objective.hi)
                  if isinstance(self.objective, WindowHits) else None)  # fmt: skip
        return history(self.observations(), self.target, self.costs,
                       maximize=getattr(self.objective, "maximize", True), window=window)

    def plot_progress(self, **kwargs):
        """:func:`mfgp.loop.plots.progress_plot` of this campaign."""
        from mfgp.loop.plots import progress_plot

        return progress_plot(self, **kwargs)

    def plot_suggestions(self, suggestions: pd.DataFrame | None = None, **kwargs):
        """:func:`mfgp.loop.plots.suggestion_plot` of this campaign."""
        from mfgp.loop.plots import suggestion_plot

        return suggestion_plot(self, suggestions, **kwargs)

    def status(self) -> dict:
        """Counts, cost spent, pending suggestions and the best target value acquired so far.

        ``best`` is the last ``best`` of :meth:`history`: the best target value acquired by the
        campaign, in the objective's direction (``None`` before the first).
        """
        obs = self.observations()
        h = self.history()
        best = h["best"].dropna()
        return {
            "observations": obs.groupby("fidelity").size().reindex(self.fidelities,
                                                                   fill_value=0).to_dict(),
            "acquired": int((obs.source == "observed").sum()),
            "spent": self.spent(),
            "pending": len(self.pending()),
            "rounds": int(self.store.get("rounds", 0)),
            "best": None if best.empty else float(best.iloc[-1]),
            **({"hits": int(h["hits"].iloc[-1]) if len(h) else 0} if "hits" in h else {}),
            "objective": self.objective.to_dict(),
        }  # fmt: skip

    def __repr__(self) -> str:
        s = self.status()
        return (f"Campaign({str(self.store.path)!r}, target={self.target!r}, "
                f"objective={self.objective.name!r}, acquired={s['acquired']}, "
                f"spent={s['spent']:g}, pending={s['pending']})")  # fmt: skip


#: the columns of :meth:`Campaign.suggest`'s table
SUGGESTION_COLUMNS = ("suggestion", "rank", "formula", "fidelity", "score", "mean", "std",
                      "lower_90", "upper_90", "cost", "target_mean", "target_lower_90",
                      "target_upper_90")  # fmt: skip


def _check_noise(frame: pd.DataFrame, before: pd.Series | None = None) -> None:
    """Known noise is given for every observation or for none (the model needs one rule).

    Rows of ``frame`` are checked against each other, or, when the campaign already has
    observations (``before``: their noise), against the campaign's rule.
    """
    new = frame["noise"] if "noise" in frame else pd.Series(np.nan, index=frame.index)
    has = new.notna().to_numpy()
    within = before is None or before.empty
    if within and (has.all() or not has.any()):
        return
    want = True if within else bool(before.notna().all())
    bad = np.flatnonzero(has != want)
    if not bad.size:
        return
    i = int(bad[0])
    row = f"row {i}: {frame['formula'].iloc[i]!r}"
    if not want:
        raise InputDataError(
            f"{row} has a noise value, but this campaign's observations have none (the model "
            "learns its noise): drop the noise column"
        )
    why = " while other rows do" if within else ", but this campaign's observations carry it"
    raise InputDataError(
        f"{row} has no noise{why}; give known noise (a variance, in the target's units "
        "squared) for every row or none"
    )


def _both_caps(a, b):
    """A row fits when it fits both caps."""
    from mfgp.loop.stopping import _CapPair

    return _CapPair(a, b, either=True)


def _reference_sample(pool: list[str], size: int, seed: int) -> list[str]:
    """A seeded sample of ``size`` formulas of the pool (all of them if it is smaller)."""
    if len(pool) <= size:
        return list(pool)
    g = np.random.default_rng(seed)
    return [pool[i] for i in np.sort(g.choice(len(pool), size, replace=False))]


def _keys(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """``(composition, fidelity)`` of each row of a frame of formulas."""
    comps = reduced_composition(frame["formula"].tolist())
    return {(str(c), f) for c, f in zip(comps, frame["fidelity"])}


def _jsonable(params: dict) -> dict:
    import json

    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        try:
            json.dumps(v)
        except TypeError as err:
            raise InputDataError(
                f"model parameter {k}={v!r} cannot be stored in a campaign; use plain values"
            ) from err
        out[k] = v
    return out
