"""The electricity market game: closed forms, and forecasts that never peek at day D."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from envs.electricity import CONTEXT_DIM, ElectricityMarket
from imitgame.energy import forbidden_columns, load_energy_csv
from imitgame.errors import ImitgameError
from imitgame.problems.simulacral import equilibrium_regret
from imitgame.testing import check_game

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "../shared/data/spain_energy_2015-01_2016-08.csv"


@pytest.fixture
def game():
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            yield ElectricityMarket(per_hour_slopes=False, synthetic_hours=50)
        finally:
            torch.set_default_dtype(torch.float32)


def test_equilibrium_is_nash_and_best_response_is_best(game):
    theta = game.true_params[None]
    ctx = game.observed_contexts()[None]
    assert equilibrium_regret(game, theta, ctx).item() < 1e-9
    eq = game.equilibrium(theta[:, None], ctx)
    assert bool((eq > 0).all())  # interior: the closed form is exact
    # P* = (a + b r Σc) / (1 + n b r) with b = d = 1, c = (0, 1, 2)
    a = game.intercept(theta[:, None], ctx)
    assert torch.allclose(game.price(eq, theta[:, None], ctx), (a + 0.5 * 3) / 2.5)
    # a best response beats nearby deviations
    q = eq + 3.0
    br = game.best_response(q, theta[:, None], ctx)
    for shift in (-0.5, 0.5):
        dev = q.clone()
        dev[..., 0, :] = br[..., 0, :] + shift
        mixed = q.clone()
        mixed[..., 0, :] = br[..., 0, :]
        u_br = game.payoffs(mixed, theta[:, None], ctx)[..., 0]
        assert bool((u_br > game.payoffs(dev, theta[:, None], ctx)[..., 0]).all())


def test_equilibrium_with_priced_out_generators(game):
    """Low demand: generators whose cost the price does not cover offer nothing, and the result
    is still a Nash equilibrium (exact regret 0), where the interior formula is not."""
    theta = game.true_params.clone()
    ctx = game.observed_contexts()[:4]
    shift = torch.tensor([1.5, 3.0, 5.0, 0.5]) - game.intercept(theta, ctx)
    theta = theta.expand(4, -1).clone()
    theta[:, :24] += shift[:, None]  # every hour intercept moves, so a(x_k) = target_k
    a = game.intercept(theta[:, None], ctx[:, None])[:, 0]
    assert torch.allclose(a, torch.tensor([1.5, 3.0, 5.0, 0.5]))
    eq = game.equilibrium(theta[:, None], ctx[:, None])[:, 0, :, 0]  # [4, n]
    # c = (0, 1, 2), b = d = 1: P_k = (a + Σ_{j≤k} c_j / 2) / (1 + k / 2). a = 1.5: P_1 = 1 > 0
    # but P_2 = 1 does not cover c = 1, so only the first produces, q = (P − 0) / 2 = 0.5
    assert torch.allclose(eq[0], torch.tensor([0.5, 0.0, 0.0]))
    assert (eq > 0).sum(-1).tolist() == [1, 2, 3, 1]  # a = 3: P_3 = 1.8 < 2; a = 5: P_3 = 2.6
    assert equilibrium_regret(game, theta, ctx[:, None]).max().item() < 1e-12


def test_expanded_contexts_keep_their_batch_shape(game):
    """a(x) is computed once per context under an expanded batch (the regret estimator's deviation
    rows), and every output keeps the full broadcast shape."""
    theta = game.true_params
    ctx = game.observed_contexts()[:5]
    wide = ctx[None].expand(4, -1, -1)
    assert game.intercept(theta, wide).shape == (4, 5)
    eq = game.equilibrium(theta, wide)
    assert eq.shape == (4, 5, 3, 1)
    assert torch.equal(eq, game.equilibrium(theta, wide.clone()))
    assert game.best_response(eq, theta, wide).shape == (4, 5, 3, 1)


def test_check_game(game):
    check_game(game)


def test_data_backed_market_builds_contexts():
    game = ElectricityMarket(
        data_path=str(SHARED), train_start="2016-01-01", train_end="2016-01-31"
    )
    ctx = game.observed_contexts()
    assert ctx.shape[1] == CONTEXT_DIM
    assert ctx.shape[0] == game.observed_outcomes().shape[0] == 24 * (31 - 7)
    assert torch.isfinite(ctx).all()


def test_recency_weights_discount_old_days():
    january = dict(data_path=str(SHARED), train_start="2016-01-01", train_end="2016-01-31")
    game = ElectricityMarket(**january, recency_days=10.0)
    weights = game.observation_weights()
    assert weights.shape == (24 * 24,)
    assert weights.mean().item() == pytest.approx(1.0)
    by_day = weights.view(24, 24)
    assert torch.allclose(by_day, by_day[:, :1].expand(-1, 24))  # one weight per day
    assert torch.allclose(by_day[:-1, 0] / by_day[1:, 0], torch.tensor(np.exp(-0.1)))
    assert ElectricityMarket(**january).observation_weights() is None
    with pytest.raises(ImitgameError, match="recency_days"):
        ElectricityMarket(recency_days=0.0)


@pytest.mark.parametrize("refit_every", [0, 1])
def test_no_peeking_at_day_d(refit_every):
    """Changing day D's forbidden columns changes no forecast of day D (model and baselines),
    with the game kept as fitted or refitted at every midnight on the history known then."""
    sys.path.insert(0, str(ROOT))
    from scripts.forecast_electricity import Recalibration, forecast_all, settings

    frame = load_energy_csv(SHARED)
    train = frame[(frame["date"] >= "2016-03-01") & (frame["date"] <= "2016-03-31")]
    test = frame[(frame["date"] >= "2016-04-01") & (frame["date"] <= "2016-04-03")]
    torch.set_default_dtype(torch.float64)
    try:
        game = ElectricityMarket(per_hour_slopes=True, synthetic_hours=10)
        theta = game.param_low + (game.param_high - game.param_low) * 0.5
        theta = theta + torch.randn(theta.shape, generator=torch.Generator().manual_seed(1))
        day = pd.Timestamp("2016-04-02")
        env, algo = settings(None)
        plan = Recalibration(env, algo, every=refit_every, iterations=3, window_days=20)
        kwargs = dict(orders=((1, 0, 1),), recalibration=plan)
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
    names = ["model", "arima", "arimax", "naive_day", "naive_week"]
    d = before["date"] == "2016-04-02"
    assert d.sum() == 24
    np.testing.assert_array_equal(before.loc[d, names].to_numpy(), after.loc[d, names].to_numpy())
    # ... while the actuals did change, and the next day's history-based forecasts see it
    assert not np.allclose(before.loc[d, "actual"], after.loc[d, "actual"])
    nxt = before["date"] == "2016-04-03"
    for name in ("model", "arima", "naive_day"):
        assert not np.allclose(before.loc[nxt, name], after.loc[nxt, name])
    assert len(before.attrs["refits"]) == (2 if refit_every else 0)  # at 04-02 and 04-03


def test_forecast_and_backtest_scripts_end_to_end(tmp_path):
    """The scripts as a user runs them, on a tiny budget: outputs written, metrics complete."""
    sys.path.insert(0, str(ROOT))
    from scripts import backtest_electricity, electricity_least_squares, forecast_electricity
    from scripts.split_energy_csv import write_days

    raw = pd.read_csv(SHARED, dtype=str, keep_default_na=False)
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
        out = tmp_path / "forecast"
        metrics = forecast_electricity.main(
            ["--train", str(train), "--test", str(test), "--out", str(out)]
            + ["--cache", str(tmp_path / "fits"), *tiny]
        )
        assert set(metrics["mse"]) == set(forecast_electricity.FORECASTERS)
        assert metrics["days"] == 4 and len(metrics["refits"]) == 1  # at 03-11
        assert (metrics["hours"], metrics["hours_without_actual"]) == (95, 1)
        assert all(np.isfinite(v) for v in metrics["mse"].values())
        assert metrics["equilibrium_regret_test"] < 1e-9  # forecasts are equilibrium prices
        for name in ("metrics.json", "predictions.csv", "forecast.png", "model.pt"):
            assert (out / name).is_file(), name
        assert len(pd.read_csv(out / "predictions.csv")) == 4 * 24
        least_squares = electricity_least_squares.main(
            ["--train", str(train), "--test", str(test), "--metrics", str(out / "metrics.json")]
        )
        assert np.isfinite(least_squares["least_squares"])
        assert least_squares["ratios_to_arima"]["arima"] == 1.0
        result = backtest_electricity.main(
            [str(source), "--periods", "2016-03-07:2016-03-09", "2016-03-10:2016-03-12"]
            + ["--out", str(tmp_path / "backtest"), "--iterations", "20"]
            + ["--forecast-args", "--recalibrate-every 0 --cache " + str(tmp_path / "fits")]
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
    assert (tmp_path / "backtest" / "backtest.md").is_file()
