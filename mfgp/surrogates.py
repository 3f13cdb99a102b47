"""What a campaign (or a screen) asks of a fitted estimator: its surrogate.

An estimator answers for its own scale. A campaign never reaches into an estimator's
internals, nor switches on its class: it asks ``estimator.surrogate()`` for a
:class:`Surrogate` and calls only this interface:

* :meth:`Surrogate.inputs`: contract rows of formulas at a fidelity (what the Gaussian model
  reads);
* :meth:`Surrogate.conditioned`: the surrogate conditioned on observations made since the fit
  (at their values, with their known noise) and on pending suggestions (at their predicted
  means: the information they will bring), hyperparameters unchanged;
* :attr:`Surrogate.model`: the Gaussian BoTorch model behind it, for the joint moments that
  information objectives need, with :attr:`Surrogate.gaussian` saying whether that Gaussian
  *is* the predictive of a measurement on the user's scale (objectives that reason about a
  Gaussian target, ``kg``, ``mes``, ``logei``, need it);
* :meth:`Surrogate.user_predictive`: the predictive of a new measurement on the user's scale
  from the model's Gaussian moments (a hurdle's point mass at zero and its transform
  included), and :meth:`Surrogate.predictive` of formulas at a fidelity;
* :meth:`Surrogate.weights`: how much each row counts for the Gaussian model (a hurdle's
  regression sees a target value only where the material is not a metal);
* :meth:`Surrogate.baseline`: the observed target rows (``logei``'s baseline).

:class:`GaussianSurrogate` serves :class:`~mfgp.MultiFidelityRegressor`;
:class:`HurdleSurrogate` serves :class:`~mfgp.HurdleRegressor`.

Example:
    >>> sur = estimator.surrogate().conditioned(new_rows, pending_rows)  # doctest: +SKIP
    >>> sur.predictive(["TiO2"], "expt").table()  # doctest: +SKIP
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mfgp.distributions import GaussianPredictive, PointMassMixture, Predictive
from mfgp.exceptions import InputDataError, UnknownFidelityError

__all__ = [
    "GaussianSurrogate",
    "HurdleSurrogate",
    "ShiftedPredictive",
    "Surrogate",
    "check_campaign_model",
]

_LATENT = (
    "the 'latent' architecture answers the target at every fidelity, so it cannot weigh a "
    "cheap row against an experiment in a campaign; use 'ar1' (the default) or 'multitask'"
)


def check_campaign_model(estimator, objective=None) -> None:
    """Refuse, before anything is fitted, a model whose surrogate cannot serve the campaign.

    Args:
        estimator: an unfitted estimator.
        objective: the campaign's :class:`~mfgp.acquisition.Objective` (optional).
    """
    if not callable(getattr(estimator, "surrogate", None)):
        raise InputDataError(
            f"a campaign's model needs a surrogate() (MultiFidelityRegressor or "
            f"HurdleRegressor); got {type(estimator).__name__}"
        )
    if getattr(estimator, "architecture", None) == "latent":
        raise InputDataError(_LATENT)
    if objective is not None and objective.needs_gaussian and not getattr(
            estimator, "gaussian_predictive", True):
        raise InputDataError(not_gaussian(objective, estimator))


def not_gaussian(objective, estimator) -> str:
    """The message refusing an objective that needs a Gaussian target."""
    return (
        f"objective {objective.name!r} needs a Gaussian predictive of the target; a "
        f"{type(estimator).__name__}'s is not (a point mass at zero): use 'window', 'ucb', "
        "'greedy', 'std' or 'learn'"
    )


class ShiftedPredictive(Predictive):
    """``max(floor, Y - shift)`` for a continuous predictive ``Y`` (a hurdle's lower fidelity).

    Quantiles and the CDF are exact (a monotone map); the mean and std are those of
    ``Y - shift`` (the floor moves a negligible mass: ``Y > 0`` always and ``shift`` is the
    hurdle's small offset).
    """

    def __init__(self, base: Predictive, shift: float, floor: float = 0.0) -> None:
        self.base, self.shift, self.floor = base, float(shift), float(floor)

    def subset(self, idx: np.ndarray) -> ShiftedPredictive:  # noqa: D102
        return ShiftedPredictive(self.base.subset(idx), self.shift, self.floor)

    @property
    def n(self) -> int:  # noqa: D102
        return self.base.n

    def mean(self) -> np.ndarray:  # noqa: D102
        return np.maximum(self.base.mean() - self.shift, self.floor)

    def std(self) -> np.ndarray:  # noqa: D102
        return self.base.std()

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        return np.maximum(self.base.ppf_each(q) - self.shift, self.floor)

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = np.asarray(y, dtype=np.float64)
        return np.where(y < self.floor, 0.0, self.base.cdf(y + self.shift))

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return self.base.log_score(np.asarray(y, dtype=np.float64) + self.shift)


class Surrogate(ABC):
    """The interface a campaign calls (see the module).

    Attributes:
        fidelities: every fidelity, low to high; the last is the target.
        model: the Gaussian BoTorch model (conditioned, for a conditioned surrogate).
        gaussian: whether ``model``'s Gaussian at the target is the predictive of a
            measurement on the user's scale.
        scale: the scale of ``model``'s outcome, in words.
    """

    fidelities: list[str]
    model: object
    gaussian: bool = True
    #: the scale of :attr:`model`'s outcome (what information objectives' variances are in)
    scale: str = "the target's units"

    @property
    def target(self) -> str:
        """The target fidelity."""
        return self.fidelities[-1]

    @abstractmethod
    def inputs(self, formulas: Sequence[str], fidelity: str) -> Tensor:
        """Contract rows ``n x (d + 1)`` of ``formulas`` at ``fidelity`` for :attr:`model`."""

    @abstractmethod
    def conditioned(self, observations: pd.DataFrame | None = None,
                    pending: pd.DataFrame | None = None) -> Surrogate:  # fmt: skip
        """A copy conditioned on observations since the fit and on pending suggestions.

        Args:
            observations: ``formula, fidelity, value[, noise]`` (``noise``: variances in the
                target's units squared; NaN or absent: the fidelity's own noise).
            pending: ``formula, fidelity`` rows suggested but not answered yet: conditioned on
                at their predicted means (the information they will bring, whatever the value).
        """

    @abstractmethod
    def user_predictive(self, mean: np.ndarray, var_y: np.ndarray, formulas: Sequence[str],
                        fidelity: str) -> Predictive:  # fmt: skip
        """The predictive of a new measurement on the user's scale from Gaussian moments.

        Args:
            mean: the model's mean of each row, as from :attr:`model`.
            var_y: its predictive variance of a new observation (noise included).
            formulas: each row's formula.
            fidelity: the rows' fidelity.
        """

    def weights(self, formulas: Sequence[str], fidelity: str) -> np.ndarray | None:
        """The probability that a row's value enters :attr:`model` (``None``: always)."""
        return None

    def reference_weights(self, formulas: Sequence[str]) -> np.ndarray | None:
        """Weights that turn :attr:`model`'s target variances into the user's (``None``: 1).

        ``learn`` multiplies each reference row's variance reduction by its weight, so that
        the score is a variance on the user's scale.
        """
        return None

    def predictive(self, formulas: Sequence[str], fidelity: str | None = None) -> Predictive:
        """The predictive of a new measurement of ``formulas`` at ``fidelity`` (user's scale)."""
        from mfgp.acquisition.pool import marginal_moments

        fidelity = self.target if fidelity is None else fidelity
        formulas = list(formulas)
        mom = marginal_moments(self.model, self.inputs(formulas, fidelity))
        return self.user_predictive(mom.mean.cpu().numpy(), mom.var_y.cpu().numpy(), formulas,
                                    fidelity)  # fmt: skip

    def baseline(self) -> Tensor:
        """The observed target rows (training rows and conditioned observations)."""
        return self._baseline

    # -- shared plumbing ---------------------------------------------------------------------
    def _check_fidelity(self, fidelity: str) -> int:
        if fidelity not in self.fidelities:
            raise UnknownFidelityError(
                f"fidelity {fidelity!r} is not one of the model's {self.fidelities}; pass one "
                "of them"
            )
        return self.fidelities.index(fidelity)

    def _condition(self, model, rows: list[tuple[Tensor, Tensor, Tensor | None]]):
        from mfgp.acquisition.select import fantasize

        for X, Y, Yvar in rows:
            model = fantasize(model, X, Y, Yvar)
        return model


def _noise_column(frame: pd.DataFrame) -> np.ndarray:
    if "noise" not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame["noise"], errors="coerce").to_numpy(dtype=float)


class GaussianSurrogate(Surrogate):
    """The surrogate of a :class:`~mfgp.MultiFidelityRegressor`: its Gaussian, as it is.

    Args:
        estimator: the fitted regressor.
        model: the model to use (default: the fitted one).
        baseline: the observed target rows (default: the training rows at the target).
    """

    gaussian = True

    def __init__(self, estimator, model=None, baseline: Tensor | None = None) -> None:
        estimator._check_fitted()
        if estimator.architecture == "latent":
            raise InputDataError(_LATENT)
        self.estimator = estimator
        self.fidelities = list(estimator.dataset_.fidelities)
        self.model = estimator.model_ if model is None else model
        if baseline is None:
            X, _, _ = estimator.dataset_.tensors(**estimator._tensor_options)
            baseline = X[X[:, -1] == len(self.fidelities) - 1]
        self._baseline = baseline

    def inputs(self, formulas: Sequence[str], fidelity: str) -> Tensor:  # noqa: D102
        self._check_fidelity(fidelity)
        est = self.estimator
        return est.dataset_.inputs_for(list(formulas), fidelity, **est._tensor_options)

    def _rows(self, frame: pd.DataFrame, fantasy: bool):
        """``(X, Y, Yvar)`` per fidelity of a frame's rows, in the model's outcome units."""
        out = []
        for fid in self.fidelities:
            part = frame[frame["fidelity"] == fid]
            if part.empty:
                continue
            X = self.inputs(part["formula"].tolist(), fid)
            if fantasy:
                with torch.no_grad():
                    Y = self.model.posterior(X).mean.reshape(-1, 1).detach()
                Yvar = None
            else:
                Y = torch.as_tensor(part["value"].to_numpy(dtype=float)).reshape(-1, 1).to(X)
                noise = _noise_column(part)
                Yvar = (None if np.isnan(noise).all()
                        else torch.as_tensor(noise).reshape(-1, 1).to(X))  # fmt: skip
            out.append((X, Y, Yvar))
        return out

    def conditioned(self, observations=None, pending=None) -> GaussianSurrogate:  # noqa: D102
        model, baseline = self.model, self._baseline
        if observations is not None and len(observations):
            rows = self._rows(observations, False)
            model = self._condition(model, rows)
            top = len(self.fidelities) - 1
            baseline = torch.cat([baseline] + [X for X, _, _ in rows
                                               if bool((X[:, -1] == top).all())])  # fmt: skip
        new = GaussianSurrogate(self.estimator, model, baseline)
        if pending is not None and len(pending):
            rows = new._rows(pending, True)
            new.model = self._condition(model, rows)
            # a pending experiment counts as done at its believed value: its row joins the
            # baseline, so logei does not score improvement over a value already on its way
            top = len(self.fidelities) - 1
            new._baseline = torch.cat([baseline] + [X for X, _, _ in rows
                                                    if bool((X[:, -1] == top).all())])  # fmt: skip
        return new

    def user_predictive(self, mean, var_y, formulas, fidelity) -> GaussianPredictive:  # noqa: D102
        return GaussianPredictive(np.asarray(mean), np.sqrt(np.clip(var_y, 1e-24, None)))


class HurdleSurrogate(Surrogate):
    """The surrogate of a :class:`~mfgp.HurdleRegressor`: a point mass at zero and a regression.

    :attr:`model` is the regression of ``g(gap)`` (the nonzero target gaps, and every
    lower-fidelity gap as ``g(gap + offset)``); the predictive of a new target measurement is
    the point-mass mixture with the classifier's ``P(metal)``, and a lower-fidelity row's is
    ``g^-1`` of the regression's Gaussian less the offset. Conditioning updates the regression
    exactly: a new target value enters it if it is not zero, a lower-fidelity value always
    (noise by the delta method through ``g``); a pending target row enters it at its predicted
    mean where ``P(metal) < 1/2``. ``P(metal)`` is the fitted classifier's, except at
    compositions whose target value has been observed since (0 or 1 then); the classifier
    itself is refitted when the campaign refits.
    """

    gaussian = False
    scale = ("the gap's units squared: the regression's variance of g(gap) mapped by the delta "
             "method, weighted by P(not a metal)")

    def __init__(self, estimator, model=None, baseline: Tensor | None = None,
                 known: dict[str, float] | None = None,
                 cache: dict[str, float] | None = None) -> None:  # fmt: skip
        estimator._check_fitted()
        # P(metal) of the fitted classifier by formula, shared by the conditioned copies: the
        # classifier does not change until the next fit (a campaign keeps one surrogate per
        # fit, so a round scores the pool's P(metal) once, not every time)
        self._p_cache: dict[str, float] = {} if cache is None else cache
        self.estimator = estimator
        self.regression = GaussianSurrogate(estimator.regressor_, model, baseline)
        self.fidelities = list(estimator.dataset_.fidelities)
        self.model = self.regression.model
        self._baseline = self.regression._baseline
        self._known = dict(known or {})  # composition -> P(metal) known from an observation

    def inputs(self, formulas, fidelity) -> Tensor:  # noqa: D102
        return self.regression.inputs(formulas, fidelity)

    def p_metal(self, formulas: Sequence[str]) -> np.ndarray:
        """``P(gap = 0)`` of a target measurement of each formula."""
        from mfgp.featurize.composition import reduced_composition

        formulas = [str(f) for f in formulas]
        if not formulas:
            return np.zeros(0)
        new = list(dict.fromkeys(f for f in formulas if f not in self._p_cache))
        if new:
            clf = self.estimator.classifier_
            p = np.asarray(clf.predict_proba(new), dtype=np.float64)
            if p.ndim == 2:  # scikit-learn's n x 2: the column of class 1, a metal
                p = p[:, list(getattr(clf, "classes_", [0, 1])).index(1)]
            self._p_cache.update(zip(new, p.tolist()))
        p = np.array([self._p_cache[f] for f in formulas], dtype=np.float64)
        if self._known:
            comps = [str(c) for c in reduced_composition(formulas)]
            p = np.array([self._known.get(c, v) for c, v in zip(comps, p)])
        return p

    def _transformed(self, values: np.ndarray, noise: np.ndarray, fidelity: str):
        """``g`` of the values on the regression's scale, and their noise (delta method)."""
        spec = self.estimator.spec_
        at_target = np.full(values.shape, fidelity == self.target)
        # one nonzero target value appended: split() insists the target part is not empty
        g = spec.split(np.append(values, 1.0), np.append(at_target, True))[2][:-1]
        return g, spec.noise(values, at_target, noise)

    def conditioned(self, observations=None, pending=None) -> HurdleSurrogate:  # noqa: D102
        from mfgp.featurize.composition import reduced_composition

        known = dict(self._known)
        reg = self.regression
        model, baseline = reg.model, reg._baseline
        if observations is not None and len(observations):
            obs = observations.reset_index(drop=True)
            values = obs["value"].to_numpy(dtype=float)
            at_target = (obs["fidelity"] == self.target).to_numpy()
            comps = [str(c) for c in reduced_composition(obs["formula"].tolist())]
            for c, v, t in zip(comps, values, at_target):
                if t:
                    known[c] = float(v == 0)
            keep = ~at_target | (values > 0)
            obs = obs[keep].reset_index(drop=True)
            rows = []
            for fid in self.fidelities:
                part = obs[obs["fidelity"] == fid]
                if part.empty:
                    continue
                g, gvar = self._transformed(part["value"].to_numpy(dtype=float),
                                            _noise_column(part), fid)  # fmt: skip
                X = self.inputs(part["formula"].tolist(), fid)
                Yvar = None if np.isnan(gvar).all() else torch.as_tensor(gvar).reshape(-1, 1).to(X)
                rows.append((X, torch.as_tensor(g).reshape(-1, 1).to(X), Yvar))
            model = self._condition(model, rows)
            top = len(self.fidelities) - 1
            baseline = torch.cat([baseline] + [X for X, _, _ in rows
                                               if bool((X[:, -1] == top).all())])  # fmt: skip
        new = HurdleSurrogate(self.estimator, model, baseline, known, self._p_cache)
        if pending is not None and len(pending):
            pend = pending.reset_index(drop=True)
            at_target = (pend["fidelity"] == self.target).to_numpy()
            if at_target.any():
                p = new.p_metal(pend["formula"][at_target].tolist())
                drop = np.flatnonzero(at_target)[p >= 0.5]
                pend = pend.drop(index=drop)
            new.model = new._condition(model, new.regression._rows(pend, True)) if len(pend) \
                else model  # fmt: skip
            new.regression.model = new.model
        return new

    def user_predictive(self, mean, var_y, formulas, fidelity) -> Predictive:  # noqa: D102
        spec = self.estimator.spec_
        continuous = spec.continuous(np.asarray(mean), np.sqrt(np.clip(var_y, 1e-24, None)))
        if fidelity == self.target:
            return PointMassMixture(self.p_metal(formulas), continuous, atom=0.0)
        return ShiftedPredictive(continuous, spec.offset)

    def weights(self, formulas, fidelity) -> np.ndarray | None:  # noqa: D102
        if fidelity != self.target:
            return None
        return 1.0 - self.p_metal(formulas)

    def reference_weights(self, formulas) -> np.ndarray:
        """``P(not a metal) (dy/dg)^2`` at the regression's mean: the delta method from ``g``.

        A variance ``v`` of ``g`` at a non-metal is about ``(dy/dg)^2 v`` in the gap's units
        (``dy/dg`` is the sigmoid of ``g`` for softplus, ``e^g`` for log); a metal's gap is 0
        whatever the regression says, so the weight is scaled by ``P(not a metal)``.
        """
        from mfgp.acquisition.pool import marginal_moments

        formulas = list(formulas)
        g = marginal_moments(self.model, self.inputs(formulas, self.target)).mean.cpu().numpy()
        if self.estimator.spec_.transform == "softplus":
            slope = 1.0 / (1.0 + np.exp(-g))
        else:
            slope = np.exp(g)
        return (1.0 - self.p_metal(formulas)) * slope**2
