"""Predictive distributions as arrays: Gaussian, samples, and mixtures with a point mass.

Each has ``mean()``, ``std()``, ``ppf(q)``, ``cdf(y)``, ``log_score(y)`` (log density, or log
probability at an atom), ``crps(y)`` and ``pit(y)``, vectorised over ``n`` points, so every metric
in :mod:`mfgp.calibration.metrics` works on any of them.

They are what every layer hands on: the hurdle (:mod:`mfgp.hurdle`) builds its point-mass
mixture from them, the estimators and surrogates return them, calibration scores and
recalibrates them. :mod:`mfgp.calibration` re-exports them (and ``mfgp.calibration.predictive``,
their former home, still imports them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import special, stats

from mfgp.exceptions import InputDataError, NonFiniteValueError, ShapeError

__all__ = [
    "Predictive",
    "GaussianPredictive",
    "SamplePredictive",
    "PointMassMixture",
    "LogNormalPredictive",
    "SoftplusNormalPredictive",
    "as_predictive",
    "concatenate",
    "softplus",
    "softplus_inverse",
]

_TAU = (np.arange(1, 1000) - 0.5) / 999  # quantile grid for the generic CRPS integral


def _arr(x: object) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


class Predictive(ABC):
    """A predictive distribution for each of ``n`` points.

    Subclasses implement ``ppf_each`` (one quantile level per point); ``ppf``, ``interval``,
    ``sample`` and the generic ``crps`` derive from it.
    """

    @property
    @abstractmethod
    def n(self) -> int:
        """Number of points."""

    @abstractmethod
    def mean(self) -> np.ndarray:
        """Predictive mean, shape ``n``."""

    @abstractmethod
    def std(self) -> np.ndarray:
        """Predictive standard deviation, shape ``n``."""

    @abstractmethod
    def ppf_each(self, q: np.ndarray) -> np.ndarray:
        """Quantile ``q[i]`` of point ``i``, shape ``n``."""

    @abstractmethod
    def cdf(self, y: np.ndarray) -> np.ndarray:
        """``P(Y <= y)`` for each point."""

    @abstractmethod
    def log_score(self, y: np.ndarray) -> np.ndarray:
        """Log predictive density at ``y`` (log probability where ``y`` sits on an atom)."""

    def ppf(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles: a scalar ``q`` gives shape ``n``; an array of ``k`` levels, ``k x n``."""
        q = np.asarray(q, dtype=np.float64)
        levels = np.atleast_1d(q)
        out = np.stack([self.ppf_each(np.full(self.n, lv)) for lv in levels])
        return out[0] if q.ndim == 0 else out

    def median(self) -> np.ndarray:
        """Predictive median."""
        return self.ppf(0.5)

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval holding ``level`` of the probability."""
        a = (1 - level) / 2
        return self.ppf(a), self.ppf(1 - a)

    def table(self, level: float = 0.9) -> dict[str, np.ndarray]:
        """Columns ``mean, std, lower_<p>, upper_<p>`` of a predictions table (``p``: percent)."""
        lo, hi = self.interval(level)
        pct = f"{level * 100:g}".replace(".", "_")
        return {"mean": self.mean(), "std": self.std(), f"lower_{pct}": lo, f"upper_{pct}": hi}

    def crps(self, y: np.ndarray) -> np.ndarray:
        """Continuous ranked probability score (lower is better), by the quantile integral.

        ``CRPS = 2 * int_0^1 (1{y < F^-1(t)} - t) (F^-1(t) - y) dt`` on a 999-point grid.
        """
        y = _arr(y)
        q = self.ppf(_TAU)  # k x n
        ind = (y[None, :] < q).astype(np.float64)
        return 2.0 * ((ind - _TAU[:, None]) * (q - y[None, :])).mean(0)

    def cdf_left(self, y: np.ndarray) -> np.ndarray:
        """``P(Y < y)``: differs from :meth:`cdf` only where ``y`` sits on an atom."""
        return self.cdf(y)

    def probability_between(self, lo: float, hi: float) -> np.ndarray:
        """``P(lo <= Y <= hi)`` for each point (an atom at ``lo`` or ``hi`` counts in full)."""
        return self.cdf(np.full(self.n, float(hi))) - self.cdf_left(np.full(self.n, float(lo)))

    def pit(self, y: np.ndarray, seed: int = 0) -> np.ndarray:
        """Probability integral transform (uniform when calibrated).

        On an atom the PIT is drawn uniformly between ``P(Y < y)`` and ``P(Y <= y)``.
        """
        y = _arr(y)
        left, right = self.cdf_left(y), self.cdf(y)
        return left + np.random.default_rng(seed).uniform(size=y.size) * (right - left)

    def covered(self, y: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Probability that each observation falls in each central interval, ``k x n``.

        For continuous predictions this is the indicator ``a <= F(y) <= 1 - a``; on an atom it is
        the share of the jump ``[F(y-), F(y)]`` inside ``[a, 1 - a]`` (the expected randomised
        PIT coverage), so that a calibrated mixed distribution covers exactly the nominal level.
        """
        y = _arr(y)
        left, right = self.cdf_left(y)[None, :], self.cdf(y)[None, :]
        a = ((1 - np.asarray(levels, dtype=np.float64)) / 2)[:, None]
        jump = right - left
        overlap = np.clip(np.minimum(right, 1 - a) - np.maximum(left, a), 0.0, None)
        point = ((left >= a) & (left <= 1 - a)).astype(np.float64)
        return np.where(jump > 0, overlap / np.where(jump > 0, jump, 1.0), point)

    def subset(self, idx: np.ndarray) -> Predictive:
        """The predictive of the points ``idx`` (indices or a boolean mask)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement subset(idx)")

    def sample(self, n_samples: int, seed: int = 0) -> np.ndarray:
        """Draws, ``n_samples x n``, by inverse transform sampling."""
        u = np.random.default_rng(seed).uniform(1e-12, 1 - 1e-12, size=(n_samples, self.n))
        return np.stack([self.ppf_each(row) for row in u])


class GaussianPredictive(Predictive):
    """Independent Gaussians ``N(mean_i, std_i^2)``.

    Example:
        >>> p = GaussianPredictive([0.0], [1.0])
        >>> round(float(p.crps([0.0])[0]), 6)  # closed form: (sqrt(2) - 1) / sqrt(pi)
        0.233695
    """

    def __init__(self, mean: object, std: object) -> None:
        self._mean = _arr(mean)
        self._std = _arr(std)
        if self._mean.shape != self._std.shape:
            raise ShapeError(f"mean {self._mean.shape} and std {self._std.shape} differ in shape")
        bad = ~np.isfinite(self._std) | ~(self._std > 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise NonFiniteValueError(
                f"point {i}: std {float(self._std[i])!r} must be finite and > 0"
            )

    def subset(self, idx: np.ndarray) -> GaussianPredictive:  # noqa: D102
        return GaussianPredictive(self._mean[idx], self._std[idx])

    @property
    def n(self) -> int:  # noqa: D102
        return self._mean.size

    def mean(self) -> np.ndarray:  # noqa: D102
        return self._mean

    def std(self) -> np.ndarray:  # noqa: D102
        return self._std

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._mean + special.ndtri(q) * self._std

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return special.ndtr((_arr(y) - self._mean) / self._std)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        z = (_arr(y) - self._mean) / self._std
        return -0.5 * z**2 - np.log(self._std) - 0.5 * np.log(2 * np.pi)

    def crps(self, y: np.ndarray) -> np.ndarray:
        """Closed form (Gneiting & Raftery 2007)."""
        z = (_arr(y) - self._mean) / self._std
        pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
        return self._std * (z * (2 * special.ndtr(z) - 1) + 2 * pdf - 1 / np.sqrt(np.pi))


class LogNormalPredictive(Predictive):
    """``exp(N(mu_i, sigma_i^2))``: a positive quantity modelled on the log scale."""

    def __init__(self, mu: object, sigma: object) -> None:
        self.mu = _arr(mu)
        self.sigma = _arr(sigma)

    def subset(self, idx: np.ndarray) -> LogNormalPredictive:  # noqa: D102
        return LogNormalPredictive(self.mu[idx], self.sigma[idx])

    @property
    def n(self) -> int:  # noqa: D102
        return self.mu.size

    def mean(self) -> np.ndarray:  # noqa: D102
        return np.exp(self.mu + 0.5 * self.sigma**2)

    def std(self) -> np.ndarray:  # noqa: D102
        return self.mean() * np.sqrt(np.expm1(self.sigma**2))

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        return np.exp(self.mu + special.ndtri(q) * self.sigma)

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        logy = np.log(np.where(y > 0, y, 1.0))
        return np.where(y > 0, special.ndtr((logy - self.mu) / self.sigma), 0.0)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        out = np.full(y.shape, -np.inf)
        pos = y > 0
        out[pos] = stats.lognorm.logpdf(y[pos], s=self.sigma[pos], scale=np.exp(self.mu[pos]))
        return out


def softplus(t: object) -> np.ndarray:
    """``log(1 + exp(t))``, overflow-free."""
    return np.logaddexp(0.0, np.asarray(t, dtype=np.float64))


def softplus_inverse(y: object) -> np.ndarray:
    """``log(exp(y) - 1)`` for ``y > 0``, accurate at both ends (``log y`` near 0, ``y`` above ~35).

    Raises:
        InputDataError: a value is not > 0 (its position and value are named).
    """
    y = np.asarray(y, dtype=np.float64)
    bad = ~(y > 0)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise InputDataError(
            f"softplus_inverse needs values > 0; position {i} has {float(y.reshape(-1)[i])!r}"
        )
    return y + np.log(-np.expm1(-y))


#: probabilists' Gauss-Hermite rule for the moments of a transformed Gaussian
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


class SoftplusNormalPredictive(Predictive):
    """``softplus(N(mu_i, sigma_i^2))``: a positive quantity, log-like near 0, linear far from it.

    ``t = softplus^-1(y) = log(exp(y) - 1)`` behaves like ``log y`` for small ``y`` and like ``y``
    for large ``y``, so a Gaussian in ``t`` gives multiplicative errors near 0 and additive
    (Gaussian) errors far from it, where a log-normal would stretch the upper tail. Quantiles and
    the CDF are exact; the mean and standard deviation use a 64-node Gauss-Hermite rule.
    """

    def __init__(self, mu: object, sigma: object) -> None:
        self.mu = _arr(mu)
        self.sigma = _arr(sigma)
        if self.mu.shape != self.sigma.shape:
            raise ShapeError(f"mu has shape {self.mu.shape}, sigma {self.sigma.shape}")

    def subset(self, idx: np.ndarray) -> SoftplusNormalPredictive:  # noqa: D102
        return SoftplusNormalPredictive(self.mu[idx], self.sigma[idx])

    @property
    def n(self) -> int:  # noqa: D102
        return self.mu.size

    def _nodes(self) -> np.ndarray:
        """``n x 64``: the quadrature nodes mapped to ``y``."""
        return softplus(self.mu[:, None] + self.sigma[:, None] * _GH_NODES[None, :])

    def mean(self) -> np.ndarray:  # noqa: D102
        return self._nodes() @ _GH_WEIGHTS

    def std(self) -> np.ndarray:  # noqa: D102
        y = self._nodes()
        m1 = y @ _GH_WEIGHTS
        return np.sqrt(np.maximum((y * y) @ _GH_WEIGHTS - m1**2, 0.0))

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        return softplus(self.mu + special.ndtri(q) * self.sigma)

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        t = softplus_inverse(np.where(y > 0, y, 1.0))
        return np.where(y > 0, special.ndtr((t - self.mu) / self.sigma), 0.0)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        out = np.full(y.shape, -np.inf)
        pos = y > 0
        t = softplus_inverse(y[pos])
        # density of y: phi((t - mu) / sigma) / sigma * dt/dy, dt/dy = 1 / (1 - exp(-y))
        out[pos] = stats.norm.logpdf(t, self.mu[pos], self.sigma[pos]) - np.log(-np.expm1(-y[pos]))
        return out


class SamplePredictive(Predictive):
    """An empirical predictive from draws, ``n_samples x n``.

    ``log_score`` uses a Gaussian kernel density estimate (Silverman's bandwidth); ``crps`` the
    energy form ``E|X - y| - E|X - X'| / 2``, computed exactly from the sorted draws.
    """

    def __init__(self, samples: object) -> None:
        s = samples.detach().cpu().numpy() if hasattr(samples, "detach") else samples
        s = np.asarray(s, dtype=np.float64)
        if s.ndim != 2 or s.shape[0] < 2:
            raise ShapeError(f"samples must be n_samples x n with n_samples >= 2, got {s.shape}")
        self.samples = np.sort(s, axis=0)

    def subset(self, idx: np.ndarray) -> SamplePredictive:  # noqa: D102
        return SamplePredictive(self.samples[:, idx])

    @property
    def n(self) -> int:  # noqa: D102
        return self.samples.shape[1]

    def mean(self) -> np.ndarray:  # noqa: D102
        return self.samples.mean(0)

    def std(self) -> np.ndarray:  # noqa: D102
        return self.samples.std(0, ddof=1)

    def ppf(self, q: float | np.ndarray) -> np.ndarray:  # noqa: D102
        return np.quantile(self.samples, q, axis=0)

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        m = self.samples.shape[0]
        pos = np.clip(q, 0, 1) * (m - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, m - 1)
        cols = np.arange(self.n)
        frac = pos - lo
        return self.samples[lo, cols] * (1 - frac) + self.samples[hi, cols] * frac

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return (self.samples <= _arr(y)[None, :]).mean(0)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        m = self.samples.shape[0]
        bw = 1.06 * np.maximum(self.std(), 1e-12) * m ** (-0.2)
        z = (y[None, :] - self.samples) / bw[None, :]
        return special.logsumexp(-0.5 * z**2, axis=0) - np.log(m * bw * np.sqrt(2 * np.pi))

    def crps(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        m = self.samples.shape[0]
        e1 = np.abs(self.samples - y[None, :]).mean(0)
        k = np.arange(1, m + 1)[:, None]
        e2 = 2.0 * ((2 * k - m - 1) * self.samples).sum(0) / m**2  # E|X - X'|
        return e1 - 0.5 * e2

    def cdf_left(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        return (self.samples < _arr(y)[None, :]).mean(0)


class PointMassMixture(Predictive):
    """``w_i * delta(atom) + (1 - w_i) * continuous_i``: e.g. a zero-inflated band gap.

    ``log_score`` is ``log w`` at the atom and ``log((1 - w) p(y))`` elsewhere (a density with
    respect to counting plus Lebesgue measure), the proper log score for such mixed variables.

    Args:
        weight: probability of the atom for each point (e.g. P(metal)).
        continuous: the distribution of the value off the atom (no mass at ``atom`` itself).
        atom: location of the point mass.
    """

    def __init__(self, weight: object, continuous: Predictive, atom: float = 0.0) -> None:
        self.weight = np.clip(_arr(weight), 0.0, 1.0)
        self.continuous = continuous
        self.atom = float(atom)
        if self.weight.size != continuous.n:
            raise ShapeError(f"weight has {self.weight.size} points, continuous {continuous.n}")

    def table(self, level: float = 0.9) -> dict[str, np.ndarray]:
        """:meth:`Predictive.table` plus ``p_zero``, the probability of the atom."""
        return {**super().table(level), "p_zero": self.weight}

    def subset(self, idx: np.ndarray) -> PointMassMixture:  # noqa: D102
        return PointMassMixture(self.weight[idx], self.continuous.subset(idx), self.atom)

    def classify(self, threshold: float = 0.5) -> np.ndarray:
        """A hard decision: the atom where its weight is ``>= threshold``, else the median.

        The median is that of the continuous part (e.g. 0 for a likely metal, else the
        non-metal's gap).
        """
        return np.where(self.weight >= threshold, self.atom, self.continuous.median())

    @property
    def n(self) -> int:  # noqa: D102
        return self.weight.size

    def mean(self) -> np.ndarray:  # noqa: D102
        return self.weight * self.atom + (1 - self.weight) * self.continuous.mean()

    def std(self) -> np.ndarray:  # noqa: D102
        w, mc, sc = self.weight, self.continuous.mean(), self.continuous.std()
        second = w * self.atom**2 + (1 - w) * (sc**2 + mc**2)
        return np.sqrt(np.maximum(second - self.mean() ** 2, 0.0))

    def ppf_each(self, q: np.ndarray) -> np.ndarray:  # noqa: D102
        w = self.weight
        lo_mass = (1 - w) * self.continuous.cdf(np.full(self.n, self.atom))  # F(atom-)
        on_atom = (q >= lo_mass) & (q <= lo_mass + w)
        target = np.where(q < lo_mass, q, q - w) / np.maximum(1 - w, 1e-300)
        cont = self.continuous.ppf_each(np.clip(target, 1e-12, 1 - 1e-12))
        return np.where(on_atom, self.atom, cont)

    def cdf(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        return self.weight * (y >= self.atom) + (1 - self.weight) * self.continuous.cdf(y)

    def log_score(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        at = y == self.atom
        with np.errstate(divide="ignore"):
            off = np.log1p(-self.weight) + self.continuous.log_score(y)
            return np.where(at, np.log(self.weight), off)

    def cdf_left(self, y: np.ndarray) -> np.ndarray:  # noqa: D102
        y = _arr(y)
        return self.weight * (y > self.atom) + (1 - self.weight) * self.continuous.cdf_left(y)


def concatenate(parts: list[Predictive]) -> Predictive:
    """One predictive of the points of ``parts`` in order (e.g. the folds of a cross-validation).

    The parts must be of one kind: Gaussian, log-normal, softplus-normal, samples (with equal
    draws), or point-mass mixtures with one atom (their continuous parts concatenated alike).

    Example:
        >>> p = concatenate([GaussianPredictive([0.0], [1.0]), GaussianPredictive([2.0], [3.0])])
        >>> p.mean().tolist(), p.std().tolist()
        ([0.0, 2.0], [1.0, 3.0])

    Raises:
        InputDataError: no parts, parts of different kinds, or of a kind that does not
            concatenate (the offending part is named).
    """
    parts = list(parts)
    if not parts:
        raise InputDataError("concatenate needs at least one predictive")
    kind = type(parts[0])
    for i, p in enumerate(parts):
        if type(p) is not kind:
            raise InputDataError(
                f"part {i} is a {type(p).__name__}, part 0 a {kind.__name__}: concatenate "
                "takes predictives of one kind"
            )
    if kind is GaussianPredictive:
        return GaussianPredictive(*(np.concatenate([getattr(p, a) for p in parts])
                                    for a in ("_mean", "_std")))  # fmt: skip
    if kind in (LogNormalPredictive, SoftplusNormalPredictive):
        return kind(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("mu", "sigma")))
    if kind is SamplePredictive:
        draws = {p.samples.shape[0] for p in parts}
        if len(draws) > 1:
            raise InputDataError(f"sample predictives with {sorted(draws)} draws: use one count")
        return SamplePredictive(np.concatenate([p.samples for p in parts], axis=1))
    if kind is PointMassMixture:
        atoms = {p.atom for p in parts}
        if len(atoms) > 1:
            raise InputDataError(f"point-mass mixtures with atoms at {sorted(atoms)}: use one atom")
        weight = np.concatenate([p.weight for p in parts])
        return PointMassMixture(weight, concatenate([p.continuous for p in parts]), parts[0].atom)
    raise InputDataError(f"a {kind.__name__} does not concatenate")


def as_predictive(mean: object = None, std: object = None, samples: object = None) -> Predictive:
    """A :class:`Predictive` from either ``(mean, std)`` or ``samples``."""
    if isinstance(mean, Predictive):
        return mean
    if samples is not None:
        return SamplePredictive(samples)
    if mean is None or std is None:
        raise InputDataError("give a Predictive, (mean, std), or samples")
    return GaussianPredictive(mean, std)
