import numpy as np
import pytest

from mfgp.calibration import brier_score, classification_scores, reliability_curve
from mfgp.exceptions import InputDataError


def test_scores_on_known_values():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.6, 0.3])
    assert brier_score(y, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.09) / 4)
    s = classification_scores(y, p)
    assert s["roc_auc"] == 1.0 and s["accuracy"] == 1.0 and s["base_rate"] == 0.5
    assert s["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.7])))


def test_reliability_curve_of_a_calibrated_and_an_overconfident_classifier():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    curve = reliability_curve(y, p, n_bins=10)
    assert np.abs(curve["observed_frequency"] - curve["mean_predicted"]).max() < 0.03
    assert curve["count"].sum() == p.size
    sharp = np.where(p > 0.5, 0.99, 0.01)  # same ranking, over-confident
    over = reliability_curve(y, sharp, n_bins=10)
    assert np.abs(over["observed_frequency"] - over["mean_predicted"]).max() > 0.2
    assert brier_score(y, sharp) > brier_score(y, p)


def test_bad_inputs_name_the_row():
    with pytest.raises(InputDataError, match="row 1 is 2.0"):
        brier_score([0, 2], [0.5, 0.5])
    with pytest.raises(InputDataError, match="row 0 is 1.5"):
        brier_score([0, 1], [1.5, 0.5])
