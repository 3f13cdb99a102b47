import matplotlib
import numpy as np
import pytest

from mfgp.calibration import GaussianPredictive, LogNormalPredictive, PointMassMixture
from mfgp.calibration.arviz import to_inference_data
from mfgp.calibration.plots import (
    calibration_curve,
    interval_width_plot,
    parity_plot,
    pit_histogram,
)

matplotlib.use("Agg")


def test_inference_data_roundtrip():
    az = pytest.importorskip("arviz")
    r = np.random.default_rng(0)
    mu, sd = r.normal(size=30), np.full(30, 0.5)
    y = mu + sd * r.normal(size=30)
    idata = to_inference_data(
        GaussianPredictive(mu, sd), y, compositions=[f"C{i}" for i in range(30)],
        fidelities=["expt"] * 30, n_draws=400, n_chains=2,
    )  # fmt: skip
    pp = idata.posterior_predictive["y"]
    assert pp.shape == (2, 400, 30)
    assert list(pp.coords["composition"].values[:2]) == ["C0", "C1"]
    np.testing.assert_allclose(pp.mean(("chain", "draw")).values, mu, atol=0.1)
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    hdi = az.hdi(idata.posterior_predictive, hdi_prob=0.9)["y"].values
    assert hdi.shape == (30, 2) and (hdi[:, 0] < mu).all() and (hdi[:, 1] > mu).all()
    ax = az.plot_bpv(idata, kind="u_value")  # ArviZ's own ECDF-PIT check runs on mfgp output
    assert ax is not None


def test_plots_render_png(tmp_path):
    r = np.random.default_rng(1)
    mu, sd = r.normal(size=60), r.uniform(0.2, 0.6, 60)
    y = mu + sd * r.normal(size=60)
    g = ["pbe", "expt"] * 30
    for i, (fn, kw) in enumerate(
        [
            (parity_plot, {"groups": g, "units": "eV"}),
            (calibration_curve, {"groups": g}),
            (pit_histogram, {}),
            (interval_width_plot, {}),
        ]
    ):
        fig, ax = fn(y, mu, sd, **kw)
        path = tmp_path / f"p{i}.png"
        fig.savefig(path)
        assert path.stat().st_size > 5000
        assert ax.get_xlabel()
        matplotlib.pyplot.close(fig)
    mix = PointMassMixture(np.full(60, 0.3), LogNormalPredictive(np.zeros(60), np.full(60, 0.3)))
    fig, ax = calibration_curve(np.abs(y), pred=mix)
    fig.savefig(tmp_path / "mix.png")
    assert (tmp_path / "mix.png").stat().st_size > 5000
    curve = ax.lines[0]  # observed coverage at each nominal level: a coverage in [0, 1]
    x, cov = curve.get_xdata(), curve.get_ydata()
    assert len(x) == len(cov) > 5 and ((0 <= cov) & (cov <= 1)).all()
    assert np.all(np.diff(cov) >= -1e-12)  # wider central intervals never cover fewer points


def test_reliability_diagram_and_learning_curve_render_png(tmp_path):
    import pandas as pd

    from mfgp.calibration.plots import learning_curve, reliability_diagram

    r = np.random.default_rng(2)
    p = r.uniform(size=300)
    fig, ax = reliability_diagram(r.uniform(size=300) < p, p, label="P(metal)")
    fig.savefig(tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 5000 and "Brier" in ax.get_legend_handles_labels()[1][0]
    matplotlib.pyplot.close(fig)
    rows = [{"model": m, "n_train": n, "seed": s, "mae": 1 / np.sqrt(n) * (1 + 0.1 * s + k)}
            for k, m in enumerate(["gp", "moe"]) for n in (25, 100, 400) for s in range(3)]
    fig, ax = learning_curve(pd.DataFrame(rows), highlight="moe", units="eV")
    fig.savefig(tmp_path / "lc.png")
    assert (tmp_path / "lc.png").stat().st_size > 5000 and ax.get_xscale() == "log"
    gp = ax.get_lines()[0]
    assert np.allclose(gp.get_ydata(), [1.1 / np.sqrt(n) for n in (25, 100, 400)])  # medians
    assert ax.get_lines()[1].get_linewidth() > gp.get_linewidth()
    matplotlib.pyplot.close(fig)
