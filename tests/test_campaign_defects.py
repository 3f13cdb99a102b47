"""The review's campaign defects (issue 33), each held by a test that failed before the fix.

A hurdle campaign reports and ranks on the gap's own scale; conditioning keeps known noise;
stopping conditions are never overspent; ``PredictiveChange`` fires only on a real change;
``logei`` is reproducible; window batches are not clustered by fantasies; the smaller points.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mfgp.acquisition.select import fantasize
from mfgp.calibration import GaussianPredictive
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.exceptions import InputDataError
from mfgp.loop import Budget, Campaign, Experiments, PredictiveChange, TableOracle

FAST = dict(max_iter=10, max_fit_points=200, max_rows_per_fidelity=200, progress=False)
WINDOW = {"lo": 1.1, "hi": 1.7}


@pytest.fixture(scope="module")
def world():
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].drop_duplicates("composition")
    pbe = df[df.fidelity == "pbe"].drop_duplicates("composition")
    both = expt[expt.composition.isin(pbe.composition)].sample(60, random_state=1)
    pbe = pbe[pbe.composition.isin(both.composition)]
    metals = both[both.value == 0].iloc[:5]
    gaps = both[both.value > 0].iloc[:5]
    seed = pd.concat([metals, gaps])
    known = pd.concat([pbe.iloc[:30], seed], ignore_index=True)
    known.attrs["fidelities"] = ["pbe", "expt"]
    hidden = pd.concat([both, pbe], ignore_index=True)
    return both.formula.tolist(), known, hidden


def hurdle():
    return HurdleRegressor("ar1", latent=False, regressor_options=FAST,
                           classifier_options={"epochs": 5, "num_inducing": 30},
                           progress=False)  # fmt: skip


def campaign(world, path, model=None, **kw):
    pool, known, _ = world
    options = dict(target="expt", costs={"pbe": 1.0, "expt": 20.0}, objective="learn",
                   data=known, store=path)  # fmt: skip
    options.update(kw)
    return Campaign(model or MultiFidelityRegressor("ar1", **FAST), pool, **options)


# -- 1, 2: a hurdle campaign on the gap's own scale, with fresh probabilities --------------------
@pytest.mark.parametrize("objective", ["window", "ucb", "greedy", "std"])
def test_a_hurdle_campaign_reports_and_ranks_on_the_gap_scale(world, tmp_path, objective):
    with campaign(world, tmp_path / "h.db", hurdle(), objective=objective,
                  objective_options=WINDOW if objective == "window" else None) as camp:
        batch = camp.suggest(4)
        est, _ = camp.model()
        pred = est.predictive(batch.formula.tolist(), recalibrated=False)
        # the table is the hurdle's own predictive: point mass at zero included
        assert (batch.lower_90 >= 0).all()
        np.testing.assert_allclose(batch["mean"], pred.mean(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(batch["upper_90"], pred.ppf(0.95), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(batch["target_mean"], pred.mean(), rtol=1e-6, atol=1e-9)
        first = batch.iloc[0]
        want = {"window": pred.probability_between(1.1, 1.7)[0],
                "ucb": pred.mean()[0] + 2.0 * pred.std()[0],
                "greedy": pred.mean()[0], "std": pred.std()[0]}[objective]
        assert first.score == pytest.approx(want, rel=1e-6)


def test_hurdle_information_objectives_that_need_a_gaussian_are_refused(world, tmp_path):
    for objective in ("kg", "mes", "logei"):  # refused before anything is fitted
        with pytest.raises(InputDataError, match="point mass at zero"):
            campaign(world, tmp_path / f"{objective}.db", hurdle(), objective=objective)
        assert not (tmp_path / f"{objective}.db").exists()


def test_hurdle_window_probabilities_come_from_the_conditioned_model(world, tmp_path):
    pool, known, hidden = world
    with campaign(world, tmp_path / "h.db", hurdle(), objective="window",
                  objective_options=WINDOW, refit_every=1000) as camp:
        camp.suggest(1)
        camp.store.cancel_pending()
        est, n_fit = camp.model()
        # a few new PBE values and two new experiments (a metal and a gap), since the fit
        oracle = TableOracle(hidden)
        pbe_known = set(known[known.fidelity == "pbe"].formula)
        news = [f for f in pool if f not in pbe_known][:6]
        taken = set(known.formula)
        expt = hidden[(hidden.fidelity == "expt") & ~hidden.formula.isin(taken)]
        two = [expt[expt.value == 0].formula.iloc[0], expt[expt.value > 0].formula.iloc[0]]
        new = oracle(pd.DataFrame({"formula": news + two,
                                   "fidelity": ["pbe"] * len(news) + ["expt"] * 2}))
        camp.observe(new)
        assert camp.model()[1] == n_fit  # no refit: conditioned
        batch = camp.suggest(3)
        fresh = est.surrogate().conditioned(new).predictive(batch.formula.tolist())
        stale = est.predictive(batch.formula.tolist(), recalibrated=False)
        np.testing.assert_allclose(batch.score, fresh.probability_between(1.1, 1.7), rtol=1e-6)
        assert not np.allclose(batch.score, stale.probability_between(1.1, 1.7), rtol=1e-3)
        # an observed experiment settles P(metal) there: 1 for the metal, 0 for the gap
        sur = est.surrogate().conditioned(new)
        np.testing.assert_array_equal(sur.p_metal(two), [1.0, 0.0])


def test_a_lower_fidelity_row_of_a_hurdle_shows_the_gap_and_the_experiment_forecast(world,
                                                                                     tmp_path):
    with campaign(world, tmp_path / "h.db", hurdle(), objective="learn",
                  costs={"pbe": 0.01, "expt": 20.0}) as camp:
        batch = camp.suggest(4)
        low = batch[batch.fidelity == "pbe"]
        assert len(low), batch
        assert (low.lower_90 >= 0).all() and (low.upper_90 > low.lower_90).all()
        assert batch[["target_mean", "target_lower_90", "target_upper_90"]].notna().all().all()
        assert (batch.target_lower_90 >= 0).all()


# -- 3: known noise ------------------------------------------------------------------------------
def test_a_fantasy_on_a_known_noise_model_takes_its_fidelitys_noise(world):
    _, known, _ = world
    df = known.assign(noise=np.where(known.fidelity == "pbe", 0.25, 0.01))
    reg = MultiFidelityRegressor("ar1", **FAST).fit(df, noise_col="noise")
    X = reg.dataset_.inputs_for(["NaCl"], "expt")
    Y = torch.tensor([[5.0]], dtype=X.dtype)
    got = fantasize(reg.model_, X, Y)
    want = reg.model_.conditioned_on(X, Y, torch.tensor([[0.01]], dtype=X.dtype))
    sd_got = got.posterior(X).variance.sqrt().item()
    sd_want = want.posterior(X).variance.sqrt().item()
    assert sd_got == pytest.approx(sd_want, rel=1e-6)


def test_new_observations_condition_with_their_known_noise(world):
    _, known, _ = world
    df = known.assign(noise=np.where(known.fidelity == "pbe", 0.04, 0.04))
    reg = MultiFidelityRegressor("ar1", **FAST).fit(df, noise_col="noise")
    sur = reg.surrogate()
    row = pd.DataFrame({"formula": ["NaCl"], "fidelity": ["expt"], "value": [8.0]})
    precise = sur.conditioned(row.assign(noise=1e-6)).predictive(["NaCl"])
    vague = sur.conditioned(row.assign(noise=4.0)).predictive(["NaCl"])
    assert abs(precise.mean()[0] - 8.0) < abs(vague.mean()[0] - 8.0)
    assert precise.std()[0] < vague.std()[0]


def test_a_campaign_keeps_noise_for_all_rows_or_none(world, tmp_path):
    _, known, _ = world
    noisy = known.assign(noise=0.04)
    with campaign(world, tmp_path / "n.db", data=noisy) as camp:
        with pytest.raises(InputDataError, match="has no noise"):
            camp.observe(pd.DataFrame({"formula": ["NaCl"], "fidelity": ["expt"],
                                       "value": [8.5]}))  # fmt: skip
    with pytest.raises(InputDataError, match="no noise while other rows do"):
        campaign(world, tmp_path / "m.db", data=known.assign(
            noise=np.where(known.fidelity == "pbe", 0.04, np.nan)))


# -- 4: stopping conditions ----------------------------------------------------------------------
def test_pending_suggestions_do_not_overspend_a_budget(world, tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "b.db", objective="std") as camp:
        camp.suggest(5)  # 5 experiments at 20 = 100 pending
        camp.run(TableOracle(hidden), Budget(40))
        assert camp.spent() <= 40
        assert camp.spent() == 40


def test_both_conditions_stop_where_both_hold(world, tmp_path):
    _, _, hidden = world
    for stop, n in ((Budget(60) & Experiments(2), 3), (Experiments(2) & Budget(20), 2)):
        with campaign(world, tmp_path / f"{n}.db", objective="std") as camp:
            camp.run(TableOracle(hidden), stop, q=4)
            assert camp.status()["acquired"] == n, stop


def test_pending_rows_that_no_longer_fit_are_cancelled_and_the_budget_is_used(world,
                                                                             tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "p.db") as camp:
        camp.suggest(3, max_count={"pbe": 0})  # three experiments: 60
        camp.run(TableOracle(hidden), Budget(50), q=2)
        assert camp.spent() == 50
        sugg = camp.store.suggestions()
        assert (sugg.status == "cancelled").sum() == 1


def test_a_store_that_fails_to_load_is_closed(world, tmp_path):
    from mfgp.loop.store import Store

    with campaign(world, tmp_path / "x.db") as camp:
        pass
    with Store(tmp_path / "x.db") as store:
        config = store.get("config")
        store.set("config", {**config, "objective": {"name": "nope"}})
    for _ in range(2):  # the second open is not told the store is locked
        with pytest.raises(InputDataError, match="unknown objective 'nope'"):
            Campaign.open(tmp_path / "x.db")
    assert camp is not None


def test_the_first_observations_give_noise_for_all_rows_or_none(world, tmp_path):
    pool, _, _ = world
    with Campaign(MultiFidelityRegressor("ar1", **FAST), pool, target="expt",
                  costs={"pbe": 1.0, "expt": 20.0}, store=tmp_path / "f.db") as camp:
        rows = pd.DataFrame({"formula": pool[:2], "fidelity": ["pbe", "expt"],
                             "value": [1.0, 2.0], "noise": [0.01, np.nan]})  # fmt: skip
        with pytest.raises(InputDataError, match="row 1: .* has no noise while other rows do"):
            camp.observe(rows)
        assert camp.observations().empty


def test_either_condition_caps_the_batch(world, tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "e.db", objective="std",
                  costs={"pbe": 1.0, "expt": 100.0}) as camp:
        camp.run(TableOracle(hidden), Budget(10000) | Experiments(2), q=4)
        assert camp.status()["acquired"] == 2 and camp.spent() == 200
    with campaign(world, tmp_path / "f.db", objective="learn",
                  costs={"pbe": 1.0, "expt": 500.0}) as camp:
        camp.run(TableOracle(hidden), Budget(1200) | Experiments(2), q=4)
        assert camp.spent() <= 1200 and camp.status()["observations"]["expt"] - 10 <= 2


def test_a_budget_is_used_while_an_affordable_row_is_left(world, tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "c.db", costs={"pbe": 2.0, "expt": 3.0}) as camp:
        camp.run(TableOracle(hidden), Budget(58), q=4)
        left = 58 - camp.spent()
        assert 0 <= left < 2  # the cheapest row no longer fits


# -- 5: PredictiveChange -------------------------------------------------------------------------
def test_predictive_change_fires_only_after_new_observations(world, tmp_path):
    _, _, hidden = world
    stop = PredictiveChange(1e-3)
    with campaign(world, tmp_path / "p.db", objective="std", reference_size=20) as camp:
        camp.suggest(1)
        camp.store.cancel_pending()
        camp.suggest(1)  # nothing observed in between: no change recorded
        assert not stop(camp)
        reference = camp.reference()
        with pytest.warns(Warning, match="added"):
            camp.observe(pd.DataFrame({"formula": ["NaCl"], "fidelity": ["expt"],
                                       "value": [8.5]}))  # fmt: skip
        camp.store.cancel_pending()
        camp.suggest(1)  # an observation outside the pool: no error, the reference is fixed
        assert camp.reference() == reference
        assert PredictiveChange(100.0)(camp)  # two records with different observations
        history = camp.store.get("reference_means")
        assert len(history) == 2 and len(history[0]["means"]) == len(history[1]["means"]) == 20


# -- 6: logei ------------------------------------------------------------------------------------
def test_logei_gives_the_same_suggestion_twice(world, tmp_path):
    batches = []
    for name in ("a.db", "b.db"):
        with campaign(world, tmp_path / name, objective="logei") as camp:
            batches.append(camp.suggest(3))
    a, b = batches
    assert a.formula.tolist() == b.formula.tolist()
    np.testing.assert_array_equal(a.score.to_numpy(), b.score.to_numpy())


# -- 7: window batches are the most probable rows --------------------------------------------------
def test_a_window_batch_is_the_most_probable_rows(world, tmp_path):
    with campaign(world, tmp_path / "w.db", objective="window",
                  objective_options={"lo": 0.8, "hi": 2.0}) as camp:
        batch = camp.suggest(12)
        est, _ = camp.model()
        pool = camp.store.pool()
        taken = set(camp.observations().query("fidelity == 'expt'").formula)
        free = [f for f in pool if f not in taken]
        mean, std = est.predict(free, True, observation_noise=True)
        p = GaussianPredictive(mean, std).probability_between(0.8, 2.0)
        top = [free[i] for i in np.argsort(-p)[:12]]
        assert sorted(batch.formula) == sorted(top)


# -- 8: the smaller points -----------------------------------------------------------------------
def test_checkpoints_are_pruned_and_the_seed_seeds_the_model(world, tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "k.db", objective="std", seed=7) as camp:
        camp.run(TableOracle(hidden), Experiments(4), q=1)
        assert camp.store.db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] <= 2
        assert camp.model()[0].seed == 7


def test_status_best_agrees_with_history(world, tmp_path):
    _, _, hidden = world
    with campaign(world, tmp_path / "s.db", objective="greedy",
                  objective_options={"maximize": False}) as camp:
        camp.run(TableOracle(hidden), Experiments(3), q=1)
        assert camp.status()["best"] == pytest.approx(camp.history()["best"].iloc[-1])


def test_the_latent_architecture_is_refused_with_the_reason(world, tmp_path):
    with pytest.raises(InputDataError, match="answers the target at every fidelity"):
        campaign(world, tmp_path / "l.db", MultiFidelityRegressor("latent", **FAST))


def test_no_warning_for_pool_formulas(world, tmp_path):
    pool, _, hidden = world
    with campaign(world, tmp_path / "o.db") as camp:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            camp.observe(TableOracle(hidden)(pd.DataFrame({"formula": pool[:1],
                                                           "fidelity": ["expt"]})))


def test_a_file_that_is_not_a_store_gets_one_line_and_no_lock_file(world, tmp_path):
    from mfgp.exceptions import SerializationError

    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(SerializationError, match="is not a campaign store"):
        Campaign.open(path)
    assert not (tmp_path / "notes.db.lock").exists()
    assert path.read_text().startswith("these are my notes")


def test_a_failed_creation_leaves_no_store_and_no_lock(world, tmp_path):
    with pytest.raises(InputDataError, match="cost"):
        campaign(world, tmp_path / "bad.db", costs={"pbe": -1.0, "expt": 20.0})
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_plans_with_the_hurdle(world, tmp_path, capsys):
    from mfgp.cli import main

    pool, known, _ = world
    pd.DataFrame({"formula": pool}).to_csv(tmp_path / "pool.csv", index=False)
    known[["formula", "fidelity", "value"]].to_csv(tmp_path / "known.csv", index=False)
    store = str(tmp_path / "cli.db")
    assert main(["campaign", "init", store, "--model", "hurdle", "--pool",
                 str(tmp_path / "pool.csv"), "--data", str(tmp_path / "known.csv"),
                 "--cost", "pbe=1", "--cost", "expt=50", "--objective", "window",
                 "--objective-options", '{"lo": 1.1, "hi": 1.7}']) == 0  # fmt: skip
    assert main(["campaign", "suggest", store, "-q", "2", "--output",
                 str(tmp_path / "batch.csv")]) == 0  # fmt: skip
    batch = pd.read_csv(tmp_path / "batch.csv")
    assert len(batch) == 2 and (batch.lower_90 >= 0).all() and (batch.fidelity == "expt").all()
    with Campaign.open(store) as camp:
        assert camp.config["model"] == "HurdleRegressor"
        assert camp.config["params"]["multitask"] == "auto"
    # the hurdle's classifier choice is the user's (issue #33: multi-task with few labels)
    other = str(tmp_path / "single.db")
    assert main(["campaign", "init", other, "--model", "hurdle", "--multitask", "no", "--pool",
                 str(tmp_path / "pool.csv"), "--cost", "pbe=1", "--cost", "expt=50"]) == 0
    with Campaign.open(other) as camp:
        assert camp.config["params"]["multitask"] is False


def test_a_hurdle_with_one_nonzero_target_says_what_to_measure(world):
    _, known, _ = world
    expt = known[known.fidelity == "expt"]
    one = pd.concat([known[known.fidelity == "pbe"], expt[expt.value == 0],
                     expt[expt.value > 0].iloc[:1]])  # fmt: skip
    with pytest.raises(InputDataError, match="at least 2 nonzero 'expt' values; the data have 1"):
        hurdle().fit(one)


def test_learn_on_a_hurdle_scores_variance_in_the_gaps_units(world, tmp_path):
    with campaign(world, tmp_path / "l.db", hurdle(), objective="learn") as camp:
        batch = camp.suggest(2)
        assert "gap's units squared" in batch.attrs["score_units"]
        est, _ = camp.model()
        sur = est.surrogate()
        ref = camp.reference()[:7]
        g = sur.predictive(ref)  # the mixture, to read P(metal)
        mean_g = est.regressor_.predict(ref)
        want = (1.0 - g.weight) / (1.0 + np.exp(-mean_g)) ** 2
        np.testing.assert_allclose(sur.reference_weights(ref), want, rtol=1e-6)


def test_pending_experiments_join_the_logei_baseline(world):
    """A pending experiment counts as done at its believed value for logei (review of #33:
    the model was conditioned on it but the baseline ignored it)."""
    pool, known, _ = world
    est = MultiFidelityRegressor("ar1", **FAST).fit(known)
    sur = est.surrogate()
    taken = set(known.formula)
    todo = [f for f in pool if f not in taken][:3]
    pending = pd.DataFrame({"formula": todo, "fidelity": ["expt", "expt", "pbe"]})
    after = sur.conditioned(pending=pending)
    assert after.baseline().shape[0] == sur.baseline().shape[0] + 2  # the two experiments
