"""The structural merit-order market (envs/electricity/merit.py): the game's contract, the exact
clearing, the day-ahead rules of its contexts, and the economics' sanity on a fitted market
(more wind never raises the price, a technology removed never lowers it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from envs.electricity.data import PRICE, load_energy_csv, resolve_data_path
from envs.electricity.features import history_view
from envs.electricity.forecast import settings
from envs.electricity.merit import ElectricityMeritMarket, clear, supply
from imitgame.config import SimulacralConfig
from imitgame.errors import ImitgameError
from imitgame.problems.identifiability import check_identifiability
from imitgame.problems.simulacral import (
    build_simulacral,
    equilibrium_regret,
    fit,
    problem_from_game,
    score,
    simulate_observations,
)
from imitgame.testing import check_game

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def spain() -> pd.DataFrame:
    return load_energy_csv(resolve_data_path("spain"))


def tuning(**overrides) -> SimulacralConfig:
    """configs/tuning/electricity_merit.yaml (π the exact clearing, L-BFGS on θ) over the
    simulacral defaults, as ``python train.py env=electricity_merit`` composes it."""
    return replace(settings(ROOT / "configs", market="electricity_merit")[1], **overrides)


@pytest.fixture(scope="module")
def fitted(spain):
    """The default market (configs/env/electricity_merit.yaml) fitted by the tuning's fit on six
    weeks of spring 2016 (prices), θ̂ and the market playing the following week."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    env = OmegaConf.to_container(OmegaConf.load(ROOT / "configs/env/electricity_merit.yaml"))
    env = {**env, "data_path": None, "window_days": None, "frame": spain}
    counterfactual = ("wind_scale", "cost_shift", "capacity_scale", "period")
    for key in ("_target_", "train_start", "train_end", *counterfactual):
        env.pop(key)  # the tests set the dates and the counterfactual inputs themselves
    game = ElectricityMeritMarket(**env, train_start="2016-03-01", train_end="2016-04-12")
    problem, _ = problem_from_game(game, tuning(iterations=5))
    fit(problem)
    theta = score(problem).theta_hat.reshape(-1)
    week = {**env, "period": ["2016-04-13", "2016-04-19"]}
    torch.set_default_dtype(previous)
    return theta, week, problem


def test_synthetic_market_passes_check_game():
    check_game(ElectricityMeritMarket(synthetic_days=10))


def test_synthetic_market_theta_recovered(float64):
    """Prices of a synthetic merit-order market (random inputs, lagged prices with a latent
    level) from its equilibrium under θ*: the tuning's fit (π the exact clearing, L-BFGS on θ)
    recovers θ* from the prices alone."""
    game = ElectricityMeritMarket(synthetic_days=60, synthetic_seed=1)
    contexts = game.observed_contexts()
    theta_true = game.true_params[None]
    prices = simulate_observations(game, theta_true, contexts[None])
    start = game.learned_start()  # the true costs, slopes and b: start away from them
    start[:9] = [10.0, 30.0, 50.0, 25.0, 2.0, 4.0, 2.0, 4.0, 15.0]
    problem = build_simulacral(game, contexts, prices, tuning(iterations=15, theta_init=start))
    fit(problem)
    result = score(problem, theta_true)
    assert result.equilibrium_mse.item() < 1e-3  # EUR²/MWh² (prices' std ≈ 10): reproduced
    assert result.equilibrium_exploitability.item() < 1e-9
    # nuclear, the cheapest, runs at its capacity in almost every synthetic hour: its cost and
    # slope are barely identified (the fit leaves them near where it found them); every other
    # entry — costs and slopes of coal, gas, hydro, b, intercepts, filter — is recovered
    nuclear = [game.param_names.index(name) for name in ("c_nuclear", "d_nuclear")]
    rest = [i for i in range(len(game.param_names)) if i not in nuclear]
    truth = theta_true[0, rest]

    def error(theta: torch.Tensor) -> float:
        return float((theta[rest] - truth).norm() / truth.norm())

    assert error(result.theta_hat[0]) < 1e-2, error(result.theta_hat[0])
    assert error(torch.tensor(start)) > 0.1


