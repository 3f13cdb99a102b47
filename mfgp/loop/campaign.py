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
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from mfgp._progress import bar as progress_bar
from mfgp._progress import logger
from mfgp.acquisition import make_objective, select_batch
from mfgp.acquisition.select import fantasize
from mfgp.exceptions import InputDataError, NonFiniteValueError, UnknownFidelityError
from mfgp.featurize.composition import reduced_composition
from mfgp.loop.stopping import StoppingCondition
from mfgp.loop.store import Store

__all__ = ["Campaign", "TableOracle"]

_ESTIMATORS = ("MultiFidelityRegressor", "HurdleRegressor")


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
        self.values = keyed.groupby(["_key", "fidelity"])["value"].mean().to_dict()

    def __call__(self, suggestions: pd.DataFrame) -> pd.DataFrame:  # noqa: D102
        comps = reduced_composition(suggestions["formula"].tolist())
        values = []
        for comp, fid, formula in zip(comps, suggestions["fidelity"], suggestions["formula"]):
            key = (str(comp), fid)
            if key not in self.values:
                raise InputDataError(f"the oracle has no {fid!r} value for {formula!r}")
            values.append(self.values[key])
        return suggestions.assign(value=values)


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
        seed: seeds the reference sample and the model.
        refit_every: refit the hyperparameters once this many observations are new since the
            last fit; in between the last fitted model is conditioned on them (exact, fast).
        reference_size: target rows of the pool that information objectives average over.
        allow_repeats: allow several rows of one composition in a batch, and suggesting rows
            already observed.
    """

    def __init__(self, model=None, pool=None, *, target: str | None = None,
                 costs: dict[str, float] | None = None, objective="learn",
                 objective_options: dict | None = None, data: pd.DataFrame | None = None,
                 store: str | os.PathLike = "campaign.db", fidelities: Sequence[str] | None = None,
                 seed: int = 0, refit_every: int = 1, reference_size: int = 256,
                 allow_repeats: bool = False) -> None:  # fmt: skip
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
                    raise InputDataError("a new campaign needs model, pool and costs")
                self._create(model, pool, target, costs, objective, objective_options or {},
                             data, fidelities, seed, refit_every, reference_size,
                             allow_repeats)  # fmt: skip
        except BaseException:
            self.store.close()
            raise
        self._load_config()

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
        params = clone(model).set_params(fidelities=fids).get_params(deep=False)
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
        with self.store.transaction():
            self.store.add_pool(formulas)
            if initial is not None:
                self.store.add_observations(initial, "initial")
            self.store.set("config", config)

    def _load_config(self) -> None:
        c = self.store.get("config")
        self.config = c
        self.target = c["target"]
        self.fidelities = list(c["fidelities"])
        self.costs = dict(c["costs"])
        self.objective = make_objective(c["objective"])
        self._fitted: tuple[int, object] | None = None

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
        if self._fitted is None:
            saved = self.store.latest_checkpoint()
            if saved is not None:
                self._fitted = (saved[0], self._from_blob(saved[1]))
        stale = self._fitted is None or n - self._fitted[0] >= self.config["refit_every"]
        if stale or (refit and self._fitted[0] != n):
            cls = _estimator_class(self.config["model"])
            est = cls(**{**self.config["params"], "progress": False})
            est.fit(self.frame(), candidates=self.store.pool())
            self.store.add_checkpoint(n, self._to_blob(est))
            self._fitted = (n, est)
        return self._fitted[1], self._fitted[0]

    @staticmethod
    def _to_blob(est) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.mfgp"
            est.save(path)
            return path.read_bytes()

    def _from_blob(self, blob: bytes):
        cls = _estimator_class(self.config["model"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.mfgp"
            path.write_bytes(blob)
            return cls.load(path)

    def _regressor(self, est):
        """The Gaussian regression inside the estimator (a hurdle's positive part)."""
        return getattr(est, "regressor_", est)

    # -- suggestions -------------------------------------------------------------------------
    def suggest(self, q: int = 1, max_cost: float | None = None) -> pd.DataFrame:
        """Score the pool and record the best ``q`` rows as pending; returns them.

        With ``max_cost``, the batch is cut where its total cost would exceed it (empty if the
        first row already does).

        Columns: ``suggestion`` (its id in the store), ``rank``, ``formula``, ``fidelity``,
        ``score`` (the objective, per unit cost for information objectives), ``mean``, ``std``,
        ``lower_90``, ``upper_90`` (the predictive of a new observation at that fidelity) and
        ``cost``.
        """
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise InputDataError(f"q must be a positive integer; got {q!r}")
        est, n_fit = self.model()
        reg = self._regressor(est)
        obs = self.observations()
        pool = self.store.pool()
        fids = [f for f in self.fidelities if f in self.costs]
        if not self.objective.information:
            fids = [self.target]
        pend = self.pending()
        taken = _keys(pend) if self.config["allow_repeats"] else _keys(obs) | _keys(pend)
        comps = [str(c) for c in reduced_composition(pool)]
        rows = [(p, c, f) for f in fids for p, c in zip(pool, comps) if (c, f) not in taken]
        if not rows:
            return self._empty_suggestions()
        ds = reg.dataset_
        C = torch.cat([ds.inputs_for([p for p, _, g in rows if g == f], f,
                                     **reg._tensor_options)
                       for f in fids if any(g == f for _, _, g in rows)])  # fmt: skip
        rows = [r for f in fids for r in rows if r[2] == f]  # the order of C
        model = self._scoring_model(reg, obs.iloc[n_fit:], pend)
        R = self._reference(reg, pool)
        cost = torch.tensor([self.costs[f] for _, _, f in rows], dtype=C.dtype)
        is_target = torch.tensor([f == self.target for _, _, f in rows])
        groups = np.array([c for _, c, _ in rows]) if not self.config["allow_repeats"] else None
        baseline = None
        if self.objective.name == "logei":
            X_all, _, _ = ds.tensors(**reg._tensor_options)
            baseline = X_all[X_all[:, -1] == len(ds.fidelities) - 1]
        probability = None
        if self.objective.name == "window" and self.config["model"] == "HurdleRegressor":
            at = [i for i, r in enumerate(rows) if r[2] == self.target]

            def probability(est=est, at=at):
                # the hurdle's point-mass mixture: P(gap = 0) counts when lo <= 0
                pred = est.predictive([rows[i][0] for i in at])
                out = np.full(len(rows), -np.inf)
                out[at] = pred.probability_between(self.objective.lo, self.objective.hi)
                return out

        sel = select_batch(model, C, self.objective, q=int(q), R=R, cost=cost,
                           is_target=is_target, groups=groups, baseline=baseline,
                           probability=probability)  # fmt: skip
        with torch.no_grad():
            ref_mean = model.posterior(R).mean.reshape(-1).cpu().numpy().tolist()
        history = self.store.get("reference_means", [])
        self.store.set("reference_means", (history + [ref_mean])[-2:])
        out = pd.DataFrame({
            "rank": np.arange(1, len(sel.rows) + 1),
            "formula": [rows[i][0] for i in sel.rows],
            "fidelity": [rows[i][2] for i in sel.rows],
            "score": sel.scores,
            "mean": sel.mean[sel.rows],
            "std": sel.std[sel.rows],
            "cost": [self.costs[rows[i][2]] for i in sel.rows],
        })  # fmt: skip
        if max_cost is not None:
            out = out[out["cost"].cumsum().to_numpy() <= max_cost + 1e-12].reset_index(drop=True)
            if out.empty:
                return self._empty_suggestions()
        round_ = int(self.store.get("rounds", 0)) + 1
        with self.store.transaction():
            ids = self.store.add_suggestions(out, round_)
            self.store.set("rounds", round_)
        z = 1.6448536269514722
        out.insert(0, "suggestion", ids)
        out.insert(7, "lower_90", out["mean"] - z * out["std"])
        out.insert(8, "upper_90", out["mean"] + z * out["std"])
        return out

    def _empty_suggestions(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["suggestion", "rank", "formula", "fidelity", "score", "mean",
                                     "std", "lower_90", "upper_90", "cost"])  # fmt: skip

    def _scoring_model(self, reg, new: pd.DataFrame, pending: pd.DataFrame):
        """The fitted model, conditioned on observations since the fit and pending fantasies.

        Observations since the last fit enter at their values (hyperparameters unchanged);
        pending suggestions at their predicted means (the information they will bring,
        whatever the value: what BoTorch's pending points do).
        """
        ds = reg.dataset_
        model = reg.model_
        hurdle = self.config["model"] == "HurdleRegressor"
        for frame, fantasy in ((new, False), (pending, True)):
            for fid in self.fidelities:
                part = frame[frame.fidelity == fid]
                if hurdle and not fantasy:
                    part = part[(part.fidelity != self.target) | (part.value > 0)]
                if part.empty:
                    continue
                X = ds.inputs_for(part.formula.tolist(), fid, **reg._tensor_options)
                if fantasy:
                    with torch.no_grad():
                        Y = model.posterior(X).mean.reshape(-1, 1).detach()
                else:
                    Y = torch.as_tensor(part.value.to_numpy(dtype=float)).reshape(-1, 1).to(X)
                    if hurdle:  # a hurdle's regression is on g(gap) of the nonzero gaps
                        Y = self._hurdle_scale(part, fid).to(X)
                model = fantasize(model, X, Y)
        return model

    def _hurdle_scale(self, part: pd.DataFrame, fid: str) -> torch.Tensor:
        """``g`` of the values of (nonzero target or lower-fidelity) rows, as the fit did."""
        est = self._fitted[1]
        values = part.value.to_numpy(dtype=float)
        is_target = np.full(values.shape, fid == self.target)
        # one nonzero target value appended: split() insists the target part is not empty
        g = est.spec_.split(np.append(values, 1.0), np.append(is_target, True))[2]
        return torch.as_tensor(g[:-1]).reshape(-1, 1)

    def _reference(self, reg, pool: list[str]):
        size = self.config["reference_size"]
        picks = pool
        if len(pool) > size:
            g = np.random.default_rng(self.config["seed"])
            picks = [pool[i] for i in np.sort(g.choice(len(pool), size, replace=False))]
        return reg.dataset_.inputs_for(picks, self.target, **reg._tensor_options)

    # -- observations ------------------------------------------------------------------------
    def observe(self, results: pd.DataFrame) -> pd.DataFrame:
        """Record measurements (``formula, fidelity, value[, noise]``) in one transaction.

        Rows answer the pending suggestion of their (composition, fidelity), if any; a formula
        outside the pool is added to it. A bad row raises an error naming it, and nothing is
        recorded. Returns the rows recorded.
        """
        frame = self._validated(results, self.fidelities)
        pend = self.pending()
        key = {(str(c), f): int(i) for c, f, i in zip(reduced_composition(pend.formula.tolist()),
                                                      pend.fidelity, pend.id)}  # fmt: skip
        comps = [str(c) for c in reduced_composition(frame.formula.tolist())]
        frame["suggestion"] = [key.pop((c, f), None) for c, f in zip(comps, frame.fidelity)]
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
            batch = self.pending()
            if batch.empty:
                left = stop.remaining(self)
                batch = self.suggest(q, max_cost=None if math.isinf(left) else left)
                if batch.empty:
                    break  # the pool is exhausted
            answers = oracle(batch[["formula", "fidelity"]].reset_index(drop=True))
            self.observe(answers[["formula", "fidelity", "value"]])
            logger.info("campaign %s: observed %d, spent %g", self.store.path.name, len(answers),
                        self.spent())  # fmt: skip
            bar.set_postfix(spent=f"{self.spent():g}")
        return self.observations()

    def history(self) -> pd.DataFrame:
        """Each acquired observation in order, with what the campaign had reached by then.

        Experiments and cost so far, the best target value so far and, for a window
        objective, the hits so far (:func:`mfgp.loop.plots.history`).
        """
        from mfgp.loop.plots import history

        window = ((self.objective.lo, self.objective.hi) if self.objective.name == "window"
                  else None)  # fmt: skip
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
        """Counts, cost spent, pending suggestions and the best target value so far."""
        obs = self.observations()
        top = obs[obs.fidelity == self.target]
        return {
            "observations": obs.groupby("fidelity").size().reindex(self.fidelities,
                                                                   fill_value=0).to_dict(),
            "acquired": int((obs.source == "observed").sum()),
            "spent": self.spent(),
            "pending": len(self.pending()),
            "rounds": int(self.store.get("rounds", 0)),
            "best": None if top.empty else float(top.value.max()),
            "objective": self.objective.to_dict(),
        }  # fmt: skip

    def __repr__(self) -> str:
        s = self.status()
        return (f"Campaign({str(self.store.path)!r}, target={self.target!r}, "
                f"objective={self.objective.name!r}, acquired={s['acquired']}, "
                f"spent={s['spent']:g}, pending={s['pending']})")  # fmt: skip


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
