"""The VMAS adapter: the game contract, the state bridge, gradients, and a tiny expert run."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vmas")

from imitgame.adapters.vmas import VmasGame  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from imitgame.testing import check_game  # noqa: E402

NAV = dict(
    features=["goal_distance", "agent_proximity", "control_effort"],
    weights=[1.0, 0.5, 0.3],
    learn=["goal_distance", "agent_proximity"],
    scenario_kwargs={"n_agents": 2},
    initial_pool=64,
    horizon=4,
)


@pytest.fixture(scope="module")
def nav() -> VmasGame:
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            return VmasGame("navigation", **NAV)
        finally:
            torch.set_default_dtype(torch.float32)


def test_check_game_passes(nav: VmasGame) -> None:
    report = check_game(nav)
    assert "gradcheck(reward, transition)" in report.checks
    assert "batching" in report.checks


def test_transition_is_vmas_physics(nav: VmasGame) -> None:
    """One adapter step from a state equals VMAS's own env.step from the same state."""
    import vmas

    from imitgame.adapters.vmas import _float32_default, _read_state, _write_state

    theta = nav.true_params[None]
    state = nav.initial_state(theta, torch.randn(5, 1, dtype=torch.float64))
    actions = torch.rand(5, 2, 2, dtype=torch.float64) * 2 - 1
    ours = nav.transition(state, actions, theta, torch.zeros(5, 1))
    with _float32_default():
        env = vmas.make_env("navigation", num_envs=5, continuous_actions=True, n_agents=2)
        env.reset()
        _write_state(env.world, state.float())
        env.step([actions[:, i].float() for i in range(2)])
        theirs = _read_state(env.world)
    assert torch.allclose(ours.float(), theirs, atol=1e-5)
    # the agents moved, the goals did not
    assert not torch.allclose(nav.agent_pos(ours), nav.agent_pos(state))
    assert torch.equal(ours[:, :12], state[:, :12])


def test_rows_share_initial_states_and_rollouts_are_reproducible(nav: VmasGame) -> None:
    from imitgame.game.policies import make_policy
    from imitgame.solver.rollout import sample_trajectories

    policy = make_policy(nav, 1, "deterministic", []).double()
    theta = nav.true_params[None]
    runs = [
        sample_trajectories(nav, theta, policy, (1, 6), generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert torch.equal(runs[0].states, runs[1].states)
    # the noise picks a pool state: identical noise, identical start (what the n + 1 rows share)
    z = torch.full((3, 1), 0.3, dtype=torch.float64)
    starts = nav.initial_state(theta, z)
    assert torch.equal(starts[0], starts[1]) and torch.equal(starts[1], starts[2])


def test_pathwise_gradient_flows_through_the_simulator(nav: VmasGame) -> None:
    theta = nav.true_params[None]
    state = nav.initial_state(theta, torch.zeros(1, 1, dtype=torch.float64))
    actions = torch.zeros(1, 2, 2, dtype=torch.float64, requires_grad=True)
    nxt = nav.transition(state, actions, theta, torch.zeros(1, 1))
    nxt2 = nav.transition(nxt, torch.zeros_like(actions), theta, torch.zeros(1, 1))
    (grad,) = torch.autograd.grad(nav.reward(nxt2, torch.zeros_like(actions), theta).sum(), actions)
    assert grad.abs().sum() > 0  # a push now changes the distance to the goal two steps later


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(ImitgameError, match="unknown VMAS reward feature"):
        VmasGame("navigation", features=["nope"], weights=[1.0])
    with pytest.raises(ImitgameError, match="weights for"):
        VmasGame("navigation", features=["goal_distance"], weights=[1.0, 2.0])
    with pytest.raises(ImitgameError, match="make_env"):
        VmasGame("no_such_scenario", features=["control_effort"], weights=[1.0])
