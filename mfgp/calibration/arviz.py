"""Export mfgp predictions to ArviZ (``InferenceData``), the one module that touches ArviZ.

Supported ArviZ: ``>=0.17,<0.24`` (the 0.x API; 1.x reorganised it), pinned in ``pyproject.toml``
and exercised by ``tests/calibration/test_arviz_plots.py``. With the result, ArviZ's own checks work
on mfgp output: ``az.plot_bpv(idata, kind="u_value")`` (ECDF-PIT), ``az.hdi``, ``az.summary``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfgp.distributions import Predictive, _arr

__all__ = ["to_inference_data"]


def to_inference_data(
    pred: Predictive,
    observed: object | None = None,
    *,
    compositions: Sequence[str] | None = None,
    fidelities: Sequence[str] | None = None,
    n_draws: int = 1000,
    n_chains: int = 1,
    var_name: str = "y",
    seed: int = 0,
):
    """Predictive draws (and observations) as an ArviZ ``InferenceData``.

    Args:
        pred: any predictive distribution; draws come from ``pred.sample``.
        observed: the observed values, shape ``n`` (added as ``observed_data``).
        compositions: a label per point (coordinate ``composition``).
        fidelities: a fidelity name per point (coordinate ``fidelity`` on the point dimension).
        n_draws: draws per chain.
        n_chains: chains (independent draws; ArviZ wants a chain dimension).
        var_name: the variable name in both groups.
        seed: the sampling seed.

    Returns:
        ``InferenceData`` with groups ``posterior_predictive`` (``chain x draw x point``) and,
        when ``observed`` is given, ``observed_data``.
    """
    import arviz as az  # heavy, and warns at import: load only here

    draws = pred.sample(n_draws * n_chains, seed=seed).reshape(n_chains, n_draws, pred.n)
    coords: dict[str, object] = {"point": np.arange(pred.n)}
    if compositions is not None:
        coords["composition"] = ("point", np.asarray(compositions, dtype=str))
    if fidelities is not None:
        coords["fidelity"] = ("point", np.asarray(fidelities, dtype=str))
    dims = {var_name: ["point"]}
    kwargs = {}
    if observed is not None:
        kwargs["observed_data"] = {var_name: _arr(observed)}
    idata = az.from_dict(
        posterior_predictive={var_name: draws},
        dims=dims,
        coords={"point": coords["point"]},
        **kwargs,
    )
    extra = {k: v for k, v in coords.items() if k != "point"}
    for group in ("posterior_predictive", "observed_data"):
        if hasattr(idata, group) and extra:
            setattr(idata, group, getattr(idata, group).assign_coords(extra))
    return idata
