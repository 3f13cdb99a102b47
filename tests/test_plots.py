"""What the figures say (issue #37): the property and unit on every axis, titles and legends
that name what is drawn, every suggested row on the campaign map, figures saved from scripts."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from mfgp.calibration import PointMassMixture, SoftplusNormalPredictive
from mfgp.calibration.plots import (
    calibration_curve,
    interval_width_plot,
    parity_plot,
    pit_histogram,
    reliability_diagram,
)
from mfgp.featurize.composition import reduced_composition
from mfgp.figures import in_notebook, save_figures
from tests.test_campaign import new, world  # noqa: F401 (a fixture)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def data(n=40, seed=0):
    r = np.random.default_rng(seed)
    mu, sd = r.uniform(0, 3, n), r.uniform(0.2, 0.5, n)
    return mu + sd * r.normal(size=n), mu, sd


def test_parity_title_has_mae_with_unit_n_and_folds_and_axes_the_property():
    y, mu, sd = data()
    fig, ax = parity_plot(y, mu, sd, units="eV", quantity="experimental band gap", folds=5)
    mae = np.mean(np.abs(y - mu))
    assert ax.get_title() == f"MAE {mae:.3g} eV, n = 40, out-of-fold over 5 folds"
    assert ax.get_xlabel() == "observed experimental band gap (eV)"
    assert ax.get_ylabel() == "predicted experimental band gap (eV), 90% interval"
    labels = ax.get_legend_handles_labels()[1]
    assert sorted(labels) == ["predicted = observed", "predictive mean, 90% interval"]
    # a hurdle's predictive (a point mass at 0) draws too, its intervals never below 0
    pred = PointMassMixture(np.full(40, 0.3), SoftplusNormalPredictive(np.log(mu), np.full(40, 0.5)))
    fig, ax = parity_plot(np.abs(y), pred=pred, units="eV", quantity="band gap")
    assert ax.get_title().startswith("MAE ") and "n = 40" in ax.get_title()
    assert "fold" not in ax.get_title()  # not claimed out-of-fold unless told


def test_every_calibration_plot_labels_axes_and_legend():
    y, mu, sd = data()
    for fn, kw in [(calibration_curve, {"label": "raw"}), (pit_histogram, {"label": "ar1"}),
                   (interval_width_plot, {"units": "eV", "quantity": "band gap"})]:
        fig, ax = fn(y, mu, sd, **kw)
        assert ax.get_xlabel() and ax.get_ylabel()
        labels = ax.get_legend_handles_labels()[1]
        assert labels and all(label and not label.startswith("_") for label in labels)
        assert any("n = 40" in label for label in labels), (fn.__name__, labels)
    fig, ax = interval_width_plot(y, mu, sd, units="eV", quantity="band gap")
    assert ax.get_xlabel() == "90% interval width of the band gap (eV)"
    assert ax.get_ylabel().endswith("(eV)")
    fig, ax = reliability_diagram(y < 1, np.clip(1 - mu / 3, 0, 1), event="metal", label="hurdle")
    assert ax.get_xlabel() == "predicted P(metal)" and "metal" in ax.get_ylabel()


def test_suggestion_plot_draws_every_suggested_row(world, tmp_path):  # noqa: F811
    pool, known, hidden = world
    pbe = set(reduced_composition(known[known.fidelity == "pbe"].formula.tolist()))
    comps = [str(c) for c in reduced_composition(pool)]
    with_pbe = [f for f, c in zip(pool, comps) if c in pbe][:2]
    without = [f for f, c in zip(pool, comps) if c not in pbe][:2]
    assert len(with_pbe) == 2 and len(without) == 2
    batch = pd.DataFrame({"rank": [1, 2, 3, 4], "formula": [with_pbe[0], without[0], with_pbe[1],
                          without[1]], "fidelity": ["expt", "expt", "pbe", "pbe"]})  # fmt: skip
    with new(world, tmp_path / "s.db", objective="window",
             objective_options={"lo": 1.0, "hi": 2.5}) as camp:  # fmt: skip
        fig, ax = camp.plot_suggestions(batch, units="eV", quantity="band gap")
        drawn = [ln for ln in ax.get_lines() if ln.get_label().startswith("suggested")]
        assert sum(len(ln.get_xdata()) for ln in drawn) == 4  # none left off
        assert {ln.get_label() for ln in drawn} == {"suggested: expt (2)",
                                                    "suggested: a lower fidelity (2)"}
        ranks = [t.get_text() for t in ax.texts if t.get_text() != "no pbe value"]
        assert ranks == ["1", "2", "3", "4"]
        assert "no pbe value" in [t.get_text() for t in ax.texts]
        assert "2 without a pbe value" in ax.get_title()
        # the two without a PBE value sit left of every pool point on the map
        pool_x = [ln for ln in ax.containers][0].lines[0].get_xdata()
        xs = np.concatenate([ln.get_xdata() for ln in drawn])
        assert (np.sort(xs)[:2] < np.min(pool_x)).all()
        assert ax.get_xlabel() == "pbe band gap (eV)" and ax.get_ylabel() == "expt band gap (eV)"
        fig, ax = camp.plot_progress(metric="hits", units="eV", quantity="band gap")
        assert ax.get_ylabel() == "hits in [1, 2.5] eV (expt band gap)"


def test_save_figures_writes_every_open_figure_outside_jupyter(tmp_path, monkeypatch):
    plt.close("all")
    for _ in range(2):
        plt.subplots()
    assert not in_notebook()
    paths = save_figures("ex", tmp_path / "figs")
    assert [p.name for p in paths] == ["ex-1.png", "ex-2.png"] and all(p.stat().st_size for p in paths)
    monkeypatch.setenv("MFGP_FIGURES", str(tmp_path / "env"))
    assert [p.parent for p in save_figures("ex", close=True)] == [tmp_path / "env"] * 2
    assert not plt.get_fignums()
