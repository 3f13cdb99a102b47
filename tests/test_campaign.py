"""Campaigns: suggest / observe / run on a SQLite store; killed at random moments, nothing lost."""

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import MultiFidelityRegressor
from mfgp.exceptions import (
    CampaignLockedError,
    InputDataError,
    NonFiniteValueError,
    PoolExtendedWarning,
    UnknownFidelityError,
)
from mfgp.featurize.composition import reduced_composition
from mfgp.loop import Budget, Campaign, Experiments, HitsFound, TableOracle

MODEL = dict(max_iter=10, max_fit_points=200, max_rows_per_fidelity=200)


@pytest.fixture(scope="module")
def world():
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].drop_duplicates("composition")
    pbe = df[df.fidelity == "pbe"].drop_duplicates("composition")
    both = expt[expt.composition.isin(pbe.composition)].sample(60, random_state=0)
    pbe = pbe[pbe.composition.isin(both.composition)]
    seed = both.iloc[:8]
    known = pd.concat([pbe.iloc[:30], seed], ignore_index=True)  # half the PBE is acquirable
    hidden = pd.concat([both, pbe], ignore_index=True)
    return both.formula.tolist(), known, hidden


def new(world, path, **kw):
    pool, known, _ = world
    options = dict(target="expt", costs={"pbe": 1.0, "expt": 20.0}, objective="learn",
                   data=known, store=path)  # fmt: skip
    options.update(kw)
    return Campaign(MultiFidelityRegressor("ar1", **MODEL), pool, **options)


def test_suggest_observe_status(world, tmp_path):
    pool, known, hidden = world
    with new(world, tmp_path / "c.db") as camp:
        batch = camp.suggest(3)
        assert list(batch.columns) == ["suggestion", "rank", "formula", "fidelity", "score",
                                       "mean", "std", "lower_90", "upper_90", "cost",
                                       "target_mean", "target_lower_90",
                                       "target_upper_90"]  # fmt: skip
        assert batch.attrs["score_units"]
        assert batch.formula.is_unique and len(batch) == 3  # one row per composition
        assert set(batch.fidelity) <= {"pbe", "expt"}
        assert (batch.score.diff().dropna() <= 1e-12).all() or len(batch) == 1
        # nothing already known is suggested
        seen = set(zip(known.formula, known.fidelity))
        assert not seen & set(zip(batch.formula, batch.fidelity))
        assert len(camp.pending()) == 3
        answers = TableOracle(hidden)(batch)
        camp.observe(answers)
        assert camp.pending().empty and camp.status()["acquired"] == 3
        assert camp.spent() == pytest.approx(batch.cost.sum())
        # a formula outside the pool joins it, and the campaign says so
        with pytest.warns(PoolExtendedWarning, match="NaCl"):
            camp.observe(pd.DataFrame({"formula": ["NaCl"], "fidelity": ["expt"],
                                       "value": [8.5]}))  # fmt: skip
        assert "NaCl" in camp.store.pool()


def test_bad_rows_are_named_and_leave_the_store_unchanged(world, tmp_path):
    with new(world, tmp_path / "c.db") as camp:
        before = camp.observations()
        bad = pd.DataFrame({"formula": ["Si", "GaAs"], "fidelity": ["expt", "expt"],
                            "value": [1.1, "n/a"]})  # fmt: skip
        with pytest.raises(NonFiniteValueError, match="row 1: value 'n/a' of 'GaAs'"):
            camp.observe(bad)
        with pytest.raises(InputDataError, match="row 0: fidelity 'hse' of 'Si'"):
            camp.observe(bad.assign(fidelity="hse", value=1.0))
        with pytest.raises(InputDataError, match="Xx"):
            camp.observe(pd.DataFrame({"formula": ["Si", "Fe2Xx3"], "fidelity": ["expt"] * 2,
                                       "value": [1.0, 2.0]}))  # fmt: skip
        assert camp.observations().equals(before)
    new(world, tmp_path / "c.db").close()  # the same campaign: reopened
    with pytest.raises(InputDataError, match=r"holds a different campaign .*\['costs'\]"):
        new(world, tmp_path / "c.db", costs={"pbe": 2.0, "expt": 20.0})
    (tmp_path / "empty.db").touch()  # e.g. a creation killed before its first commit
    with pytest.raises(InputDataError, match="holds no campaign"):
        Campaign.open(tmp_path / "empty.db")


