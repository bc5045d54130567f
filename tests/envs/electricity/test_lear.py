"""LEAR: its transformation, inputs, windows, calibration, and the day-ahead rules."""

import numpy as np
import pandas as pd
import pytest
import torch
from statsmodels.robust import mad

from envs.electricity import ElectricityMarket
from envs.electricity.data import (
    ALLOWED_AHEAD,
    PRICE,
    forbidden_columns,
    load_energy_csv,
    resolve_data_path,
)
from envs.electricity.features import history_view
from envs.electricity.forecast import forecast_all
from envs.electricity.lear import (
    ENSEMBLE,
    AsinhMedianScaler,
    DailyData,
    daily_data,
    design,
    fit_predict,
    forecast_lear,
    input_names,
    windows_that_fit,
)
from imitgame.errors import ImitgameError


@pytest.fixture(scope="module")
def spain() -> pd.DataFrame:
    return load_energy_csv(resolve_data_path("spain"))


def test_scaler_is_asinh_of_median_and_normalised_mad():
    """The scale is statsmodels' normalised MAD (MAD / 0.6745, epftoolbox's "Invariant" scaler);
    the inverse undoes the transform; a column with zero MAD falls back to its standard
    deviation, a constant one to 1."""
    rng = np.random.default_rng(0)
    data = np.column_stack(
        [
            rng.lognormal(3, 0.5, 200),
            np.r_[np.zeros(150), rng.normal(size=50)],  # MAD 0
            np.full(200, 7.0),  # constant
        ]
    )
    scaler = AsinhMedianScaler.fit(data)
    np.testing.assert_allclose(scaler.median, np.median(data, axis=0))
    assert scaler.scale[0] == pytest.approx(mad(data[:, 0]))
    assert scaler.scale[1] == pytest.approx(data[:, 1].std())
    assert scaler.scale[2] == 1.0
    z = scaler.transform(data)
    np.testing.assert_allclose(
        z[:, 0], np.arcsinh((data[:, 0] - scaler.median[0]) / mad(data[:, 0]))
    )
    np.testing.assert_allclose(z[:, 2], 0.0)
    np.testing.assert_allclose(scaler.inverse(z), data, rtol=1e-12, atol=1e-9)


def test_design_columns():
    """Prices of D−1, D−2, D−3, D−7; each exogenous series at D, D−1, D−7; weekday indicators."""
    t = 10
    dates = pd.date_range("2016-06-01", periods=t, freq="D")  # a Wednesday
    hours = np.arange(24)
    price = 1000.0 * np.arange(t)[:, None] + hours  # day i, hour h → 1000 i + h
    exog = np.stack([price + 0.5, price + 0.25])
    data = DailyData(dates, price, exog)
    x = design(data, np.array([8, 9]))
    assert x.shape == (2, 96 + 2 * 72 + 7) == (2, len(input_names(["a", "b"])))
    row = x[1]  # day 9
    for block, lag in enumerate((1, 2, 3, 7)):
        np.testing.assert_array_equal(row[24 * block : 24 * (block + 1)], price[9 - lag])
    for series, shift in enumerate((0.5, 0.25)):
        for block, lag in enumerate((0, 1, 7)):
            first = 96 + 72 * series + 24 * block
            np.testing.assert_array_equal(row[first : first + 24], price[9 - lag] + shift)
    assert dates[9].weekday() == 4  # Friday
    np.testing.assert_array_equal(row[-7:], np.eye(7)[4])
    with pytest.raises(ValueError):
        design(data, np.array([6]))
    names = input_names()
    assert names[0] == "P[D-1,h0]" and names[96] == f"{ALLOWED_AHEAD[0]}[D-0,h0]"
    assert names[-7:] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_windows_that_fit_the_history():
    """With 517 days before 2016-06-01 (the README's summer split) the 56-, 84- and 364-day
    windows fit; 728 and 1092 need 735 and 1099 days."""
    usable, skipped = windows_that_fit(
        (1092, 56, 84, 364, 728, 56), 517, pd.Timestamp("2016-06-01")
    )
    assert usable == [56, 84, 364]
    assert set(skipped) == {728, 1092}
    assert "needs 735 days of history before 2016-06-01" in skipped[728]
    assert "517 available" in skipped[1092]
    assert windows_that_fit([364], 371)[0] == [364] and windows_that_fit([364], 370)[0] == []
    with pytest.raises(ImitgameError):
        windows_that_fit([3], 100)


