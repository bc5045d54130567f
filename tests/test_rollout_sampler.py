"""The batched trajectory sampler: shapes, seeding, pathwise gradients."""

import torch

from envs.fish_war import FishWar
from imitgame.solver.rollout import sample_trajectories


def test_sample_trajectories_shapes_seed_and_gradient() -> None:
    game = FishWar().double()
    theta = game.true_params[None].clone().requires_grad_(True)
    policy = game.equilibrium_policy(theta.detach())
    gen = torch.Generator().manual_seed(3)
    traj = sample_trajectories(game, theta, policy, (1, 16), generator=gen)
    t, n = game.horizon, game.n_agents
    assert traj.states.shape == (t, 1, 16, 2)
    assert traj.observations.shape == (t, 1, 16, n, 2)
    assert traj.actions.shape == (t, 1, 16, n, 1)
    assert traj.rewards.shape == (t, 1, 16, n)
    assert traj.returns.shape == (1, 16, n)
    again = sample_trajectories(
        game, theta, policy, (1, 16), generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(traj.rewards, again.rewards)
    (grad,) = torch.autograd.grad(traj.returns.sum(), theta)
    assert torch.isfinite(grad).all() and grad[0, 0].abs() > 0