def test_a_second_process_cannot_open_the_store(world, tmp_path):
    camp = new(world, tmp_path / "c.db")
    with pytest.raises(CampaignLockedError, match="open in another process"):
        Campaign.open(tmp_path / "c.db")
    camp.close()
    Campaign.open(tmp_path / "c.db").close()  # released


def test_fidelities_come_from_the_data_or_the_error_says_how(world, tmp_path):
    pool, known, _ = world
    plain = known.copy()
    plain.attrs = {}
    with pytest.raises(UnknownFidelityError, match=r"data has fidelities \['pbe'\].*fidelities="):
        Campaign(MultiFidelityRegressor("ar1", **MODEL), pool, costs={"expt": 20.0},
                 data=plain, store=tmp_path / "a.db")  # fmt: skip
    ordered = known.copy()
    ordered.attrs["fidelities"] = ["pbe", "expt"]
    with Campaign(MultiFidelityRegressor("ar1", **MODEL), pool, costs={"expt": 20.0},
                  data=ordered, store=tmp_path / "b.db") as camp:  # fmt: skip
        assert camp.fidelities == ["pbe", "expt"] and camp.target == "expt"


def test_stopping_conditions_compose(world, tmp_path):
    _, _, hidden = world
    with new(world, tmp_path / "c.db", costs={"expt": 20.0}, fidelities=["pbe", "expt"]) as camp:
        camp.run(TableOracle(hidden), Budget(60) | Experiments(10), q=2)
        assert camp.spent() == 60.0 and camp.status()["acquired"] == 3  # 2, then 1 fits in 60
        stop = Experiments(2) & HitsFound(100, 0.0, 100.0)
        assert not stop(camp) and (Experiments(2) | HitsFound(100, 0.0, 100.0))(camp)


def test_conditioning_between_refits_and_resume_give_the_same_suggestion(world, tmp_path):
    _, _, hidden = world
    oracle = TableOracle(hidden)
    camp = new(world, tmp_path / "c.db", refit_every=3)
    camp.observe(oracle(camp.suggest(2)))
    fitted_on = camp.model()[1]
    nxt = camp.suggest(2)
    assert camp.model()[1] == fitted_on  # conditioned on the two new rows, not refitted
    camp.store.cancel_pending()
    camp.close()
    again = Campaign.open(tmp_path / "c.db")  # from the checkpoint in the store
    nxt2 = again.suggest(2)
    assert nxt2[["formula", "fidelity"]].equals(nxt[["formula", "fidelity"]])
    assert np.array_equal(nxt2.score.to_numpy(), nxt.score.to_numpy())
    n = len(again.observations())
    assert again.model(refit=True)[1] == n > fitted_on  # forced: fitted on every row
    assert again.model()[1] == n  # and kept
    again.close()


def _campaign_child(store: str, data: str) -> None:
    """Run (or resume) a small campaign to its end: the process the kill test kills."""
    from pathlib import Path

    d = Path(data)
    pool = pd.read_csv(d / "pool.csv").formula.tolist()
    known, hidden = pd.read_csv(d / "known.csv"), pd.read_csv(d / "hidden.csv")
    # the same constructor creates the campaign or, when the store holds it, resumes it
    camp = Campaign(MultiFidelityRegressor("ar1", max_iter=5, max_fit_points=100), pool,
                    target="expt", costs={"pbe": 1.0, "expt": 4.0}, data=known, store=store,
                    refit_every=2)  # fmt: skip
    camp.run(TableOracle(hidden), Experiments(3), q=2)
    camp.close()