def test_clearing_is_exact_on_every_piece():
    """clear() returns the root of y = base − b Σ q_j(y) whether the root lies below every
    technology's cost, on an interior piece, or beyond every capacity (the scarcity slope)."""
    gen = torch.Generator().manual_seed(0)
    c = torch.tensor([5.0, 30.0, 45.0, 35.0])
    s = torch.tensor([1.0, 3.0, 2.0, 4.0])
    cap = torch.tensor([7.0, 5.0, 8.0, 4.0])
    b = torch.tensor(20.0)
    base = torch.cat([torch.tensor([-50.0, 0.0, 2000.0]), 1000 * torch.rand(500, generator=gen)])
    y = clear(base, b, c, s, cap, 200.0)
    residual = y - base + b * supply(y[:, None], c, s, cap, 200.0).sum(-1)
    assert residual.abs().max() < 1e-9
    assert y[0] == pytest.approx(-50.0) and y[2] > (c + s * cap).max()


def test_equilibrium_regret_on_data_is_below_1e_minus_6(spain):
    game = ElectricityMeritMarket(frame=spain, period=["2016-05-01", "2016-05-07"])
    theta = game.initial_theta()
    regret = equilibrium_regret(game, theta[None], game.observed_contexts()[None])
    assert float(regret.max()) <= 1e-6


def test_forecast_contexts_read_only_what_is_known_at_midnight(spain):
    """D's contexts from the history view (D's prices and generation blanked) equal the training
    contexts of D, and do not change when D's actual prices and generation are altered."""
    day = pd.Timestamp("2016-05-10")
    game = ElectricityMeritMarket(frame=spain, period=["2016-05-10", "2016-05-10"])
    view = history_view(spain[spain["date"] <= day], day)
    x = game.forecast_contexts(view, day)
    assert np.allclose(x, game.observed_contexts().numpy())
    altered = spain.copy()
    today = altered["date"] == day
    generation = [c for c in altered.columns if c.startswith("generation ")]
    altered.loc[today, [PRICE, *generation]] *= 3.0
    again = game.forecast_contexts(history_view(altered[altered["date"] <= day], day), day)
    assert np.array_equal(x, again)


def test_last_hour_filter_reads_the_freshest_residual(spain):
    """With ``last_hour`` and only δ = 1, every hour of D gets the cost level κ = r_{D−1,23},
    the pricing error at 23:00 of D−1 of the market without the level; with a list of hours,
    δ_k weighs hour k of D−1."""
    game = ElectricityMeritMarket(frame=spain, period=["2016-05-09", "2016-05-10"], last_hour=True)
    theta = game.initial_theta().clone()
    filters = [i for i, block in enumerate(game.param_blocks) if block == "filter"]
    theta[filters] = 0.0
    theta[game.param_names.index("delta")] = 1.0
    x = game.observed_contexts()  # 48 rows: the 24 hours of 2016-05-09, then of 2016-05-10
    price = game.observed_outcomes()[:, 0]
    freshest = price[23] - game.base_price(theta, x[23])
    assert torch.allclose(game.level(theta, x[24:]), freshest.expand(24), atol=1e-9)
    hours = ElectricityMeritMarket(
        frame=spain, period=["2016-05-09", "2016-05-10"], last_hour=[5, 23]
    )
    theta = hours.initial_theta().clone()
    theta[[i for i, block in enumerate(hours.param_blocks) if block == "filter"]] = 0.0
    theta[hours.param_names.index("delta[5]")] = 1.0  # 05:00 of D−1 alone
    early = price[5] - hours.base_price(theta, x[5])
    assert torch.allclose(hours.level(theta, hours.observed_contexts()[24:]), early.expand(24))


