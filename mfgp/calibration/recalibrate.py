"""Post-hoc recalibration, fitted on cross-validated predictions (never training residuals).

* :class:`VarianceScaling`: one factor ``s`` per group multiplying every predictive std, the
  maximum-likelihood ``s^2 = mean(z^2)`` of the standardised CV residuals ``z``. Simple, robust,
  keeps the Gaussian shape (Lolo uses the same idea with out-of-bag errors).
* :class:`IsotonicRecalibration`: a monotone map ``R`` of predicted CDF values to observed
  frequencies (Kuleshov et al. 2018), per group; the recalibrated CDF is ``R(F(y))``. On a
  :class:`~mfgp.calibration.PointMassMixture` (the hurdle's zero-inflated gaps) it maps the
  continuous part, fitted on the observations off the atom, and the atom's weight, by an
  isotonic regression of the atom's indicator.

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=500)
    >>> vs = VarianceScaling().fit(y, np.zeros(500), np.full(500, 0.5))
    >>> round(float(vs.scale_["all"]), 1)
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression

from mfgp.distributions import GaussianPredictive, PointMassMixture, Predictive, _arr
from mfgp.exceptions import InputDataError, NotFittedError, ShapeError

__all__ = ["VarianceScaling", "IsotonicRecalibration", "RecalibratedPredictive"]

_ALL = "all"


def _groups(groups: Sequence[object] | None, n: int) -> np.ndarray:
    if groups is None:
        return np.full(n, _ALL, dtype=object)
    g = np.asarray([str(v) for v in groups], dtype=object)
    if g.size != n:
        raise ShapeError(f"groups has {g.size} entries for {n} points")
    return g


class VarianceScaling:
    """Multiply predictive standard deviations by a factor fitted per group.

    Attributes:
        scale_: group -> factor (``"all"`` when fitted without groups).
    """

    def fit(
        self, y: object, mean: object, std: object, groups: Sequence[object] | None = None
    ) -> VarianceScaling:
        """Fit on cross-validated predictions."""
        y, mean, std = _arr(y), _arr(mean), _arr(std)
        g = _groups(groups, y.size)
        self.scale_ = {}
        for name in dict.fromkeys(g.tolist()):
            idx = g == name
            z = (y[idx] - mean[idx]) / std[idx]
            self.scale_[name] = float(np.sqrt(np.mean(z**2)))
        return self

    def transform_std(self, std: object, groups: Sequence[object] | None = None) -> np.ndarray:
        """Rescaled standard deviations."""
        if not hasattr(self, "scale_"):
            raise NotFittedError("VarianceScaling is not fitted; call fit(y, mean, std) first")
        std = _arr(std)
        g = _groups(groups, std.size)
        unknown = set(g.tolist()) - set(self.scale_)
        if unknown:
            raise InputDataError(
                f"groups {sorted(unknown)} were not seen in fit; fitted: {sorted(self.scale_)}"
            )
        return std * np.array([self.scale_[v] for v in g])

    def transform(
        self, mean: object, std: object, groups: Sequence[object] | None = None
    ) -> GaussianPredictive:
        """A recalibrated Gaussian predictive."""
        return GaussianPredictive(mean, self.transform_std(std, groups))


class RecalibratedPredictive(Predictive):
    """``base`` with its CDF passed through a monotone map per point.

    Built by :meth:`IsotonicRecalibration.transform`. A point whose ``which`` is ``-1`` is not
    mapped: it is ``base``'s own distribution (e.g. a lower-fidelity row among target rows).
    """

    def __init__(self, base: Predictive, knots_x: list[np.ndarray], knots_y: list[np.ndarray],
                 which: np.ndarray) -> None:  # fmt: skip
        self.base = base
        self.knots_x = knots_x  # per map: increasing grid on [0, 1]
        self.knots_y = knots_y  # per map: strictly increasing values on [0, 1]
        self.which = which  # per point: index of its map

    @property
    def n(self) -> int:  # noqa: D102
        return self.base.n

    def subset(self, idx: np.ndarray) -> RecalibratedPredictive:  # noqa: D102
        return RecalibratedPredictive(self.base.subset(idx), self.knots_x, self.knots_y,
                                      self.which[idx])  # fmt: skip

    def _apply(self, u: np.ndarray, inverse: bool = False) -> np.ndarray:
        out = np.array(u, dtype=np.float64, copy=True)  # which == -1: unmapped
        for k in range(len(self.knots_x)):
            idx = self.which == k
            xs, ys = self.knots_x[k], self.knots_y[k]
            out[idx] = np.interp(u[idx], ys, xs) if inverse else np.interp(u[idx], xs, ys)
        return out

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._apply(self.base.cdf(y))

    def cdf_left(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._apply(self.base.cdf_left(y))

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        q = np.asarray(q, dtype=np.float64)
        u = np.clip(self._apply(q, inverse=True), 1e-12, 1 - 1e-12)
        u = np.where(np.broadcast_to(self.which, u.shape) < 0, q, u)  # unmapped: as asked
        return self.base.ppf_each(u)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        u = self.base.cdf(y)
        slope = np.ones_like(u)  # which == -1: unmapped
        for k in range(len(self.knots_x)):
            idx = self.which == k
            xs, ys = self.knots_x[k], self.knots_y[k]
            seg = np.clip(np.searchsorted(xs, u[idx], side="right") - 1, 0, xs.size - 2)
            slope[idx] = (ys[seg + 1] - ys[seg]) / (xs[seg + 1] - xs[seg])
        return np.log(slope) + self.base.log_score(y)

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        tau = (np.arange(1, 400) - 0.5) / 399
        q = self.ppf(tau)
        mean, std = q.mean(0), q.std(0)
        plain = self.which < 0
        if plain.any():  # unmapped points: the base's exact moments
            mean[plain], std[plain] = self.base.mean()[plain], self.base.std()[plain]
        return mean, std

    def mean(self) -> np.ndarray:  # noqa: D102
        return self._moments()[0]

    def std(self) -> np.ndarray:  # noqa: D102
        return self._moments()[1]


class IsotonicRecalibration:
    """Isotonic recalibration of the predictive CDF, per group (Kuleshov et al. 2018).

    The map is the isotonic fit of the empirical frequency ``P(F(Y) <= p)`` against ``p`` on the
    CV PIT values, mixed with the identity by ``eps`` so that it stays strictly increasing (the
    recalibrated density, hence the log score, then stays finite).

    Each map is stored at ``n_knots`` quantiles of the CV PIT values, so it keeps resolution in
    the tails (where an over-confident model puts most of them) and a smooth density.

    A :class:`~mfgp.calibration.PointMassMixture` ``w delta(atom) + (1 - w) F`` (the hurdle's
    zero-inflated gaps) is recalibrated part by part: ``F`` by the map fitted on the PIT values
    ``F(y)`` of the observations off the atom, and, with ``mixture_weight`` (the default), the
    atom's probability ``w`` by the isotonic regression of ``1{y = atom}`` on ``w`` (mixed with
    the identity by ``eps``, so never exactly 0 or 1). :meth:`transform` returns
    ``w' delta(atom) + (1 - w') R(F)``. If ``w'`` is a calibrated probability of the atom and
    ``R(F)`` is calibrated given the value is off it, the mixture is calibrated. Mapping the
    mixture's whole CDF instead would tie the atom's probability to the continuous part's map.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.standard_t(3, size=2000)  # heavy tails: a Gaussian covers too much at 50%
        >>> pred = GaussianPredictive(np.zeros(2000), np.full(2000, y.std()))
        >>> iso = IsotonicRecalibration().fit(y, pred)
        >>> lo, hi = iso.transform(pred).interval(0.5)
        >>> bool(abs(np.mean((y >= lo) & (y <= hi)) - 0.5) < 0.02)
        True

    Args:
        eps: weight of the identity in the map.
        n_knots: knots per map (fewer when there are fewer CV points).
        mixture_weight: also recalibrate a point-mass mixture's weight (``False``: keep it).

    Attributes:
        maps_: group -> ``(knots, mapped)`` of the CDF map.
        weight_maps_: group -> ``(w, w')`` knots of the weight map (fitted on a point-mass
            mixture with ``mixture_weight``; else empty).
    """

    def __init__(self, eps: float = 0.01, n_knots: int = 50, mixture_weight: bool = True) -> None:
        self.eps = eps
        self.n_knots = n_knots
        self.mixture_weight = mixture_weight

    def _levels(self, n: int) -> np.ndarray:
        return np.linspace(0, 1, max(2, min(self.n_knots, n)))

    def fit(
        self, y: object, pred: Predictive, groups: Sequence[object] | None = None
    ) -> IsotonicRecalibration:
        """Fit on cross-validated predictions ``pred`` of observations ``y``.

        Raises:
            InputDataError: ``pred`` is a point-mass mixture and no observation is off its atom.
        """
        y = _arr(y)
        g = _groups(groups, y.size)
        self.weight_maps_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if isinstance(pred, PointMassMixture):
            if self.mixture_weight:
                for name in dict.fromkeys(g.tolist()):
                    idx = g == name
                    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
                    iso.fit(pred.weight[idx], (y[idx] == pred.atom).astype(np.float64))
                    self.weight_maps_[name] = (iso.X_thresholds_, iso.y_thresholds_)
            off = y != pred.atom
            if not off.any():
                raise InputDataError(
                    f"every observation sits on the atom at {pred.atom:g}: the continuous part "
                    "has nothing to be recalibrated on"
                )
            y, pred, g = y[off], pred.continuous.subset(np.flatnonzero(off)), g[off]
        pit = pred.pit(y)
        self.maps_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in dict.fromkeys(g.tolist()):
            p = np.sort(pit[g == name])
            freq = np.arange(1, p.size + 1) / p.size
            iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip", increasing=True)
            iso.fit(np.concatenate([[0.0], p, [1.0]]), np.concatenate([[0.0], freq, [1.0]]))
            # knots at PIT quantiles: dense where the PIT values are (the tails, for an
            # over-confident model), few enough that the recalibrated density stays smooth
            knots = np.unique(np.concatenate([[0.0], np.quantile(p, self._levels(p.size)), [1.0]]))
            mapped = (1 - self.eps) * iso.predict(knots) + self.eps * knots  # strictly increasing
            mapped[0], mapped[-1] = 0.0, 1.0
            self.maps_[name] = _strictly_increasing(knots, mapped)
        return self

    def transform(
        self, pred: Predictive, groups: Sequence[object] | None = None,
        where: np.ndarray | None = None,
    ) -> RecalibratedPredictive | PointMassMixture:  # fmt: skip
        """The recalibrated predictive distribution.

        A point-mass mixture comes back as one, its continuous part mapped and its weight too
        if a weight map was fitted.

        Args:
            pred: the predictive to map.
            groups: each point's group (the map fitted on it), as in :meth:`fit`.
            where: boolean, one per point: map only these; the others keep ``pred``'s
                distribution exactly (e.g. lower-fidelity rows: the map was fitted on target
                values). ``None``: every point.
        """
        if isinstance(pred, PointMassMixture):
            continuous = self.transform(pred.continuous, groups, where)
            weight = pred.weight
            if self.weight_maps_:
                weight = np.empty_like(pred.weight)
                for k, name in enumerate(self.maps_):
                    idx = continuous.which == k
                    xs, ys = self.weight_maps_[name]
                    w = pred.weight[idx]
                    weight[idx] = (1 - self.eps) * np.interp(w, xs, ys) + self.eps * w
            return PointMassMixture(weight, continuous, pred.atom)
        if not hasattr(self, "maps_"):
            raise NotFittedError("IsotonicRecalibration is not fitted; call fit(y, pred) first")
        g = _groups(groups, pred.n)
        names = list(self.maps_)
        unknown = set(g.tolist()) - set(names)
        if unknown:
            raise InputDataError(
                f"groups {sorted(unknown)} were not seen in fit; fitted: {sorted(names)}"
            )
        which = np.array([names.index(v) for v in g], dtype=np.int64)
        if where is not None:
            which[~np.asarray(where, dtype=bool).reshape(-1)] = -1
        return RecalibratedPredictive(
            pred, [self.maps_[k][0] for k in names], [self.maps_[k][1] for k in names], which
        )

    def to_dict(self) -> dict:
        """JSON-serializable: the options and the fitted maps (floats round-trip exactly).

        Raises:
            NotFittedError: not fitted.
        """
        if not hasattr(self, "maps_"):
            raise NotFittedError("IsotonicRecalibration is not fitted; call fit(y, pred) first")

        def lists(maps: dict) -> dict:
            return {k: [x.tolist(), y.tolist()] for k, (x, y) in maps.items()}

        return {"eps": self.eps, "n_knots": self.n_knots, "mixture_weight": self.mixture_weight,
                "maps": lists(self.maps_), "weight_maps": lists(self.weight_maps_)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> IsotonicRecalibration:
        """The fitted recalibration :meth:`to_dict` described."""

        def arrays(maps: dict) -> dict:
            return {k: (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
                    for k, (x, y) in maps.items()}  # fmt: skip

        iso = cls(eps=data["eps"], n_knots=data["n_knots"], mixture_weight=data["mixture_weight"])
        iso.maps_, iso.weight_maps_ = arrays(data["maps"]), arrays(data["weight_maps"])
        return iso


def _strictly_increasing(x: np.ndarray, y: np.ndarray, gap: float = 1e-9):
    """Drop knots whose value does not rise by ``gap`` above the last kept one.

    Knots closer than the floating-point resolution of the mixed map (PIT quantiles that
    differ in the last bits) would give segments of zero slope, so a log density of ``-inf``.
    The end points (0, 0) and (1, 1) are kept.
    """
    keep = [0]
    for i in range(1, x.size - 1):
        if y[i] - y[keep[-1]] > gap and y[-1] - y[i] > gap:
            keep.append(i)
    keep.append(x.size - 1)
    return x[keep], y[keep]