def _observations(store):
    from mfgp.loop.store import Store

    with Store(store) as s:
        return s.observations()[["formula", "fidelity", "value", "source", "suggestion"]]


def test_killed_at_random_moments_a_campaign_loses_nothing(world, tmp_path):
    import multiprocessing

    pool, known, hidden = world
    pd.DataFrame({"formula": pool}).to_csv(tmp_path / "pool.csv", index=False)
    known[["formula", "fidelity", "value"]].to_csv(tmp_path / "known.csv", index=False)
    hidden[["formula", "fidelity", "value"]].to_csv(tmp_path / "hidden.csv", index=False)
    # a fork server that has imported mfgp (and run no torch computation: fork-safe) starts
    # each campaign process in milliseconds
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.test_campaign", "mfgp.io", "safetensors.torch",
                                "torch._dynamo", "matminer"])  # what a run imports lazily

    def start(store):
        proc = ctx.Process(target=_campaign_child, args=(str(store), str(tmp_path)))
        proc.start()
        return proc

    def to_end(store):
        proc = start(store)
        proc.join(300)
        assert proc.exitcode == 0
        return _observations(store)

    to_end(tmp_path / "warmup.db")  # the fork server's start is not part of the timing
    t0 = time.perf_counter()
    reference = to_end(tmp_path / "reference.db")
    duration = time.perf_counter() - t0
    print(f"campaign run: {duration:.2f} s")
    assert (reference.source == "observed").sum() >= 3
    # each store is killed up to 3 times at random moments, the later kills in a run that is
    # itself resuming (the recovery path), then resumed to its end: as many kills as 20
    # stores killed once, in about half the runs
    g = np.random.default_rng(0)
    killed = [0, 0, 0]  # by attempt: a fresh run, then runs that resume
    for trial in range(7):
        store = tmp_path / f"trial{trial}.db"
        for attempt in range(3):
            proc = start(store)
            proc.join(g.uniform(0.0, duration))  # returns early once the run has ended
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                killed[attempt] += 1
            proc.join()
        pd.testing.assert_frame_equal(to_end(store), reference)  # resumed: nothing lost
    print(f"kills by attempt: {killed}")
    # the kills landed mid-run, some of them mid-recovery (14-15 here, half of them in resuming
    # runs; the bound leaves room for a reference run slower than the trials on a busy machine)
    assert sum(killed) >= 9 and killed[1] + killed[2] >= 2, killed


def test_the_command_line_runs_a_campaign(world, tmp_path, capsys):
    from mfgp.cli import main

    pool, known, hidden = world
    pd.DataFrame({"formula": pool}).to_csv(tmp_path / "pool.csv", index=False)
    known[["formula", "fidelity", "value"]].to_csv(tmp_path / "known.csv", index=False)
    store = str(tmp_path / "cli.db")
    assert main(["campaign", "init", store, "--pool", str(tmp_path / "pool.csv"), "--data",
                 str(tmp_path / "known.csv"), "--cost", "pbe=1", "--cost", "expt=50"]) == 0
    assert main(["campaign", "suggest", store, "-q", "2", "--output",
                 str(tmp_path / "batch.csv")]) == 0  # fmt: skip
    batch = pd.read_csv(tmp_path / "batch.csv")
    assert len(batch) == 2
    TableOracle(hidden)(batch)[["formula", "fidelity", "value"]].to_csv(
        tmp_path / "results.csv", index=False)  # fmt: skip
    assert main(["campaign", "observe", store, "--results", str(tmp_path / "results.csv")]) == 0
    capsys.readouterr()
    assert main(["campaign", "status", store, "--json"]) == 0  # the machine form
    assert '"acquired": 2' in capsys.readouterr().out
    assert main(["campaign", "status", store]) == 0  # issue 37: a table a person reads
    out = capsys.readouterr().out
    assert out.startswith(f"campaign {store}\n") and "{" not in out.splitlines()[1]
    for label in ("  pbe", "  expt", "acquired by the campaign", "cost spent",
                  "pending suggestions", "rounds", "best target value", "objective"):
        assert label in out, label
    assert [ln.split()[-1] for ln in out.splitlines() if "acquired by" in ln] == ["2"]
    pd.DataFrame({"formula": ["Si"], "fidelity": ["hse"], "value": [1.0]}).to_csv(
        tmp_path / "bad.csv", index=False)  # fmt: skip
    assert main(["campaign", "observe", store, "--results", str(tmp_path / "bad.csv")]) == 2
    assert "fidelity 'hse'" in capsys.readouterr().err