def test_day_lag_filter_reads_the_mean_residual_of_the_day(spain):
    """With ``day_lags=[1]`` and only γ_1 = 1, every hour of D gets κ = the mean over D−1's 24
    hours of P − y(x), and the shared-θ path (each distinct day cleared once) agrees with a θ
    per row (a batch of parameters)."""
    period = {"frame": spain, "period": ["2016-05-09", "2016-05-11"]}
    game = ElectricityMeritMarket(day_lags=[1], **period)
    theta = game.initial_theta().clone()
    theta[[i for i, block in enumerate(game.param_blocks) if block == "filter"]] = 0.0
    theta[game.param_names.index("gamma[1]")] = 1.0
    x = game.observed_contexts()  # 72 rows: the 24 hours of 2016-05-09, -10, -11
    price = game.observed_outcomes()[:, 0]
    residual = price - game.base_price(theta, x)
    level = game.level(theta, x)
    for day in (1, 2):
        mean = residual[24 * (day - 1) : 24 * day].mean()
        assert torch.allclose(level[24 * day : 24 * (day + 1)], mean.expand(24), atol=1e-9)
    per_row = game.level(theta.expand(len(x), -1), x)
    assert torch.allclose(per_row, level, atol=1e-12)


def test_must_run_technology_leaves_the_game_and_demand_by_its_output_of_d_minus_1(spain):
    """``must_run=[nuclear]``: nuclear is no player, and every hour's residual demand of D is
    lower by nuclear's mean output over the 24 hours of D−1 (GW)."""
    period = {"frame": spain, "period": ["2016-05-09", "2016-05-10"]}
    game = ElectricityMeritMarket(**period)
    without = ElectricityMeritMarket(
        technologies=["coal", "gas", "hydro"],
        must_run=["nuclear"],
        conduct=[0, 0, 0],
        costs=[35, 45, 30],
        slopes=[3, 3, 3],
        **period,
    )
    assert without.possible_agents == ["coal", "gas", "hydro"]
    residual = game.observed_contexts()[:, 31]  # R, after the hour and weekday indicators
    lower = without.observed_contexts()[:, 31]
    nuclear = spain.set_index("date").loc["2016-05-09", "generation nuclear"].mean() / 1000
    assert torch.allclose(residual[24:] - lower[24:], torch.tensor(nuclear).expand(24))


def test_slope_capacity_spans_a_fixed_cost_range_over_the_available_capacity(spain):
    """``slope_capacity`` K₀: a technology's slope on day D is d_j K₀ / K_j — the market clears
    as the fixed-slope market whose d_j is that day's; it stays a game (check_game)."""
    day = {"frame": spain, "period": ["2016-05-09", "2016-05-09"]}
    scaled = ElectricityMeritMarket(**day, slope_capacity=7.0)
    fixed = ElectricityMeritMarket(**day)
    x = scaled.observed_contexts()
    capacity = x[0, 32 : 32 + scaled.n_tech]  # K_j of D (GW), after hour, weekday and R
    assert torch.allclose(x[:, 32:36], capacity.expand(24, -1))
    theta = scaled.initial_theta()
    d = slice(scaled.n_tech, 2 * scaled.n_tech)
    same = theta.clone()
    same[d] = theta[d] * 7.0 / capacity
    assert not torch.allclose(same, theta)
    assert torch.allclose(scaled.base_price(theta, x), fixed.base_price(same, x))
    check_game(ElectricityMeritMarket(synthetic_days=5, slope_capacity=7.0))


