"""Forecasts of the electricity market that never peek at day D, and the forecasting scripts end
to end (on the shipped Spanish data)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from envs.electricity import ElectricityMarket
from envs.electricity.data import forbidden_columns, load_energy_csv, resolve_data_path
from envs.electricity.forecast import (
    FORECASTERS,
    Recalibration,
    forecast_all,
    make_game,
    read_raw,
    settings,
    write_days,
)
from imitgame.errors import ImitgameError

ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "configs"


@pytest.mark.parametrize("refit_every", [0, 1])
def test_no_peeking_at_day_d(refit_every):
    """Changing day D's forbidden columns changes no forecast of day D (model, baselines and
    LEAR), with the game kept as fitted or refitted at every midnight on the history known
    then."""
    frame = load_energy_csv(resolve_data_path("spain"))
    train = frame[(frame["date"] >= "2016-03-01") & (frame["date"] <= "2016-03-31")]
    test = frame[(frame["date"] >= "2016-04-01") & (frame["date"] <= "2016-04-03")]
    torch.set_default_dtype(torch.float64)
    try:
        game = ElectricityMarket(per_hour_slopes=True, synthetic_hours=10)
        theta = game.param_low + (game.param_high - game.param_low) * 0.5
        theta = theta + torch.randn(theta.shape, generator=torch.Generator().manual_seed(1))
        day = pd.Timestamp("2016-04-02")
        env, algo = settings(CONFIG_DIR)
        plan = Recalibration(env, algo, every=refit_every, iterations=3, window_days=20)
        kwargs = dict(orders=((1, 0, 1),), recalibration=plan, lear_windows=(14,))
        before = forecast_all(game, theta, train, test, **kwargs)
        changed = test.copy()
        on_day = changed["date"] == day
        rng = np.random.default_rng(0)
        for col in forbidden_columns(changed):
            changed.loc[on_day, col] = changed.loc[on_day, col] * 3.0 + rng.normal(
                size=on_day.sum()
            )
        after = forecast_all(game, theta, train, changed, **kwargs)
    finally:
        torch.set_default_dtype(torch.float32)
    names = ["model", "arima", "arimax", "naive_day", "naive_week", "lear_14", "lear_ensemble"]
    d = before["date"] == "2016-04-02"
    assert d.sum() == 24
    np.testing.assert_array_equal(before.loc[d, names].to_numpy(), after.loc[d, names].to_numpy())
    # ... while the actuals did change, and the next day's history-based forecasts see it
    assert not np.allclose(before.loc[d, "actual"], after.loc[d, "actual"])
    nxt = before["date"] == "2016-04-03"
    for name in ("model", "arima", "naive_day", "lear_14"):
        assert not np.allclose(before.loc[nxt, name], after.loc[nxt, name])
    assert len(before.attrs["refits"]) == (2 if refit_every else 0)  # at 04-02 and 04-03


def test_structural_market_refits_never_peek_at_day_d():
    """The structural market refitted at every midnight (its default is every 14 days) reads
    only the days before D: changing D's forbidden columns changes no forecast of D."""
    frame = load_energy_csv(resolve_data_path("spain"))
    train = frame[(frame["date"] >= "2016-02-15") & (frame["date"] <= "2016-03-31")]
    test = frame[(frame["date"] >= "2016-04-01") & (frame["date"] <= "2016-04-03")]
    torch.set_default_dtype(torch.float64)
    try:
        env, algo = settings(CONFIG_DIR, market="electricity_merit")
        game = make_game({**env, "data_path": None, "window_days": None}, frame=train)
        theta = game.initial_theta()
        plan = Recalibration(env, algo, every=1, iterations=1, window_days=14)
        kwargs = dict(baselines=False, recalibration=plan)
        before = forecast_all(game, theta, train, test, **kwargs)
        changed = test.copy()
        on_day = changed["date"] == pd.Timestamp("2016-04-02")
        for col in forbidden_columns(changed):
            changed.loc[on_day, col] = changed.loc[on_day, col] * 3.0 + 1.0
        after = forecast_all(game, theta, train, changed, **kwargs)
    finally:
        torch.set_default_dtype(torch.float32)
    d = before["date"] == "2016-04-02"
    assert d.sum() == 24
    np.testing.assert_array_equal(before.loc[d, "model"], after.loc[d, "model"])
    nxt = before["date"] == "2016-04-03"  # its refit and its cost level read 04-02
    assert not np.allclose(before.loc[nxt, "model"], after.loc[nxt, "model"])
    assert len(before.attrs["refits"]) == 2


def test_settings_take_env_and_algo_overrides():
    """``env.KEY=VALUE`` / ``algo.KEY=VALUE`` (YAML values) over the market's YAML and its
    tuning; an unknown key or a malformed item is a one-line error."""
    env, algo = settings(
        CONFIG_DIR, market="electricity_merit", overrides=["env.lags=[1,2,7]", "algo.iterations=3"]
    )
    assert env["lags"] == [1, 2, 7] and algo.iterations == 3
    assert algo.optimizer == "lbfgs"  # the market's tuning is kept under the override
    for bad, message in (
        ("env.nope=1", "'nope' is not an option of env/electricity_merit.yaml"),
        ("algo.nope=1", "not a simulacral setting"),
        ("lags=[1]", "env.KEY=VALUE or algo.KEY=VALUE"),
    ):
        with pytest.raises(ImitgameError, match=message):
            settings(CONFIG_DIR, market="electricity_merit", overrides=[bad])