def test_history_and_plots_show_the_campaign(world, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfgp.loop.plots import history

    pool, known, hidden = world
    with new(world, tmp_path / "w.db", objective="window",
             objective_options={"lo": 1.0, "hi": 2.5}) as camp:  # fmt: skip
        camp.run(TableOracle(hidden), Experiments(6), q=3)
        h = camp.history()
        acquired = camp.observations().query("source == 'observed'")
        assert len(h) == len(acquired) and h.experiments.iloc[-1] == 6
        inside = acquired[(acquired.fidelity == "expt") & acquired.value.between(1.0, 2.5)]
        assert h.hits.iloc[-1] == len(inside)
        assert h.cost.iloc[-1] == pytest.approx(camp.spent())
        assert np.allclose(h.best.to_numpy()[h.experiments.to_numpy() > 0].max(),
                           acquired[acquired.fidelity == "expt"].value.max())  # fmt: skip
        fig, ax = camp.plot_progress(metric="hits", baselines={"random": h.assign(hits=0)})
        assert len(ax.get_lines()) == 2 and "hits in [1, 2.5]" in ax.get_ylabel()
        with pytest.raises(InputDataError, match="metric must be one of"):
            camp.plot_progress(metric="mae")
        batch = camp.suggest(2)
        fig2, ax2 = camp.plot_suggestions(batch)
        obs = camp.observations()
        with_pbe = set(reduced_composition(obs[obs.fidelity == "pbe"].formula.tolist()))
        on_map = batch[[c in with_pbe for c in reduced_composition(batch.formula.tolist())]]
        # every suggested row is drawn, those without a PBE value too (in a strip at the left)
        stars = [ln for ln in ax2.get_lines() if ln.get_label().startswith("suggested")]
        assert sum(len(ln.get_xdata()) for ln in stars) == len(batch)
        off = len(batch) - len(on_map)
        assert (f"{off} without a pbe value" in ax2.get_title()) == (off > 0)
        ranks = [t.get_text() for t in ax2.texts if t.get_text() != "no pbe value"]
        assert ranks == [str(r) for r in batch["rank"]]
        plt.close("all")
    # a minimising objective's best is the lowest value so far
    frame = pd.DataFrame({"source": ["observed"] * 3, "formula": ["A", "B", "C"],
                          "fidelity": ["expt", "pbe", "expt"], "value": [2.0, -5.0, 1.0]})
    low = history(frame, "expt", {"expt": 10.0, "pbe": 1.0}, maximize=False)
    assert low.best.tolist() == [2.0, 2.0, 1.0] and low.cost.tolist() == [10.0, 11.0, 21.0]


def test_max_value_entropy_campaign_mixes_fidelities_by_cost(world, tmp_path):
    pool, known, hidden = world
    with new(world, tmp_path / "m.db", objective="mes",
             costs={"pbe": 1.0, "expt": 1000.0}) as camp:  # fmt: skip
        batch = camp.suggest(3)
        assert len(batch) == 3 and (batch.score > 0).all()
        assert "pbe" in set(batch.fidelity)  # a 1000x dearer experiment rarely wins
