import runpy
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from mfgp.exceptions import CampaignClosedError

matplotlib.use("Agg")
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("[0-9]*.py"))


def check_quickstart(ns):
    table = ns["table"]
    assert list(table.formula) == ["Si", "GaAs", "ZnO", "Cu"]
    assert np.isfinite(table["mean"]).all() and (table["std"] > 0).all()
    assert (table["lower_90"] >= 0).all() and (table["mean"] < table["upper_90"]).all()  # the hurdle: never below 0 eV
    assert table["p_metal"].between(0, 1).all()
    assert ns["fig"].axes and ns["fig2"].axes
    assert "out-of-fold over 3 folds" in ns["ax"].get_title() and "eV" in ns["ax"].get_xlabel()
    gaps = ns["gaps"]  # the table's intervals are the recalibrated ones
    assert type(gaps).__name__ == "HurdleRegressor" and gaps.recalibration_ is not None
    np.testing.assert_allclose(table[["lower_90", "upper_90"]].to_numpy().T,
                               gaps.predictive(table.formula.tolist()).interval(0.9))  # fmt: skip


def check_campaign(ns):
    batch, h, camp = ns["batch"], ns["h"], ns["camp"]
    assert len(batch) == 5 and batch.formula.is_unique
    assert (batch.lower_90 >= 0).all()  # the hurdle: a gap's interval never goes below 0
    n = int(h.experiments.iloc[-1])
    assert n == ns["n_total"] or int(h.hits.iloc[-1]) >= 8
    assert len(h) == n  # experiments only: every acquired row is one
    with pytest.raises(CampaignClosedError, match="is closed; reopen it with Campaign.open"):
        camp.suggest(1)  # the example closed it
    assert set(ns["mixed"].fidelity) <= {"pbe", "expt"} and len(ns["mixed"]) == 6
    assert ns["fig"].axes and ns["fig2"].axes


def check_experts(ns):
    for w in ns["weights"].values():
        assert abs(w["weight"].sum() - 1) < 1e-9 and set(w["source"]) == set(ns["experts"].available()["source"])
    ranking = ns["ranking"]
    assert list(ranking["rank"]) == list(range(1, len(ranking) + 1))
    assert ns["fig"].axes


def check_metals(ns):
    scores, pred = ns["scores"], ns["pred"]
    assert scores.loc["hurdle", "p(gap < 0)"] == 0 and scores.loc["gaussian ar1", "p(gap < 0)"] > 0
    assert np.all(pred.median() >= 0) and np.all((pred.weight >= 0) & (pred.weight <= 1))
    assert scores.loc["hurdle", "crps"] < scores.loc["gaussian ar1", "crps"]
    assert ns["fig"].axes


def check_reactions(ns):
    table = ns["table"]
    assert len(table) == len(ns["reactions"]) and table["measured"].notna().all()
    assert np.isclose(table["std"].iloc[0], table["std_independent"].iloc[0])  # one term
    assert (table["std"].iloc[1:] < table["std_independent"].iloc[1:]).all()  # errors cancel
    assert ns["std"] <= ns["std_independent"]
    assert ns["fig"].axes


def check_own_data(ns):
    assert "row " in ns["message"] and "'GaAz'" in ns["message"]
    assert ns["same"] and list(ns["table"].formula) == ns["new"]
    assert list(ns["back"].dataset_.fidelities) == ["pbe", "my_lab"]
    table = ns["table"]  # the hurdle's table: P(metal), never a negative gap
    assert type(ns["back"]).__name__ == "HurdleRegressor" and table.p_metal.between(0, 1).all()
    assert (table.lower_90 >= 0).all() and (table.upper_90 >= table.lower_90).all()


def check_architectures(ns):
    table = ns["table"]
    assert list(table.index) == ["single", "ar1", "multitask", "latent"]
    assert table.loc["ar1", "mae"] < table.loc["single", "mae"]  # the DFT fidelities help
    assert table[["coverage_50", "coverage_90"]].stack().between(0, 1).all()
    assert list(ns["recalibrated"].columns) == ["raw", "scaled"]
    assert ns["fig"].axes


def check_screening(ns):
    best = ns["best"]
    assert list(best["rank"]) == list(range(1, len(best) + 1)) and len(best) == 50
    assert best["score"].is_monotonic_decreasing and best["score"].between(0, 1).all()
    assert type(ns["model"]).__name__ == "HurdleRegressor"  # the ready-made gap model
    assert best["p_zero"].between(0, 1).all()
    known = set(ns["model"].dataset_.frame["composition"])
    from mfgp.featurize.composition import reduced_composition

    assert not known & set(reduced_composition(best["formula"].tolist()))  # exclude= held
    assert ns["fig"].axes


#: what each example must leave behind (a new example gets an entry, or the test fails)
CHECKS = {"01_quickstart.py": check_quickstart, "02_campaign.py": check_campaign,
          "03_experts.py": check_experts, "04_metals.py": check_metals,
          "05_reactions.py": check_reactions, "06_own_data.py": check_own_data,
          "07_architectures.py": check_architectures, "08_screening.py": check_screening}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_in_fast_mode(path, monkeypatch, tmp_path):
    # the figures counted below are the example's own: conftest closes every test's figures
    monkeypatch.setenv("MFGP_FAST", "1")
    monkeypatch.setenv("MFGP_FIGURES", str(tmp_path))
    ns = runpy.run_path(str(path), run_name="__main__")
    import matplotlib.pyplot as plt

    assert ns["FAST"] is True  # the example read the flag and ran its fast mode
    CHECKS[path.name](ns)
    # run as a script, it saved every figure it drew (in a notebook they are outputs)
    n_figures = len(plt.get_fignums())
    assert n_figures >= 1 and len(ns["saved"]) == n_figures
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(p.name for p in ns["saved"])
    for fig_number in plt.get_fignums():  # every axis says what it shows
        for ax in plt.figure(fig_number).axes:
            assert ax.get_xlabel() and ax.get_ylabel(), f"{path.name}: an axis without a label"
