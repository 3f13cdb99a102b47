"""The command line on small files: fit, predict, evaluate, and the errors a user meets."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from mfgp.cli import main
from mfgp.datasets import load_bandgap_ladder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[(df.fidelity == "expt") & (df.value > 0)].drop_duplicates("composition")
    expt = expt.sample(40, random_state=0)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(expt.composition)]
    # experiment rows first: the file's order is not the fidelity order, --target says which
    data = pd.concat([expt, pbe])[["formula", "fidelity", "value"]]
    data.to_csv(tmp / "data.csv", index=False)
    pd.DataFrame({"formula": ["Si", "GaAs", "ZnO"]}).to_csv(tmp / "new.csv", index=False)
    return tmp


def test_fit_then_predict(files, capsys):
    model = files / "gaps.mfgp"
    assert main(["fit", str(files / "data.csv"), "--target", "expt", "-o", str(model),
                 "--quiet"]) == 0  # fmt: skip
    assert "fidelities, low to high" not in capsys.readouterr().out  # quiet
    out = files / "pred.csv"
    assert main(["predict", str(model), str(files / "new.csv"), "-o", str(out), "--level",
                 "0.8", "--quiet"]) == 0  # fmt: skip
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["formula", "mean", "std", "lower_80", "upper_80"]
    assert pred.formula.tolist() == ["Si", "GaAs", "ZnO"]
    assert np.isfinite(pred[["mean", "std"]].to_numpy()).all() and (pred["std"] > 0).all()
    assert (pred.lower_80 < pred["mean"]).all() and (pred["mean"] < pred.upper_80).all()
    # the same numbers as the Python API on the saved file
    from mfgp.estimators import MultiFidelityRegressor

    mean = MultiFidelityRegressor.load(model).predict(["Si", "GaAs", "ZnO"])
    assert np.allclose(pred["mean"], mean)


def test_predict_with_a_hurdle_file_gives_its_table(files):
    # the ready-made band-gap hurdle: P(metal) beside the mixture's moments, as predict_frame
    import mfgp
    from mfgp.pretrained import _dir

    out = files / "hurdle_pred.csv"
    model = _dir() / "expt_gap.mfgp"
    assert main(["predict", str(model), str(files / "new.csv"), "-o", str(out), "--quiet"]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["formula", "p_metal", "mean", "std", "lower_90", "upper_90"]
    frame = mfgp.pretrained("expt_gap").predict_frame(["Si", "GaAs", "ZnO"])
    np.testing.assert_allclose(pred[frame.columns[1:]].to_numpy(),
                               frame[frame.columns[1:]].to_numpy(), rtol=1e-9)  # fmt: skip


def test_fit_recalibrates_and_predict_uses_the_map(files, capsys):
    from mfgp.estimators import MultiFidelityRegressor

    model = files / "recal.mfgp"
    assert main(["fit", str(files / "data.csv"), "--target", "expt", "--architecture", "single",
                 "--recalibrate", "2", "-o", str(model), "--quiet"]) == 0  # fmt: skip
    assert "recalibrated on 2 folds" in capsys.readouterr().out
    out = files / "recal.csv"
    assert main(["predict", str(model), str(files / "new.csv"), "-o", str(out), "--quiet"]) == 0
    est = MultiFidelityRegressor.load(model)
    assert est.recalibration_ is not None
    lo, hi = est.predictive(["Si", "GaAs", "ZnO"]).interval(0.9)
    pred = pd.read_csv(out)
    assert np.allclose(pred.lower_90, lo) and np.allclose(pred.upper_90, hi)


def test_evaluate_writes_metrics_and_plots(files, capsys, monkeypatch):
    import mfgp.calibration.plots as plots_module

    titles = []
    original = plots_module.parity_plot

    def parity(*args, **kwargs):
        fig, ax = original(*args, **kwargs)
        titles.append((ax.get_title(), ax.get_xlabel()))
        return fig, ax

    monkeypatch.setattr(plots_module, "parity_plot", parity)
    out, plots = files / "metrics.json", files / "figures"
    assert main(["evaluate", str(files / "data.csv"), "--target", "expt", "--folds", "2",
                 "--architecture", "single", "-o", str(out), "--plots", str(plots),
                 "--quantity", "band gap", "--units", "eV", "--quiet"]) == 0  # fmt: skip
    (title, xlabel), = titles
    assert "eV" in title and "out-of-fold over 2 folds" in title, title
    assert "band gap" in xlabel and "eV" in xlabel, xlabel
    metrics = json.loads(out.read_text())
    assert metrics["folds"] == 2 and metrics["summary"]
    assert (plots / "parity.png").stat().st_size > 1000
    assert (plots / "calibration.png").stat().st_size > 1000
    assert "mae" in capsys.readouterr().out.lower()


def test_bad_files_get_one_line_errors(files, capsys):
    (files / "bad.csv").write_text("formula,value\nSi,1.1\n")
    assert main(["fit", str(files / "bad.csv"), "-o", str(files / "x.mfgp")]) == 2
    err = capsys.readouterr().err
    assert "missing ['fidelity']" in err and "Traceback" not in err
    assert main(["fit", str(files / "nope.csv"), "-o", str(files / "x.mfgp")]) == 2
    assert "no file" in capsys.readouterr().err
    assert main(["fit", str(files / "data.csv"), "--fidelities", "expt,pbe", "--target",
                 "expt", "-o", str(files / "x.mfgp")]) == 2  # fmt: skip
    assert "must be the last" in capsys.readouterr().err
    assert not (files / "x.mfgp").exists()  # nothing half-written
    assert main(["predict", str(files / "data.csv"), str(files / "new.csv"), "-o",
                 str(files / "p.csv")]) == 2  # fmt: skip
    assert "error:" in capsys.readouterr().err


def test_screen_enumerates_and_keeps_the_best(files, capsys):
    model = files / "gaps.mfgp"
    if not model.exists():
        assert main(["fit", str(files / "data.csv"), "--target", "expt", "-o", str(model),
                     "--quiet"]) == 0  # fmt: skip
    out = files / "top.csv"
    assert main(["screen", str(model), "--elements", "Li,Na,O,S,Cl", "--charge-balanced",
                 "--score", "window", "--window", "1.1,1.7", "--top-k", "5", "-o", str(out),
                 "--exclude-known", "--quiet"]) == 0  # fmt: skip
    top = pd.read_csv(out)
    assert len(top) == 5 and top["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (top.score.diff().dropna() <= 0).all() and top.score.between(0, 1).all()
    # it says how many candidates it scored and how long that took (issue 35)
    printed = capsys.readouterr().out
    assert re.search(r"scored [\d,]+ candidates in [\d,.]+ s \([\d,]+ a second\)", printed), printed
    # a ready-made model by its name (issue 35: screen with the model you trust)
    assert main(["screen", "expt_gap", "--elements", "Li,Na,O,S,Cl", "--charge-balanced",
                 "--score", "window", "--window", "1.1,1.7", "--top-k", "3", "-o", str(out),
                 "--quiet"]) == 0  # fmt: skip
    assert "p_zero" in pd.read_csv(out).columns  # the hurdle's table
    assert main(["predict", "expt_gap", str(files / "new.csv"), "-o", str(out), "--quiet"]) == 0
    assert pd.read_csv(out).formula.tolist() == ["Si", "GaAs", "ZnO"]
    assert main(["screen", "no_such_model", "--elements", "Li,O", "-o", str(out)]) == 2
    assert main(["screen", str(model), "-o", str(out)]) == 2
    assert "either --elements" in capsys.readouterr().err
    assert main(["screen", str(model), "--elements", "Li,O", "--score", "window", "--window",
                 "1.1", "-o", str(out)]) == 2  # fmt: skip
    assert "--window is lo,hi" in capsys.readouterr().err


def test_fit_with_experts_then_reaction_energies(tmp_path, capsys):
    from mfgp.datasets import load_formation_enthalpy

    df = load_formation_enthalpy(["mp", "expt"])
    keep = df[df.fidelity == "expt"].drop_duplicates("composition").sample(60, random_state=0)
    data = df[df.composition.isin(set(keep.composition) | {"AlNi", "Al3Ni2", "AlNi3"})]
    data = data.drop_duplicates(["composition", "fidelity"])
    data[["formula", "fidelity", "value"]].to_csv(tmp_path / "h.csv", index=False)
    model = tmp_path / "h.mfgp"
    assert main(["fit", str(tmp_path / "h.csv"), "--target", "expt", "--experts",
                 "mp_e_form", "--architecture", "single", "-o", str(model),
                 "--quiet"]) == 0  # fmt: skip
    from mfgp.estimators import load_estimator

    assert load_estimator(model).experts == ["mp_e_form"]
    pd.DataFrame({"reaction": ["Al + Ni -> AlNi", "AlNi3 -> AlNi + 2 Ni"]}).to_csv(
        tmp_path / "r.csv", index=False)
    out = tmp_path / "energies.csv"
    assert main(["reactions", str(model), str(tmp_path / "r.csv"), "-o", str(out),
                 "--quiet"]) == 0  # fmt: skip
    table = pd.read_csv(out)
    assert table["equation"].tolist()[1] == "AlNi3 -> 2 Ni + AlNi"
    assert (table["std"] > 0).all() and (table["std"] <= table["std_independent"] + 1e-12).all()
    pd.DataFrame({"reaction": ["Al + Ni"]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["reactions", str(model), str(tmp_path / "bad.csv"), "-o", str(out)]) == 2
    assert "reactants -> products" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["fit", "predict", "evaluate", "screen", "reactions", "data",
                                  "campaign", "demo", "featurize"])
def test_each_verb_documents_its_examples_one_a_line(verb, capsys):
    # issue 37: the examples keep their own lines (argparse used to rewrap them into one)
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    out = capsys.readouterr().out
    assert "\nexamples:\n" in out
    examples = out.split("\nexamples:\n")[1].splitlines()
    assert examples[0].startswith(f"  mfgp {verb} ")
    assert all(e.startswith(("  mfgp ", "    (")) for e in examples if e.strip())


def test_data_exports_a_shipped_set(tmp_path, capsys):
    # issue 37: mfgp data NAME -o file.csv writes the long format; an unknown name gets the list
    out = tmp_path / "h.csv"
    assert main(["data", "formation", "-o", str(out)]) == 0
    assert "wrote 2438 rows (oqmd 674, mp 632, expt 1132)" in capsys.readouterr().out
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns[:4]) == ["formula", "composition", "fidelity", "value"]
    assert len(df) == 2438
    assert main(["data", "gaps", "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "no shipped dataset 'gaps'" in err and "bandgap, formation" in err
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    assert "steels" in capsys.readouterr().out  # --help lists the names


def test_bad_rows_are_named_by_line_all_at_once(files, capsys):
    # issue 37: a mistyped fidelity with --fidelities, a bad formula and a missing value are
    # named by the file's line (header = line 1) in one message, not a traceback or Python advice
    data = pd.read_csv(files / "data.csv")
    data.loc[5, "fidelity"] = "pbe0"  # line 7
    data.loc[7, "formula"] = "Xx2"  # line 9
    data.loc[9, "value"] = np.nan  # line 11
    data.to_csv(files / "typo.csv", index=False)
    for verb in (["fit", "-o", str(files / "t.mfgp")], ["evaluate"]):
        assert main([verb[0], str(files / "typo.csv"), *verb[1:], "--fidelities", "pbe,expt",
                     "--quiet"]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "fidelities=" not in err
        assert "3 rows cannot be used" in err
        for part in ("line 7: fidelity 'pbe0'", "line 9: formula 'Xx2'", "line 11: value"):
            assert part in err
    # no declared order: a level of one row named like another is refused, naming its line
    assert main(["fit", str(files / "typo.csv"), "--target", "expt", "-o",
                 str(files / "t.mfgp"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "line 7: fidelity 'pbe0' (1 row) looks like a misspelling of 'pbe'" in err
    assert "--fidelities" in err and not (files / "t.mfgp").exists()


def test_the_hurdle_takes_the_architecture_and_classifier_options():
    import argparse

    from mfgp.cli import _estimator
    from mfgp.estimators import HurdleRegressor

    args = argparse.Namespace(quiet=True, device=None, experts=None, model="hurdle",
                              architecture="single", seed=3, multitask="no")  # fmt: skip
    est = _estimator(args)
    assert isinstance(est, HurdleRegressor)
    assert (est.architecture, est.seed, est.multitask) == ("single", 3, False)


def test_the_top_level_help_shows_its_examples_one_a_line(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "mfgp fit measured.csv --target expt -o gaps.mfgp" in lines
    assert "mfgp predict gaps.mfgp formulas.csv -o predictions.csv" in lines
    assert not any("``" in line for line in lines)