def test_cost_level_is_reused_for_the_same_theta_and_dropped_after_backward(spain):
    """κ clears every lagged market, so the market reuses it for the same θ on the same
    contexts: the same tensor (or a view of it) where θ carries a gradient, as a fit's
    ``Stabilizer.theta()`` hands out within a step; equal values where it does not. The gradient
    through the reused κ is the gradient of a fresh one; after a backward pass through it the
    next call computes κ afresh (no freed graph is reused); a second leaf of the same values
    gets its own κ (its gradient flows to it); a deep copy starts empty."""
    import copy

    period = {"frame": spain, "period": ["2016-05-09", "2016-05-11"], "day_lags": [1]}
    game = ElectricityMeritMarket(**period)
    x = game.observed_contexts()
    calls = []
    level = game.level
    game.level = lambda *args: calls.append(1) or level(*args)
    learned = game.initial_theta().clone().requires_grad_()
    theta = learned * 1.0  # one θ for the step, as ``Stabilizer.theta()``

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return game.price(game.equilibrium(theta, x), theta[None][0], x).square().sum()

    (gradient,) = torch.autograd.grad(loss(theta), learned)
    assert len(calls) == 1  # the equilibrium and its price (through a view of θ) share κ
    fresh = ElectricityMeritMarket(**period)
    theta = learned * 1.0
    direct = fresh.price(fresh.equilibrium(theta, x), theta, x).square().sum()
    assert torch.allclose(torch.autograd.grad(direct, learned)[0], gradient, rtol=1e-12)
    calls.clear()
    (leaf,) = torch.autograd.grad(loss(learned), learned)
    (again,) = torch.autograd.grad(loss(learned), learned)  # the same leaf, after a backward
    assert len(calls) == 2 and torch.allclose(leaf, gradient, rtol=1e-12)
    assert torch.allclose(again, gradient, rtol=1e-12)
    loss(learned)  # κ with a graph to ``learned``, not consumed
    other = learned.detach().clone().requires_grad_()  # the same values, another leaf
    (to_other,) = torch.autograd.grad(loss(other), other)
    assert torch.allclose(to_other, gradient, rtol=1e-12)
    with torch.no_grad():
        shifted = learned + 1.0
        calls.clear()
        game.equilibrium(shifted, x)
        game.equilibrium(shifted.clone(), x)
    assert len(calls) == 1  # without a gradient: equal values share κ
    assert copy.deepcopy(game)._level_memo == {}


def test_identifiability_check_runs_through_torch_func_transforms():
    """The first-order-condition Jacobian (vmap of jacrev over the payoffs) bypasses κ's reuse:
    a transform's tensors have no storage to key on."""
    game = ElectricityMeritMarket(synthetic_days=2)
    x = game.observed_contexts()[None]
    theta = game.true_params[None]
    actions = game.equilibrium(theta[:, None], x)
    learned = torch.arange(theta.shape[-1])
    result = check_identifiability(game, actions, theta, learned, x)
    assert result.n_learned == theta.shape[-1] and int(result.rank[0]) > 0


def test_weekday_markup_is_a_cost_shift_of_that_weekday_only(spain):
    """``weekday_effect=cost``: ω_wd is a markup on every technology's marginal cost on that
    weekday, so ω_mon = 5 clears Monday's market like costs 5 higher and leaves Tuesday's as is;
    ``demand`` shifts the demand intercept instead (a different price)."""
    period = {"frame": spain, "period": ["2016-05-09", "2016-05-10"]}  # Monday, Tuesday
    game = ElectricityMeritMarket(**period, weekday_effect="cost")
    theta = game.initial_theta().clone()
    x = game.observed_contexts()
    marked = theta.clone()
    marked[game.param_names.index("omega_mon")] = 5.0
    dearer = theta.clone()
    dearer[: game.n_tech] += 5.0
    monday, tuesday = slice(0, 24), slice(24, 48)
    assert torch.allclose(game.base_price(marked, x[monday]), game.base_price(dearer, x[monday]))
    assert torch.equal(game.base_price(marked, x[tuesday]), game.base_price(theta, x[tuesday]))
    demand = ElectricityMeritMarket(**period, weekday_effect="demand")
    shifted = demand.base_price(marked, x[monday]) - demand.base_price(theta, x[monday])
    raised = game.base_price(marked, x[monday]) - game.base_price(theta, x[monday])
    assert float((shifted - raised).abs().max()) > 0.1


def test_weekday_blocks_mark_up_their_hours_only(spain):
    """``weekday_blocks=4``: ω_mon[0] marks up Monday's hours 0–5 only, and equal blocks price
    every hour as one markup per weekday does."""
    period = {"frame": spain, "period": ["2016-05-09", "2016-05-10"], "weekday_effect": "cost"}
    whole = ElectricityMeritMarket(**period)
    blocks = ElectricityMeritMarket(**period, weekday_blocks=4)
    assert blocks.param_names[blocks.param_names.index("omega_mon[0]") + 3] == "omega_mon[3]"
    x = blocks.observed_contexts()
    one = whole.initial_theta().clone()
    one[whole.param_names.index("omega_mon")] = 5.0
    four = blocks.initial_theta().clone()
    four[[blocks.param_names.index(f"omega_mon[{i}]") for i in range(4)]] = 5.0
    assert torch.allclose(blocks.base_price(four, x), whole.base_price(one, x))
    night = blocks.initial_theta().clone()
    night[blocks.param_names.index("omega_mon[0]")] = 5.0
    changed = blocks.base_price(night, x) != blocks.base_price(blocks.initial_theta(), x)
    assert changed[:6].all() and not changed[6:].any()  # Monday 0–5 h; Tuesday untouched


