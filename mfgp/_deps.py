"""The GP stack (linear_operator, GPyTorch, BoTorch), imported without its known import warning.

linear_operator decorates functions with ``torch.jit.script``, which torch 2.13 deprecates with
a ``DeprecationWarning`` raised while linear_operator is imported: theirs, harmless, and not
the user's to act on. Every mfgp module that needs the stack imports this one first, which
imports it with exactly that warning ignored, inside ``warnings.catch_warnings`` (the global
filters are left as they were). Any other warning still shows, and so does this one if a
user imported GPyTorch before mfgp.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
    )
    import botorch  # noqa: F401
    import gpytorch  # noqa: F401
    import linear_operator  # noqa: F401
