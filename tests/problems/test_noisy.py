"""algo.problem=noisy_inverse: θ and an equilibrium fitted jointly to noisy observed actions."""

from __future__ import annotations

import json

import torch

from envs.cournot import Cournot
from envs.fish_war import StationaryFishWar
from imitgame.config import AlgoConfig, DataConfig, NoisyConfig
from imitgame.problems import PROBLEMS, problem_spec
from imitgame.problems.inverse import build_inverse, observed_play
from imitgame.problems.noisy import build_noisy, solve_noisy
from imitgame.run import runner
from tests.conftest import compose_config


def test_registered_and_selectable(float64):
    assert "noisy_inverse" in PROBLEMS
    assert problem_spec("noisy_inverse", Cournot()).config is NoisyConfig


def test_stationary_fish_war_closed_forms_agree(float64):
    """The static reduction's equilibrium is the Markov game's MPE and a fixed point of its best
    response; its best response maximises the exact value."""
    game = StationaryFishWar(n_players=3)
    theta = torch.tensor([[0.6, 0.95], [0.3, 0.8]])
    eq = game.equilibrium(theta)
    assert torch.allclose(game.best_response(eq, theta), eq, atol=1e-12)
    others = torch.full((2, 3, 1), 0.2)
    br = game.best_response(others, theta)  # 0.258 (interior), 0.332 (at the box's edge)
    grid = torch.linspace(float(game.action_low[0, 0]), float(game.action_high[0, 0]), 2001)
    values = []
    for x in grid:
        acts = others.clone()
        acts[:, 0, 0] = x
        values.append(game.payoffs(acts, theta)[:, 0])
    best = grid[torch.stack(values).argmax(0)]
    assert torch.allclose(br[:, 0, 0], best, atol=1e-3)


def test_recovers_truth_from_noisy_data_where_the_naive_estimator_is_biased(float64):
    """Fish war, α learned, 20 % measurement error, B = 20,000: the joint fit is within 0.3 % of
    the truth (its sampling SE is ~0.07 %); the exploitability-of-noisy-data estimator stays
    more than 1 % off (its errors-in-variables bias, ~1.7 % at this noise)."""
    game = StationaryFishWar()
    data = DataConfig(noise_std=0.2, observations=20000)
    observed = observed_play(game, data, seed=1)
    joint = solve_noisy(game, observed, NoisyConfig())[0, 0]
    assert abs(float(joint) - 0.6) / 0.6 < 3e-3
    naive = build_inverse(game, observed, AlgoConfig(tol_exploitability=None, iterations=100))
    for _ in naive.trainer.iterate(progress=False):
        pass
    alpha_naive = float(naive.trainer.answer.theta().detach()[0, 0])
    assert abs(alpha_naive - 0.6) / 0.6 > 1e-2


def test_noise_free_data_give_the_truth_on_cournot(float64):
    game = Cournot(learn=["slope"])
    observed = observed_play(game, DataConfig(), seed=0)
    theta = solve_noisy(game, observed, NoisyConfig())
    assert abs(float(theta[0, -1]) - 1.0) < 1e-5


def test_profile_is_one_per_context(float64):
    """Observations without a context share one equilibrium: π is [K, 1, n, d]."""
    game = Cournot()
    observed = observed_play(game, DataConfig(noise_std=0.1, observations=30, instances=2), 0)
    problem = build_noisy(game, observed, NoisyConfig())
    assert tuple(problem.trainer.stabilizer.profile().actions.shape) == (2, 1, 3, 1)


def test_entry_point(tmp_path, float64):
    cfg = compose_config(
        "env=cournot",
        "algo.problem=noisy_inverse",
        "data.noise_std=0.05",
        "data.observations=50",
        "progress=false",
    )
    out = runner.run(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert out["problem"] == saved["problem"] == "noisy_inverse"
    assert saved["relative_error"] < 0.05


def test_stationary_fish_war_passes_check_game(float64):
    from imitgame.testing import check_game

    check_game(StationaryFishWar(n_players=3))


def test_stationary_values_are_the_markov_games_discounted_returns(float64):
    """V_i(k; θ) of the static reduction equals the deterministic fish war's discounted return of
    the constant-fraction profile k (long horizon: the terminal value weighs β^T ≈ 1e-9), and
    its equilibrium is FishWar's MPE fraction."""
    from envs.fish_war import FishWar

    theta = torch.tensor([0.6, 0.95])
    markov = FishWar(n_players=2, shock_std=0.0, initial_spread=0.0, horizon=400, initial_stock=2.0)
    static = StationaryFishWar(n_players=2, initial_stock=2.0)
    k = torch.tensor([[0.2], [0.35]])
    state = torch.tensor([2.0, 0.0])
    total = torch.zeros(2)
    for t in range(400):
        total = total + 0.95**t * markov.reward(state, k, theta)
        state = markov.transition(state, k, theta, torch.zeros(1))
    assert torch.allclose(static.payoffs(k, theta), total, rtol=1e-6)
    mpe = markov.mpe_fraction(theta)
    assert torch.allclose(static.equilibrium(theta)[..., 0], mpe.expand(2))
