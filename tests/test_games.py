"""The game base classes: validation, the horizon-1 view, and the PettingZoo face."""

import numpy as np
import pytest
import torch

from imitgame import StaticGame
from imitgame.errors import ImitgameError
from imitgame.testing import check_game
from tests.support import QuadraticGame


def make(**overrides):
    kwargs = dict(
        n_agents=2,
        action_dim=1,
        action_low=0.0,
        action_high=1.0,
        param_names=["t"],
        param_low=0.0,
        param_high=1.0,
        true_params=[0.5],
    )
    kwargs.update(overrides)
    return StaticGame(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"param_low": 2.0}, "empty or inverted: t"),
        ({"action_high": 0.0}, "action bounds are empty or inverted"),
        ({"true_params": [3.0]}, "t=3 not in"),
        ({"true_params": [0.1, 0.2]}, "2 entries"),
        ({"n_agents": 0}, "n_agents"),
        ({"param_names": []}, "at least one parameter"),
        ({"param_low": [0.0, 1.0]}, "do not fit"),
    ],
)
def test_bad_game_definitions(overrides, message):
    with pytest.raises(ImitgameError, match=message):
        make(**overrides)


def test_static_game_is_the_horizon_one_markov_game():
    game = QuadraticGame()
    assert game.horizon == 1 and game.discount == 1.0
    theta = game.true_params
    actions = torch.tensor([[0.3], [0.7]])
    state = game.initial_state(theta, torch.zeros(0))
    assert torch.equal(game.reward(state, actions, theta), game.payoffs(actions, theta))
    assert torch.equal(game.transition(state, actions, theta, torch.zeros(0)), state)


def test_parallel_env_face():
    game = QuadraticGame()
    obs, infos = game.reset(seed=3)
    assert set(obs) == {"agent_0", "agent_1"} and set(infos) == set(obs)
    assert game.action_space("agent_0") is game.action_space("agent_0")
    actions = {"agent_0": np.array([1.0], np.float32), "agent_1": np.array([2.0], np.float32)}
    _, rewards, terminations, truncations, _ = game.step(actions)
    expected = game.payoffs(torch.tensor([[1.0], [2.0]]), game.true_params)
    assert rewards["agent_0"] == pytest.approx(expected[0].item())
    assert all(truncations.values()) and not any(terminations.values())
    assert game.agents == []
    with pytest.raises(RuntimeError):
        game.step(actions)


def test_check_game_accepts_a_minimal_user_game():
    report = check_game(QuadraticGame())
    assert "pettingzoo.parallel_api_test" in report.checks and "batching" in report.checks


class _UnbatchedGame(QuadraticGame):
    """A typical user bug: summing over the wrong axis mixes instances."""

    def payoffs(self, actions, theta, context=None):
        a = actions[..., 0]
        return -((a - theta) ** 2) + 0.1 * a * a.sum()


class _WrongShapeGame(QuadraticGame):
    def payoffs(self, actions, theta, context=None):
        return super().payoffs(actions, theta).sum(-1)


@pytest.mark.parametrize(
    ("game", "message"),
    [(_UnbatchedGame(), "batched reward differs"), (_WrongShapeGame(), "reward has shape")],
)
def test_check_game_catches_broken_games(game, message):
    with pytest.raises(AssertionError, match=message):
        check_game(game)
