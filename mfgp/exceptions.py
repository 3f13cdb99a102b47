"""Exceptions raised by mfgp.

Every mfgp error derives from :class:`MfgpError` and also from the builtin exception that matches
its meaning, so ``except ValueError`` keeps working in user code. Messages name the offending row
and value and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "MfgpError",
    "InputDataError",
    "InvalidFormulaError",
    "UnknownElementError",
    "NonFiniteValueError",
    "UnknownFidelityError",
    "EmptyDataError",
    "MissingFidelityError",
    "ConflictingDuplicatesError",
    "ShapeError",
    "NotFittedError",
    "NumericalError",
    "SerializationError",
    "UnknownSpecError",
    "IncompatibleVersionError",
    "CampaignClosedError",
    "CampaignLockedError",
    "MfgpWarning",
    "ConflictingDuplicatesWarning",
    "PoolExtendedWarning",
]


class MfgpError(Exception):
    """Base class of every error raised by mfgp."""


class InputDataError(MfgpError, ValueError):
    """User data that cannot be used as given (the message names the row and the value)."""


class InvalidFormulaError(InputDataError):
    """A chemical formula that cannot be parsed."""


class UnknownElementError(InvalidFormulaError):
    """A formula that names a symbol that is not a chemical element."""


class NonFiniteValueError(InputDataError):
    """A NaN or infinite target value or noise level."""


class UnknownFidelityError(InputDataError, KeyError):
    """A fidelity name that is not among the declared fidelities."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class EmptyDataError(InputDataError):
    """No rows where rows are needed."""


class MissingFidelityError(InputDataError):
    """A declared fidelity that has no observation."""


class ConflictingDuplicatesError(InputDataError):
    """Repeated (composition, fidelity) rows whose values disagree beyond the tolerance."""


class ShapeError(MfgpError, ValueError):
    """Tensors whose shapes break the mfgp tensor contract (see ``docs/design.md``)."""


class NotFittedError(MfgpError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class NumericalError(MfgpError, RuntimeError):
    """A numerical failure (e.g. Cholesky) that retries with more jitter could not fix."""


class SerializationError(MfgpError, ValueError):
    """A saved model that cannot be read: truncated, corrupted, or not an mfgp file."""


class CampaignLockedError(MfgpError, RuntimeError):
    """A campaign store is open in another process."""


class CampaignClosedError(MfgpError, RuntimeError):
    """A closed campaign was used (reopen it with ``Campaign.open``)."""


class UnknownSpecError(SerializationError, KeyError):
    """A model spec (or one of its fields) that this version of mfgp does not know."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


class IncompatibleVersionError(SerializationError):
    """A saved model written in a format version this mfgp cannot read."""


class MfgpWarning(UserWarning):
    """Base class of mfgp's warnings (filter them with ``warnings.filterwarnings``)."""


class PoolExtendedWarning(MfgpWarning):
    """Observed formulas outside a campaign's pool, added to it."""


class ConflictingDuplicatesWarning(MfgpWarning):
    """Repeated (composition, fidelity) rows that disagree, aggregated anyway."""