def test_filter_weekdays_weigh_each_weekday_of_d_apart(spain):
    """``filter_weekdays``: equal weights for every weekday give the single weights' level; a
    Monday weight moves Mondays' κ only."""
    period = {"frame": spain, "period": ["2016-05-09", "2016-05-15"], "last_hour": True}
    single = ElectricityMeritMarket(**period)
    daily = ElectricityMeritMarket(**period, filter_weekdays=True)
    x = daily.observed_contexts()  # Monday 9 May to Sunday 15 May, 24 hours each
    theta = single.initial_theta()
    filters = single.param_blocks.index("filter")
    repeated = torch.cat([theta[:filters], theta[filters:].repeat_interleave(7)])
    assert torch.allclose(daily.level(repeated, x), single.level(theta, x))
    monday = repeated.clone()
    monday[daily.param_names.index("beta[1]_mon")] = 1.0
    moved = daily.level(monday, x) != daily.level(repeated, x)
    assert moved[:24].all() and not moved[24:].any()


def test_season_weights_peak_a_year_before_the_quarter_forecast(spain):
    """``season_days``: hours weigh exp(−s²/2σ²), s their days of the year from the middle of the
    quarter after the last fitted day (46 days on), so the heaviest are a year before it."""
    game = ElectricityMeritMarket(
        frame=spain, train_end="2016-05-31", window_days=365, season_days=30
    )
    weights = game.observation_weights()
    days = pd.DatetimeIndex(game.observation_labels()["date"])
    heaviest = days[int(weights.argmax())]
    target = pd.Timestamp("2016-05-31") + pd.Timedelta(days=46) - pd.DateOffset(years=1)
    assert abs((heaviest - target).days) <= 1
    assert float(weights.mean()) == pytest.approx(1.0)


def test_more_wind_never_raises_the_fitted_price(fitted):
    theta, week, _ = fitted
    prices = []
    for scale in (1.0, 1.25, 1.5, 2.0):
        game = ElectricityMeritMarket(**week, wind_scale=scale)
        x = game.observed_contexts()
        with torch.no_grad():
            prices.append(game.price(game.equilibrium(theta, x), theta, x))
    steps = torch.stack(prices).diff(dim=0)
    assert float(steps.max()) <= 1e-9
    assert float(steps.min()) < -0.1  # and wind does lower it somewhere


def test_a_technology_removed_never_lowers_the_fitted_price(fitted):
    theta, week, _ = fitted
    base = ElectricityMeritMarket(**week)
    x = base.observed_contexts()
    with torch.no_grad():
        before = base.price(base.equilibrium(theta, x), theta, x)
        for j in range(base.n_tech):
            scale = [1.0] * base.n_tech
            scale[j] = 0.0
            game = ElectricityMeritMarket(**week, capacity_scale=scale)
            after = game.price(game.equilibrium(theta, x), theta, x)
            assert float((after - before).min()) >= -1e-9, base.technologies[j]


def test_fit_tracks_prices(fitted):
    """The fitted game's equilibrium matches the fitted weeks better than its start does."""
    theta, _, problem = fitted
    game = problem.game
    x = game.observed_contexts()
    observed = game.observed_outcomes()
    start = game.initial_theta()
    with torch.no_grad():
        errors = []
        for th in (start, theta):
            q = game.equilibrium(th, x)
            errors.append(float((game.price(q, th, x) - observed[:, 0]).abs().mean()))
    assert errors[1] < 0.9 * errors[0], errors


