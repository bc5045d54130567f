"""Counterfactuals of finished runs (:mod:`imitgame.run.counterfactual`, scripts/counterfactual.py):
Cournot, the fish war and the electricity market, each from its own tiny run, with the
economics' sanity checks (dearer firm → it sells less and the price rises; one firm fewer → the
price never falls; more wind → the fitted market's price moves with its fitted demand)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from envs.electricity import ElectricityMarket
from envs.electricity.features import scale_wind_features
from imitgame.errors import ImitgameError
from imitgame.run.counterfactual import FIGURE, counterfactual, parse_assignments
from imitgame.run.runner import build_game, run
from scripts.counterfactual import main
from tests.conftest import compose_config

QUICK = ("progress=false", "device=cpu")
FAST = {"tol_exploitability": 1e-9}  # forward solver: stop a little earlier than the default


def finished_run(folder: Path, env: str, *overrides: str) -> Path:
    """A finished run of ``env`` in ``folder`` (``python train.py env=ENV *overrides``)."""
    run(compose_config(f"env={env}", *QUICK, *overrides), folder, env_name=env)
    return folder


@pytest.fixture(scope="module")
def cournot_run(tmp_path_factory) -> Path:
    return finished_run(tmp_path_factory.mktemp("cournot") / "run", "cournot")


@pytest.fixture(scope="module")
def fish_run(tmp_path_factory) -> Path:
    return finished_run(
        tmp_path_factory.mktemp("fish") / "run",
        "fish_war",
        "algo.iterations=20",
        "algo.environments=32",
        "algo.eval_environments=64",
        "algo.best_response_steps=20",
    )


@pytest.fixture(scope="module")
def market_run(tmp_path_factory) -> Path:
    """A simulacral fit of a synthetic market (48 random hours)."""
    return finished_run(
        tmp_path_factory.mktemp("market") / "run",
        "electricity",
        "env.data_path=null",
        "env.synthetic_hours=48",
        "algo.iterations=100",
    )


def theta_hat(run_dir: Path) -> torch.Tensor:
    return torch.tensor(json.loads((run_dir / "results.json").read_text())["theta_hat"])


def cournot_equilibrium(costs: list[float], a: float, b: float) -> list[float]:
    """q_i* = (a − (N+1)c_i + Σc) / ((N+1) b), all firms active."""
    n = len(costs)
    return [(a - (n + 1) * c + sum(costs)) / ((n + 1) * b) for c in costs]


# --- Cournot --------------------------------------------------------------------------------------
def test_a_dearer_firm_sells_less_and_the_price_rises(cournot_run):
    report = counterfactual(cournot_run, {"c_0": 25.0}, name="dearer", solver=FAST)
    folder = cournot_run / "counterfactuals" / "dearer"
    assert Path(report["path"]) == folder / "counterfactual.json"
    assert (folder / FIGURE).is_file()
    saved = json.loads((folder / "counterfactual.json").read_text())
    assert saved["changes"] == {"c_0": 25.0} and saved["name"] == "dearer"
    before, after, diff = saved["before"], saved["after"], saved["difference"]
    assert diff["mean_actions"]["firm_0"] < 0 < diff["mean_price"]
    assert diff["mean_actions"]["firm_1"] > 0 and diff["mean_actions"]["firm_2"] > 0
    # the trainer's answer against the closed form q* = (a − (N+1)c_i + Σc) / ((N+1)b)
    c_hat, a, b = theta_hat(cournot_run)[:3].tolist(), 100.0, 1.0
    expected = cournot_equilibrium([25.0, *c_hat[1:]], a, b)
    solved = [after["mean_actions"][f"firm_{i}"] for i in range(3)]
    assert solved == pytest.approx(expected, abs=1e-3)
    assert after["mean_price"] == pytest.approx(a - b * sum(expected), abs=1e-3)
    for side in (before, after):
        assert 0 <= side["exploitability"] < 1e-6
        assert side["closed_form"]["max_abs_action_difference"] < 1e-3
    assert saved["parameters"]["changed"]["c_0"] == [pytest.approx(c_hat[0]), 25.0]
    assert "inverse_demand" in saved["method"]["prices"]
    assert saved["method"]["exploitability"].startswith("exact")
    assert saved["intervals"] is None and "no intervals" in saved["interval_note"]
    assert "ranges" not in saved


def test_a_forward_solve_stopped_early_says_so(cournot_run):
    """A solve cut at 3 iterations is above its tolerance: the report's notes and
    ``method["converged"]`` say so; the full solve converges and adds no note."""
    report = counterfactual(cournot_run, {"c_0": 25.0}, solver={**FAST, "iterations": 3})
    assert report["method"]["converged"] == {"before": False, "after": False}
    assert any("after equilibrium did not converge" in note for note in report["notes"])
    full = counterfactual(cournot_run, {"c_0": 25.0}, solver=FAST)
    assert full["method"]["converged"] == {"before": True, "after": True}
    assert not any("did not converge" in note for note in full["notes"])


def test_removing_any_firm_never_lowers_the_price(cournot_run):
    c_hat = theta_hat(cournot_run)[:3].tolist()
    for i in (0, 1):  # the cheapest and a middle firm (the dearest: below, by env.n_firms)
        report = counterfactual(cournot_run, {}, remove_agent=[i], solver=FAST)
        assert report["name"] == f"remove_agent={i}"
        assert report["removed_agents"] == [f"firm_{i}"]
        assert report["parameters"]["dropped"] == [f"c_{i}"]
        assert report["parameters"]["env"]["n_firms"] == [3, 2]
        kept = [j for j in range(3) if j != i]
        assert report["after"]["agents"] == [f"firm_{j}" for j in kept]  # the run's names
        assert report["difference"]["mean_price"] >= -1e-9
        expected = cournot_equilibrium([c_hat[j] for j in kept], 100.0, 1.0)
        solved = [report["after"]["mean_actions"][f"firm_{j}"] for j in kept]
        assert solved == pytest.approx(expected, abs=1e-3)
    # lowering env.n_firms without saying which firm removes the last one, and says so
    report = counterfactual(cournot_run, {"env.n_firms": 2}, solver=FAST)
    assert report["removed_agents"] == ["firm_2"] and "firm_2" in report["notes"][0]
    assert report["difference"]["mean_price"] > 0


def test_an_env_input_changes_the_game_and_a_new_firm_needs_its_cost(cournot_run):
    report = counterfactual(cournot_run, {"env.demand_shifters": [1.2]}, solver=FAST)
    assert report["parameters"]["env"]["demand_shifters"] == [None, [1.2]]
    assert report["difference"]["mean_price"] > 0
    assert all(v > 0 for v in report["difference"]["mean_actions"].values())
    with pytest.raises(ImitgameError, match="c_3 have no fitted value"):
        counterfactual(cournot_run, {"env.n_firms": 4})
    report = counterfactual(cournot_run, {"env.n_firms": 4, "c_3": 12.0}, solver=FAST)
    assert report["after"]["agents"][-1] == "firm_3 (new)"
    assert report["difference"]["mean_price"] < 0  # entry lowers the price


def test_intervals_are_solved_at_their_ends(cournot_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(cournot_run, run_dir, ignore=shutil.ignore_patterns("counterfactuals"))
    results = json.loads((run_dir / "results.json").read_text())
    results["intervals"] = {"c_0": [9.0, 11.0], "c_1": [14.0, 16.0]}
    (run_dir / "results.json").write_text(json.dumps(results))
    report = counterfactual(run_dir, {"c_0": 25.0}, solver=FAST)
    ranges = report["ranges"]
    assert ranges["variants"] == ["estimate", "c_0=low", "c_0=high", "c_1=low", "c_1=high"]
    price = report["before"]["mean_price"]
    low, high = ranges["before"]["mean_price"]
    # P* = (a + Σc) / (N + 1) b: each cost's interval moves it by ±1/4
    assert low == pytest.approx(price - 0.25, abs=1e-3)
    assert high == pytest.approx(price + 0.25, abs=1e-3)
    # after the change c_0 is 25 in every variant: only c_1's interval moves the price
    low, high = ranges["after"]["mean_price"]
    assert high - low == pytest.approx(0.5, abs=1e-3)
    low, high = ranges["difference"]["mean_price"]
    assert low <= report["difference"]["mean_price"] <= high
    assert report["intervals"]["c_0"] == [9.0, 11.0] and "one at a time" in report["interval_note"]


def test_bad_changes_are_one_line_errors(cournot_run, tmp_path):
    cases = [
        ({"alpha": 0.5}, {}, "unknown change 'alpha'"),
        ({"c_0": 500.0}, {}, r"c_0=500 lies outside its bounds \[0, 100\]"),
        ({"c_0": "dear"}, {}, "is not a number"),
        ({}, {"remove_agent": [3]}, r"remove_agent \[3\]: the game has agents 0..2"),
        ({}, {"remove_agent": [0], "instance": 2}, "instance 2 is out of range"),
        ({"env.n_firms": 1}, {"remove_agent": [0]}, "does not match removing 1 of 3"),
        ({"env.no_such_option": 1}, {}, "the changed game: env: unknown option 'no_such_option'"),
        ({"c_0": 20.0}, {"name": "../elsewhere"}, "is not a plain folder name"),
    ]
    for changes, kwargs, message in cases:
        with pytest.raises(ImitgameError, match=message):
            counterfactual(cournot_run, changes, **kwargs)
    with pytest.raises(ImitgameError, match="no config.yaml"):
        counterfactual(tmp_path, {"c_0": 1.0})
    with pytest.raises(ImitgameError, match="is not KEY=VALUE"):
        parse_assignments(["c_0"])
    assert parse_assignments(["c_0=25", "env.demand_shifters=[1.2,0.8]", "env.x=null"]) == {
        "c_0": 25,
        "env.demand_shifters": [1.2, 0.8],
        "env.x": None,
    }


def test_the_command_line(cournot_run, capsys):
    assert main([str(cournot_run), "c_1=12", "--name", "cli", "--solver", "iterations=3000"]) == 0
    out = capsys.readouterr().out
    assert "mean price" in out and "firm_1" in out and "no intervals" in out
    report = json.loads((cournot_run / "counterfactuals/cli/counterfactual.json").read_text())
    assert report["method"]["solver_config"]["iterations"] == 3000
    assert main([str(cournot_run), "nope=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown change 'nope'") and len(err.strip().splitlines()) == 1


# --- a Markov game: the fish war ------------------------------------------------------------------
def test_fish_war_paths_before_and_after(fish_run):
    alpha_hat = float(theta_hat(fish_run)[0])
    alpha = 0.3 if alpha_hat > 0.4 else 0.8
    solver = {"forward_iterations": 30}
    report = counterfactual(fish_run, {"alpha": alpha}, solver=solver)
    assert (Path(report["path"]).parent / FIGURE).is_file()
    assert report["parameters"]["changed"]["alpha"] == [pytest.approx(alpha_hat), alpha]
    for side in ("before", "after"):
        entry = report[side]
        assert len(entry["mean_action_path"]) == 10 and len(entry["mean_state_path"]) == 10
        assert entry["exploitability"] >= 0 and set(entry["mean_returns"]) == {"agent_0", "agent_1"}
        assert "closed_form" in entry
    assert "trained best response" in report["method"]["exploitability"]
    assert report["method"]["closed_form_check"] == "equilibrium_policy"
    # the MPE harvests k = (1 − αβ) / (n − (n − 1)αβ) of the stock: falling in α
    change = report["difference"]["closed_form"]["mean_actions"]
    assert all((v > 0) == (alpha < alpha_hat) for v in change.values())
    beta = 0.95
    k = (1 - alpha * beta) / (2 - alpha * beta)
    assert report["after"]["closed_form"]["mean_actions"]["agent_0"] == pytest.approx(k)

    # one player fewer: a sole owner harvests 1 − αβ < 2k (less fishing in total)
    report = counterfactual(fish_run, {}, remove_agent=[1], solver=solver)
    assert report["parameters"]["env"]["n_players"] == [2, 1]
    assert report["after"]["agents"] == ["agent_0"]
    sole = report["after"]["closed_form"]["mean_actions"]["agent_0"]
    assert sole == pytest.approx(1 - alpha_hat * beta)
    before = report["before"]["closed_form"]["mean_actions"]
    assert before["agent_0"] < sole < before["agent_0"] + before["agent_1"]


# --- the electricity market -----------------------------------------------------------------------
def test_removing_a_generator_never_lowers_the_price_in_any_hour(market_run):
    for i in (0, 2):
        report = counterfactual(market_run, {}, remove_agent=[i], solver=FAST)
        assert report["parameters"]["env"]["costs"][1] == [
            c for j, c in enumerate([0, 1, 2]) if j != i
        ]
        diff = report["difference"]
        assert len(diff["prices"]) == 48 and diff["price_fell"] == 0
        assert min(diff["prices"]) > -1e-6
        assert "observation_map" in report["method"]["prices"]
        assert report["after"]["closed_form"]["max_abs_price_difference"] < 1e-4
        assert diff["price_change_by"]["label"] == "hour"


def test_more_wind_moves_each_hours_price_with_the_fitted_demand(market_run):
    """The equilibrium price rises with the demand intercept a(x) in every hour, so more wind
    lowers an hour's price exactly where the fitted a(x) falls with wind. The fitted a(x) is a
    free linear map of the features (the hour's wind forecast, its change since yesterday, the
    day's mean): nothing in the game signs its wind response, so "never raises the price" is
    checked where the fit says wind lowers demand, and the report counts the other hours."""
    same = counterfactual(market_run, {"env.wind_scale": 1.0}, solver=FAST)
    assert max(abs(p) for p in same["difference"]["prices"]) < 1e-4  # the solver's accuracy
    assert same["difference"]["price_unchanged"] == 48

    report = counterfactual(market_run, {"env.wind_scale": 1.5}, solver=FAST)
    assert report["parameters"]["env"]["wind_scale"] == [1.0, 1.5]
    cfg = OmegaConf.load(market_run / "config.yaml")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        game = build_game(cfg.env)
    finally:
        torch.set_default_dtype(previous)
    theta = theta_hat(market_run).double()
    contexts = game.observed_contexts()
    windy = scale_wind_features(contexts, 1.5)
    demand = game.intercept(theta, windy) - game.intercept(theta, contexts)  # Δa(x), [B]
    change = torch.tensor(report["difference"]["prices"], dtype=torch.float64)
    assert bool((change[demand <= 0] <= 1e-4).all())  # no rise where demand falls with wind
    clear = demand.abs() > 1e-2
    assert bool((torch.sign(change[clear]) == torch.sign(demand[clear])).all())
    rose = report["difference"]["price_rose"]
    assert int((demand > 1e-2).sum()) <= rose <= int((demand > 0).sum())


def test_dearer_generation_over_a_chosen_period_of_the_shipped_data(tmp_path):
    """A fit on two weeks of January 2016; the counterfactual plays two later days
    (``env.period`` before and after) with every marginal cost 10 EUR/MWh higher."""
    run_dir = finished_run(
        tmp_path / "run",
        "electricity",
        "env.train_start=2016-01-01",
        "env.train_end=2016-01-14",
        "algo.iterations=100",
    )
    report = counterfactual(
        run_dir,
        {"env.cost_shift": 10.0},
        setting={"env.period": ["2016-01-20", "2016-01-21"]},
        solver=FAST,
    )
    before, diff = report["before"], report["difference"]
    assert report["setting"] == {"period": ["2016-01-20", "2016-01-21"]}
    assert before["observations"] == 48
    assert set(before["labels"]["date"]) == {"2016-01-20", "2016-01-21"}
    assert isinstance(before["observed_mean"], float) and "observed_mean" not in report["after"]
    # every hour dearer, by less than the shift (3 Cournot generators pass part of it through)
    assert diff["price_rose"] == 48 and 0 < min(diff["prices"]) <= max(diff["prices"]) <= 10.0
    assert report["method"]["start"]["before"].startswith("warm start from profile_from_obs")


def test_wind_is_scaled_before_the_features_are_built():
    """Scaling the wind column of the data, then building the features, equals the affine map
    :func:`scale_wind_features` applies to built (or synthetic) features."""
    window = {"data_path": "spain", "period": ["2016-02-01", "2016-02-03"]}
    base = ElectricityMarket(**window).observed_contexts()
    windy = ElectricityMarket(**window, wind_scale=1.5).observed_contexts()
    assert torch.allclose(windy, scale_wind_features(base, 1.5), atol=1e-12)
    assert not torch.equal(windy, base)
    labels = ElectricityMarket(**window).observation_labels()
    assert labels["date"][0] == "2016-02-01" and labels["date"][-1] == "2016-02-03"
    assert pd.Series(labels["hour"]).nunique() == 24
    with pytest.raises(ImitgameError, match="wind_scale must be >= 0"):
        ElectricityMarket(data_path=None, synthetic_hours=5, wind_scale=-1.0)
