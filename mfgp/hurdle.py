"""The hurdle architecture for a property that is exactly zero for a class of materials.

Band gaps are 0 for metals and positive otherwise. The hurdle model describes a new
measurement of the target as a point mass at 0 with weight ``p = P(metal)`` (a classifier)
plus, with weight ``1 - p``, a distribution on ``(0, inf)``: a regression fitted to ``g(gap)``
of the *nonzero* target values, with ``g`` a transform to the real line, whose Gaussian
predictive is mapped back through ``g^-1``. Lower fidelities enter the regression as
``g(gap + offset)``, so their zeros stay finite.

:class:`HurdleSpec` is that composition, in one place: which rows each part is fitted on and
with which values (:meth:`HurdleSpec.split`), and how the parts' predictions combine
(:meth:`HurdleSpec.predictive`). The parts themselves are ordinary specs
(:class:`~mfgp.models.specs.ClassifierSpec` and a regression spec); the facade
(:class:`mfgp.HurdleRegressor`) only translates DataFrames.

Example:
    >>> import numpy as np
    >>> spec = HurdleSpec("softplus", offset=0.1)
    >>> labels, positive, g = spec.split(np.array([0.0, 1.2, 0.0]), np.array([True, True, False]))
    >>> labels.tolist(), positive.tolist()
    ([1.0, 0.0, 1.0], [False, True, True])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mfgp.distributions import (
    LogNormalPredictive,
    PointMassMixture,
    SoftplusNormalPredictive,
    softplus_inverse,
)
from mfgp.exceptions import InputDataError

__all__ = ["TRANSFORMS", "HurdleSpec"]

#: transform name -> (g, the predictive of g^-1 of a Gaussian)
TRANSFORMS = {
    "softplus": (softplus_inverse, SoftplusNormalPredictive),
    "log": (np.log, LogNormalPredictive),
}


@dataclass(frozen=True)
class HurdleSpec:
    """How a hurdle model splits its data and combines its parts.

    Attributes:
        transform: ``"softplus"`` (``g(y) = log(exp(y) - 1)``: log-like for small values,
            linear for large ones; a :class:`~mfgp.calibration.SoftplusNormalPredictive`) or
            ``"log"`` (a log-normal, whose upper tail is too long for wide-gap insulators,
            ``docs/metals.md``).
        offset: added to lower-fidelity values before ``g`` (> 0).
    """

    transform: str = "softplus"
    offset: float = 0.1

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise InputDataError(
                f"unknown transform {self.transform!r}; choose {' or '.join(TRANSFORMS)}"
            )
        if not self.offset > 0:
            raise InputDataError(
                f"offset must be > 0 (the {self.transform} of lower-fidelity values); got "
                f"{self.offset}"
            )

    def split(self, values: np.ndarray, is_target: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The parts' training data from the rows' values (>= 0) and target flags.

        Returns:
            ``labels`` (1.0 where the value is exactly 0, for the classifier, every row),
            ``positive`` (the rows of the regression: every lower-fidelity row and the nonzero
            target rows) and ``g`` (the regression's values on those rows).

        Raises:
            InputDataError: a negative value, or no nonzero target value.
        """
        values = np.asarray(values, dtype=np.float64)
        is_target = np.asarray(is_target, dtype=bool)
        if (values < 0).any():
            i = int(np.flatnonzero(values < 0)[0])
            raise InputDataError(f"hurdle values must be >= 0; row {i} has {values[i]:g}")
        labels = (values == 0).astype(np.float64)
        positive = ~is_target | (values > 0)
        if not (is_target & positive).any():
            raise InputDataError("no nonzero target values to fit the positive part on")
        v = values[positive]
        shifted = np.where(is_target[positive], v, v + self.offset)  # > 0 everywhere
        return labels, positive, TRANSFORMS[self.transform][0](shifted)

    def noise(self, values: np.ndarray, is_target: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Noise variances of the rows on the regression's ``g`` scale (the delta method).

        ``g'(y)^2 var`` with ``y`` the value (plus ``offset`` below the target): a known
        variance in the value's units squared becomes one in ``g``'s; NaN (unknown) stays
        NaN. At a zero target value (not a regression row) the result is ``inf``.
        """
        values = np.asarray(values, dtype=np.float64)
        y = np.where(np.asarray(is_target, dtype=bool), values, values + self.offset)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = -1.0 / np.expm1(-y) if self.transform == "softplus" else 1.0 / y
            return np.asarray(noise, dtype=np.float64) * slope**2

    def continuous(self, mean: np.ndarray, std: np.ndarray):
        """The positive part's predictive from the regression's Gaussian in ``g`` space."""
        return TRANSFORMS[self.transform][1](mean, std)

    def predictive(self, p_zero: np.ndarray, mean: np.ndarray, std: np.ndarray
                   ) -> PointMassMixture:  # fmt: skip
        """The hurdle predictive: mass ``p_zero`` at 0, the continuous part elsewhere."""
        return PointMassMixture(p_zero, self.continuous(mean, std), atom=0.0)

    def to_dict(self) -> dict:
        """JSON-serializable."""
        return dataclasses.asdict(self)