def test_generation_is_observed_in_training_only_when_asked(spain):
    """``observe_generation``: the outcomes and the observation map gain one column per
    technology (GW), the observed output summed over its generation columns."""
    week = {"frame": spain, "period": ["2016-05-01", "2016-05-02"]}
    prices = ElectricityMeritMarket(**week)
    both = ElectricityMeritMarket(**week, observe_generation=True)
    assert prices.observed_outcomes().shape == (48, 1)
    observed = both.observed_outcomes()
    assert observed.shape == (48, 5)
    nuclear = spain.loc[spain["date"] == pd.Timestamp("2016-05-01"), "generation nuclear"]
    assert float(observed[0, 1]) == pytest.approx(nuclear.iloc[0] / 1000.0)
    x = both.observed_contexts()
    theta = both.initial_theta()
    q = both.equilibrium(theta, x)
    assert both.observation_map(q, theta, x).shape == (48, 5)


def test_bad_options_are_one_line_errors():
    with pytest.raises(ImitgameError, match="technologies"):
        ElectricityMeritMarket(technologies=["nuclear", "fusion"])
    with pytest.raises(ImitgameError, match=r"must_run: \['hydro'\] must be technologies"):
        ElectricityMeritMarket(must_run=["hydro"])
    with pytest.raises(ImitgameError, match="conduct has 1 entries"):
        ElectricityMeritMarket(conduct=[0.0])
    with pytest.raises(ImitgameError, match="capacity_scale"):
        ElectricityMeritMarket(capacity_scale=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ImitgameError, match="weekday_effect"):
        ElectricityMeritMarket(weekday_effect="holiday")
    with pytest.raises(ImitgameError, match="last_hour: true, false or distinct hours"):
        ElectricityMeritMarket(data_path="spain", last_hour=[23, 24])
    with pytest.raises(ImitgameError, match="season_days must be > 0"):
        ElectricityMeritMarket(season_days=0)
    with pytest.raises(ImitgameError, match="slope_capacity must be > 0"):
        ElectricityMeritMarket(slope_capacity=0)
    with pytest.raises(ImitgameError, match="weekday_blocks must divide 24"):
        ElectricityMeritMarket(weekday_blocks=5)


@pytest.mark.slow
def test_counterfactuals_of_a_train_py_run(tmp_path):
    """``python train.py env=electricity_merit`` then scripts/counterfactual.py's library: 1.5×
    wind never raises an hour's price, dearer gas never lowers one (a day of May 2016)."""
    from imitgame.run.counterfactual import counterfactual
    from imitgame.run.runner import run
    from tests.conftest import compose_config

    overrides = ("env.train_start=2016-04-01", "env.train_end=2016-04-30", "algo.iterations=5")
    config = compose_config("env=electricity_merit", "progress=false", "device=cpu", *overrides)
    run(config, tmp_path / "run", env_name="electricity_merit")
    day = {"env.period": ["2016-05-10", "2016-05-10"]}
    windy = counterfactual(tmp_path / "run", {"env.wind_scale": 1.5}, setting=day)
    assert windy["difference"]["price_rose"] == 0 and windy["difference"]["price_fell"] > 0
    gas = counterfactual(tmp_path / "run", {"env.cost_shift": [0, 0, 10, 0]}, setting=day)
    assert gas["difference"]["price_fell"] == 0


def test_validation_script_scores_held_out_days(tmp_path):
    """scripts/validate_merit.py fits up to --fit-end on --fit-days days and scores the days of
    --val only; the row records what it fitted and is appended to --out."""
    from scripts import validate_merit

    out = tmp_path / "val.jsonl"
    args = ["--fit-end", "2016-02-29", "--fit-days", "30", "--val", "2016-03-01:2016-03-07"]
    row = validate_merit.main([*args, "--out", str(out), "algo.iterations=3"])
    assert row["fit_days"] == 30 and row["val_days"] == 7
    assert np.isfinite(row["val_mae"]) and row["val_mse"] >= row["val_mae"] ** 2 - 1e-9
    assert row["regret_val"] <= 1e-6
    assert len(out.read_text().splitlines()) == 1
    # --start-jitter moves the start by rounding's size: the same fit, not the same digits
    jittered = validate_merit.main(
        [*args, "--out", str(out), "--start-jitter", "1", "algo.iterations=3"]
    )
    assert jittered["start_jitter"] == 1 and row["start_jitter"] == 0
    assert jittered["theta"] != row["theta"]
    assert len(out.read_text().splitlines()) == 2
