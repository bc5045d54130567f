"""The field's yardsticks on small series whose answers are known by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from envs.electricity.metrics import (
    daily_loss_differential,
    diebold_mariano,
    dm_tests,
    mae,
    mse,
    point_metrics,
    rmae,
    rmse,
    smape,
)


def test_point_metrics_by_hand():
    """MSE, RMSE, MAE, sMAPE (%) and rMAE on four hours, one of them without an actual value."""
    actual = np.array([10.0, 20.0, np.nan, 40.0])
    forecast = np.array([12.0, 17.0, 99.0, 40.0])
    naive = np.array([14.0, 20.0, 0.0, 34.0])
    assert mse(actual, forecast) == pytest.approx((4 + 9 + 0) / 3)
    assert rmse(actual, forecast) == pytest.approx(math.sqrt(13 / 3))
    assert mae(actual, forecast) == pytest.approx(5 / 3)
    expected = 100 * (2 * 2 / 22 + 2 * 3 / 37 + 0) / 3
    assert smape(actual, forecast) == pytest.approx(expected)
    assert rmae(actual, forecast, naive) == pytest.approx((5 / 3) / (10 / 3))
    assert rmae(actual, naive, naive) == 1.0
    assert math.isnan(rmae(actual, actual, actual))  # an exact naive forecast: no scale
    # sMAPE: a term with y = ŷ = 0 counts 0, a sign flip counts the maximum 200 %
    assert smape(np.array([0.0, 1.0]), np.array([0.0, -1.0])) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        mse(actual, forecast[:3])


def test_point_metrics_table():
    """metric → forecaster → value, rMAE of the naive forecast itself 1."""
    predictions = pd.DataFrame(
        {
            "actual": [1.0, 2.0, 3.0, 4.0],
            "a": [1.0, 2.0, 3.0, 5.0],
            "naive_week": [2.0, 2.0, 2.0, 2.0],
        }
    )
    out = point_metrics(predictions, ["a", "naive_week"])
    assert set(out) == {"mse", "mae", "rmse", "smape", "rmae"}
    assert out["mse"]["a"] == pytest.approx(0.25)
    assert out["mae"]["naive_week"] == pytest.approx(1.0)
    assert out["rmae"]["naive_week"] == 1.0
    assert out["rmae"]["a"] == pytest.approx(0.25)


def test_daily_loss_differential_averages_each_days_hours():
    """The differential of a day is the mean over its own hours (23, 24 or 25 of them), hours
    without an actual value left out."""
    days = np.array(["d1"] * 3 + ["d2"] * 2)
    actual = np.array([0.0, 0.0, 0.0, 1.0, np.nan])
    first = np.array([1.0, 2.0, 3.0, 1.0, 5.0])
    second = np.array([0.0, 0.0, 0.0, 3.0, 0.0])
    sq = daily_loss_differential(actual, first, second, days, "squared")
    assert sq.to_dict() == pytest.approx({"d1": (1 + 4 + 9) / 3, "d2": -4.0})
    ab = daily_loss_differential(actual, first, second, days, "absolute")
    assert ab.to_dict() == pytest.approx({"d1": 2.0, "d2": -2.0})
    with pytest.raises(ValueError):
        daily_loss_differential(actual, first, second, days, "pinball")


def test_dm_statistic_by_hand():
    """d = (1, 2, 3): DM = 2 / sqrt((2/3)/3) = 3√2, the first forecast worse."""
    test = diebold_mariano(np.array([1.0, 2.0, 3.0]))
    assert test.statistic == pytest.approx(3 * math.sqrt(2))
    assert test.p_first_better == pytest.approx(norm.cdf(3 * math.sqrt(2)))
    assert test.p_second_better == pytest.approx(norm.sf(3 * math.sqrt(2)))
    assert test.p_first_better + test.p_second_better == pytest.approx(1.0)
    assert (test.days, test.mean_differential) == (3, 2.0)


def test_dm_degenerate_cases():
    """Identical forecasts: DM = 0, no evidence either way; a constant nonzero differential:
    DM = ±inf; fewer than two days: undefined (None in JSON)."""
    same = diebold_mariano(np.zeros(10))
    assert (same.statistic, same.p_first_better, same.p_second_better) == (0.0, 0.5, 0.5)
    better = diebold_mariano(np.full(5, -0.3))
    assert better.statistic == -math.inf
    assert (better.p_first_better, better.p_second_better) == (0.0, 1.0)  # first: significant
    one = diebold_mariano(np.array([1.0]))
    assert math.isnan(one.statistic) and math.isnan(one.p_first_better)
    as_json = one.as_dict("model", "other")
    assert as_json["statistic"] is None and as_json["p_model_better"] is None
    assert better.as_dict("model", "other")["statistic"] is None


def test_dm_strictly_better_every_day_is_significant():
    """A forecast closer to the truth on every day (by varying margins) is significantly more
    accurate, in both losses; the test is antisymmetric in its two forecasts."""
    rng = np.random.default_rng(0)
    days = np.repeat([f"2016-06-{d:02d}" for d in range(1, 31)], 24)
    actual = 50 + rng.normal(0, 5, days.size)
    noise = rng.normal(0, 1, days.size)
    good = actual + noise
    bad = actual + 3 * noise + rng.choice([-2.0, 2.0], days.size)
    predictions = pd.DataFrame({"date": days, "actual": actual, "model": good, "other": bad})
    for kind, result in dm_tests(predictions, "model", ["model", "other"]).items():
        assert set(result) == {"other"}  # the model is not tested against itself
        test = result["other"]
        assert test["p_model_better"] < 1e-6 and test["p_other_better"] > 1 - 1e-6, kind
        assert test["days"] == 30 and test["statistic"] < 0
        back = dm_tests(predictions, "other", ["model"], [kind])[kind]["model"]
        assert back["statistic"] == pytest.approx(-test["statistic"])
        assert back["p_other_better"] == pytest.approx(test["p_model_better"])
    same = predictions.assign(other=good)
    tie = dm_tests(same, "model", ["other"])["squared"]["other"]
    assert tie["statistic"] == 0.0 and tie["p_model_better"] == 0.5