def test_forecast_and_backtest_scripts_end_to_end(tmp_path):
    """The scripts as a user runs them, on a tiny budget: outputs written, metrics complete."""
    from scripts import backtest_electricity, electricity_least_squares, forecast_electricity

    raw = read_raw("spain")
    source = tmp_path / "march.csv"
    write_days(raw, "2016-02-20", "2016-03-12", source)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_days(raw, "2016-02-20", "2016-03-08", train)
    write_days(raw, "2016-03-09", "2016-03-12", test)
    blank_last = pd.read_csv(test, dtype=str, keep_default_na=False)
    blank_last.loc[blank_last.index[-1], "price actual"] = ""  # a blank actual is not scored
    blank_last.to_csv(test, index=False)
    torch.set_default_dtype(torch.float64)
    try:
        tiny = ["--iterations", "20", "--recalibrate-every", "2", "--recalibrate-iterations", "3"]
        tiny += ["--lear-windows", "7", "56"]  # 18 days of history: 7 fits, 56 does not
        out = tmp_path / "forecast"
        metrics = forecast_electricity.main(
            ["--train", str(train), "--test", str(test), "--out", str(out)]
            + ["--cache", str(tmp_path / "fits"), "env.recency_days=60", *tiny]
        )
        lear = ["lear_7", "lear_ensemble"]
        assert list(metrics["mse"]) == [*FORECASTERS, *lear]
        assert metrics["lear"]["windows"] == [7] and set(metrics["lear"]["skipped"]) == {"56"}
        for key in ("mae", "rmse", "smape", "rmae"):
            assert set(metrics[key]) == set(metrics["mse"]), key
        assert metrics["rmae"]["naive_week"] == 1.0
        assert metrics["rmse"]["model"] == pytest.approx(metrics["mse"]["model"] ** 0.5)
        for kind in ("squared", "absolute"):
            tests = metrics["diebold_mariano"][kind]
            assert set(tests) == set(metrics["mse"]) - {"model"}
            assert all(t["days"] == 4 for t in tests.values())
        assert metrics["days"] == 4 and len(metrics["refits"]) == 1  # at 03-11
        assert metrics["fit"]["env"]["recency_days"] == 60  # the override reached the fit
        assert (metrics["hours"], metrics["hours_without_actual"]) == (95, 1)
        assert all(np.isfinite(v) for v in metrics["mse"].values())
        assert metrics["equilibrium_regret_test"] < 1e-9  # forecasts are equilibrium prices
        for name in ("metrics.json", "predictions.csv", "forecast.png", "model.pt"):
            assert (out / name).is_file(), name
        written = pd.read_csv(out / "predictions.csv")
        assert len(written) == 4 * 24 and {"lear_7", "lear_ensemble"} <= set(written)
        least_squares = electricity_least_squares.main(
            ["--train", str(train), "--test", str(test), "--metrics", str(out / "metrics.json")]
        )
        assert np.isfinite(least_squares["least_squares"])
        assert least_squares["ratios_to_arima"]["arima"] == 1.0
        result = backtest_electricity.main(
            [str(source), "--periods", "2016-03-07:2016-03-09", "2016-03-10:2016-03-12"]
            + ["--out", str(tmp_path / "backtest"), "--iterations", "20"]
            + [
                "--forecast-args",
                "--recalibrate-every 0 --lear-windows 7 --cache " + str(tmp_path / "fits"),
            ]
        )
    finally:
        torch.set_default_dtype(torch.float32)
    for bad in ("2016-08-20", "2016-03-12:2016-03-10", "x:y"):
        with pytest.raises(SystemExit):
            backtest_electricity.main([str(source), "--periods", bad, "--out", str(tmp_path)])
    periods = result["periods"]
    assert [p["days"] for p in periods] == [3, 3, 6]
    pooled = periods[-1]["mse"]["model"]
    assert pooled == pytest.approx((periods[0]["mse"]["model"] + periods[1]["mse"]["model"]) / 2)
    assert periods[-1]["mae"]["lear_ensemble"] == pytest.approx(
        (periods[0]["mae"]["lear_ensemble"] + periods[1]["mae"]["lear_ensemble"]) / 2
    )
    assert periods[-1]["diebold_mariano"]["squared"]["lear_7"]["days"] == 6
    markdown = (tmp_path / "backtest" / "backtest.md").read_text()
    for heading in ("### MSE", "### MAE", "### rMAE", "### Diebold"):
        assert heading in markdown
    assert "lear_ensemble" in markdown


def test_split_script_runs_from_any_cwd_on_the_shipped_data(tmp_path):
    """``split_energy_csv.py`` as a user runs it, from outside the repository: the source defaults
    to ``spain``, the output is the CSV's own text for those days; a missing file is one line."""
    script = str(ROOT / "scripts/split_energy_csv.py")
    out = tmp_path / "week.csv"
    run = [
        sys.executable,
        script,
        "--first",
        "2016-03-26",
        "--last",
        "2016-03-28",
        "--out",
        "week.csv",
    ]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("71 rows")  # 24 + 23 (clocks go forward) + 24
    frame = load_energy_csv(out)
    assert frame["date"].nunique() == 3 and len(frame) == 71
    bad = [sys.executable, script, "nowhere.csv", "--first", "2016-01-01", "--last", "2016-01-02"]
    done = subprocess.run(
        [*bad, "--out", "x.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "not found: nowhere.csv" in done.stderr
