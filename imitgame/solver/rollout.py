"""Batched rollouts of a joint strategy in a :class:`MarkovGame`: one tensor program.

All episodes (instances × environments × deviation rows) advance together; the only Python loop
is over the horizon. Gradients flow through rewards and transitions (pathwise) wherever the game
and the strategy are differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from imitgame.game.base import MarkovGame
from imitgame.game.strategies import Strategy


@dataclass
class Trajectory:
    """Batched episodes; ``T`` = horizon, ``...`` = batch shape.

    states ``[T, ..., state_dim]`` (the state each action was taken in),
    observations ``[T, ..., n, obs_dim]``,
    actions ``[T, ..., n, d]``, log_probs ``[T, ..., n]`` or None, rewards ``[T, ..., n]``.
    """

    states: Tensor
    observations: Tensor
    actions: Tensor
    log_probs: Tensor | None
    rewards: Tensor
    discount: float

    @property
    def discounts(self) -> Tensor:
        """γ^t as ``[T, 1, ..., 1]`` to broadcast against rewards."""
        horizon = self.rewards.shape[0]
        powers = self.discount ** torch.arange(
            horizon, device=self.rewards.device, dtype=self.rewards.dtype
        )
        return powers.view(horizon, *([1] * (self.rewards.dim() - 1)))

    @property
    def returns(self) -> Tensor:
        """Discounted returns Σ_t γ^t r_t, ``[..., n]``."""
        return (self.discounts * self.rewards).sum(0)

    @property
    def rewards_to_go(self) -> Tensor:
        """Σ_{t' ≥ t} γ^{t'} r_{t'}, ``[T, ..., n]`` (for score-function gradients)."""
        discounted = self.discounts * self.rewards
        return discounted.flip(0).cumsum(0).flip(0)


def episode_generator(game: MarkovGame, seed: int) -> torch.Generator:
    """A seeded generator of episode shocks on the game's device."""
    return torch.Generator(device=game.device).manual_seed(seed)


def sample_episode_noise(
    game: MarkovGame, batch_shape: Sequence[int], generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Episode shocks: initial ``[..., noise_dim]`` and per-step ``[T, ..., noise_dim]``."""
    initial = game.sample_noise(tuple(batch_shape), generator)
    steps = game.sample_noise((game.horizon, *batch_shape), generator)
    return initial, steps


def rollout(
    game: MarkovGame,
    theta: Tensor,
    strategy: Strategy,
    *,
    initial_noise: Tensor,
    step_noise: Tensor,
    state0: Tensor | None = None,
    batch_shape: Sequence[int] | None = None,
) -> Trajectory:
    """Play ``strategy`` for ``game.horizon`` steps.

    ``theta`` must broadcast against the batch (e.g. ``[K, 1, p]`` for batch ``[D, K, B]``).
    ``state0`` (e.g. observed contexts) replaces the initial-state draw when given; the state is
    expanded to ``batch_shape`` if that is larger (deviation rows share the same shocks, i.e.
    common random numbers, which lowers the variance of regret estimates).
    """
    state = game.initial_state(theta, initial_noise) if state0 is None else state0
    if batch_shape is not None:
        state = state.expand(*batch_shape, state.shape[-1])
    states, observations, actions, log_probs, rewards = [state], [], [], [], []
    for t in range(game.horizon):
        obs = game.observe(state)
        sample = strategy.act(obs, t)
        reward = game.reward(state, sample.actions, theta)
        observations.append(obs)
        actions.append(sample.actions.expand(*reward.shape, sample.actions.shape[-1]))
        rewards.append(reward)
        if sample.log_prob is not None:
            log_probs.append(sample.log_prob)
        if t + 1 < game.horizon:
            state = game.transition(state, sample.actions, theta, step_noise[t])
            states.append(state)
    return Trajectory(
        states=_stack(states),
        observations=_stack(observations),
        actions=_stack(actions),
        log_probs=_stack(log_probs) if log_probs else None,
        rewards=_stack(rewards),
        discount=game.discount,
    )


def _stack(steps: list[Tensor]) -> Tensor:
    """``[T, ...]`` from T per-step tensors. One step (a one-shot game) is a view, not a copy:
    its state is the observed contexts expanded over the deviation rows, which torch.stack would
    materialise n + 1 times at every iteration."""
    return steps[0].unsqueeze(0) if len(steps) == 1 else torch.stack(steps)


def sample_trajectories(
    game: MarkovGame,
    theta: Tensor,
    strategy: Strategy,
    batch_shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    state0: Tensor | None = None,
) -> Trajectory:
    """Sample ``batch_shape`` episodes (e.g. ``(K, B)``) of a joint ``strategy`` under
    ``theta [K, p]`` (or any shape broadcasting to ``[*batch_shape, p]``).

    Shocks come from ``generator``; a stochastic strategy draws its actions from torch's global
    generator (seed it with ``torch.manual_seed``). Everything lives on the game's device.
    """
    batch_shape = tuple(batch_shape)
    theta = theta.to(device=game.device, dtype=game.dtype)
    if theta.dim() == 2 and len(batch_shape) == 2:
        theta = theta.view(theta.shape[0], 1, theta.shape[-1])
    initial_noise, step_noise = sample_episode_noise(game, batch_shape, generator)
    return rollout(
        game,
        theta,
        strategy,
        initial_noise=initial_noise,
        step_noise=step_noise,
        state0=state0,
        batch_shape=batch_shape,
    )
