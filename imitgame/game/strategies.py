"""Strategies: what a joint profile π or a deviation ρ is to the rollout.

A :class:`Strategy` maps per-agent observations ``[..., n_agents, obs_dim]`` at time ``t`` to an
:class:`ActionSample` with actions ``[..., n_agents, action_dim]``. One-shot games use
:class:`ActionProfile` (one action per instance and observation); Markov games use policy
networks with the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class ActionSample:
    """Joint actions ``[..., n, d]`` and, for stochastic strategies, log π(a|o) ``[..., n]``."""

    actions: Tensor
    log_prob: Tensor | None = None


class Strategy(nn.Module):
    """A joint strategy of all agents. Learnable parameters have the instance dim K first."""

    def act(self, obs: Tensor, t: int) -> ActionSample:
        raise NotImplementedError

    def project(self) -> None:
        """Project learnable parameters onto their feasible set after an optimiser step."""


class ActionProfile(Strategy):
    """Open-loop actions ``[K, B, n, d]`` for a one-shot game, bounded to ``[low, high]``.

    ``learnable=True`` makes the actions an ``nn.Parameter`` (a forward solver's π or a
    destabilizer's ρ); otherwise they are a fixed buffer (observed behaviour π†).
    """

    def __init__(
        self, actions: Tensor, low: Tensor, high: Tensor, *, learnable: bool = True
    ) -> None:
        super().__init__()
        actions = actions.detach().clone()
        if learnable:
            self.actions = nn.Parameter(actions)
        else:
            self.register_buffer("actions", actions)
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())

    def act(self, obs: Tensor, t: int) -> ActionSample:
        return ActionSample(self.actions)

    @torch.no_grad()
    def project(self) -> None:
        self.actions.copy_(torch.maximum(torch.minimum(self.actions, self.high), self.low))