def test_fit_predict_learns_a_sparse_law():
    """Prices that follow yesterday's price at the same hour and D's first exogenous series (plus
    small noise): LEAR's forecasts of held-out days are far closer than the naive forecasts."""
    rng = np.random.default_rng(1)
    t = 140
    dates = pd.date_range("2016-01-01", periods=t, freq="D")
    load = 30 + 5 * rng.standard_normal((t, 24))
    price = np.empty((t, 24))
    price[:7] = 40 + rng.standard_normal((7, 24))
    for i in range(7, t):
        price[i] = 0.5 * price[i - 1] + 1.5 * load[i] - 15 + 0.1 * rng.standard_normal(24)
    data = DailyData(dates, price, load[None])
    errors, naive = [], []
    for last in range(t - 5, t):
        rows = np.arange(last - 84, last)
        forecast = fit_predict(design(data, rows), price[rows], design(data, np.array([last]))[0])
        errors.append(np.abs(forecast - price[last]).mean())
        naive.append(np.abs(price[last - 7] - price[last]).mean())
    assert np.mean(errors) < 0.1 * np.mean(naive)


def test_lear_reads_only_what_is_known_at_midnight(spain):
    """Day D's forecast changes with D's day-ahead forecasts and D−1's prices, never with D's
    prices, actual load or generation, nor with anything after D."""
    day = pd.Timestamp("2016-04-02")
    frame = spain[(spain["date"] >= "2016-02-01") & (spain["date"] <= "2016-04-10")]
    before = forecast_lear(history_view(frame, day), day, [14, 21])
    assert set(before) == {"lear_14", "lear_21", ENSEMBLE}
    np.testing.assert_allclose(before[ENSEMBLE], (before["lear_14"] + before["lear_21"]) / 2)
    changed = frame.copy()
    rng = np.random.default_rng(0)
    later = changed["date"] > day
    on_day = changed["date"] == day
    for col in [*forbidden_columns(changed), *ALLOWED_AHEAD]:
        changed.loc[later, col] = changed.loc[later, col] * 2 + 5
    for col in forbidden_columns(changed):
        changed.loc[on_day, col] = changed.loc[on_day, col] * 3 + rng.normal(size=on_day.sum())
    after = forecast_lear(history_view(changed, day), day, [14, 21])
    for name, values in before.items():
        np.testing.assert_array_equal(values, after[name])
    for col, when in (
        (ALLOWED_AHEAD[1], on_day),
        (PRICE, changed["date"] == day - pd.Timedelta(days=1)),
    ):
        moved = frame.copy()
        moved.loc[when, col] = moved.loc[when, col] * 1.5
        shifted = forecast_lear(history_view(moved, day), day, [14, 21])
        assert not np.allclose(shifted["lear_14"], before["lear_14"]), col


def test_lear_needs_its_window(spain):
    """A window longer than the history is an error, not a silently shorter fit."""
    day = pd.Timestamp("2016-04-02")
    frame = spain[(spain["date"] >= "2016-03-10") & (spain["date"] <= day)]
    with pytest.raises(ImitgameError, match="history"):
        daily_data(history_view(frame, day), day, 56 + 7)
    with pytest.raises(ImitgameError, match="history"):
        forecast_lear(history_view(frame, day), day, [56])


@pytest.mark.parametrize("day", ["2016-03-27", "2015-10-25"])
def test_lear_on_daylight_saving_days(spain, day):
    """On a 23- or 25-hour day LEAR forecasts one value per row, read off its 24-hour daily
    forecast by local hour (the repeated hour of a 25-hour day gets the same value twice); the
    windows that do not fit are skipped and recorded."""
    day = pd.Timestamp(day)
    train = spain[(spain["date"] >= day - pd.Timedelta(days=30)) & (spain["date"] < day)]
    test = spain[(spain["date"] >= day) & (spain["date"] <= day + pd.Timedelta(days=1))]
    torch.set_default_dtype(torch.float64)
    try:
        game = ElectricityMarket(per_hour_slopes=True, synthetic_hours=10)
        theta = game.param_low + (game.param_high - game.param_low) * 0.5
        table = forecast_all(game, theta, train, test, baselines=False, lear_windows=(14, 56))
    finally:
        torch.set_default_dtype(torch.float32)
    assert table.attrs["lear"]["windows"] == [14]
    assert set(table.attrs["lear"]["skipped"]) == {"56"}
    rows = table[table["date"] == day.date().isoformat()]
    hours = int(test.loc[test["date"] == day, "day_hours"].iloc[0])
    assert len(rows) == hours and hours in (23, 25)
    assert np.isfinite(rows[["lear_14", ENSEMBLE]].to_numpy()).all()
    view = history_view(pd.concat([train, test]), day)
    daily = forecast_lear(view, day, [14])["lear_14"]
    local_hours = pd.to_datetime(rows["timestamp"].str.slice(11, 13), format="%H").dt.hour
    np.testing.assert_allclose(rows["lear_14"].to_numpy(), daily[local_hours.to_numpy()])
