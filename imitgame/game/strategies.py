"""Strategies: what a joint profile π or a deviation ρ is to the rollout.

A :class:`Strategy` maps per-agent observations ``[..., n_agents, obs_dim]`` at time ``t`` to an
:class:`ActionSample` with actions ``[..., n_agents, action_dim]``. One-shot games use
:class:`ActionProfile` (one action per instance and observation); Markov games use policy
networks with the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
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

    #: True for a strategy computed from θ: ``under(theta)`` gives the one played
    #: (:class:`EquilibriumProfile`)
    derived_from_theta = False

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

    @classmethod
    def derived(cls, actions: Tensor, low: Tensor, high: Tensor) -> ActionProfile:
        """A profile that holds ``actions`` as given (no copy, gradient kept): actions computed
        from θ, which the profile does not own."""
        profile = cls.__new__(cls)
        Strategy.__init__(profile)
        profile.actions = actions
        profile.register_buffer("low", low)
        profile.register_buffer("high", high)
        return profile

    @torch.no_grad()
    def project(self) -> None:
        self.actions.copy_(torch.maximum(torch.minimum(self.actions, self.high), self.low))


class EquilibriumProfile(Strategy):
    """π(θ) = the game's equilibrium ``[K, B, n, d]`` in each context under the current θ: owned
    by nobody, differentiable in θ. A stabilizer holding it owns θ alone, and the equilibrium
    constraint ψ(π(θ); θ) = 0 holds by construction (the limit λ → ∞ of a learned profile when
    the equilibrium is unique), so θ can take quasi-Newton steps (``algo.optimizer=lbfgs``)."""

    derived_from_theta = True

    def __init__(self, equilibrium: Callable[[Tensor], Tensor], low: Tensor, high: Tensor) -> None:
        super().__init__()
        self.equilibrium = equilibrium  # θ [K, p] -> actions [K, B, n, d]
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())

    def under(self, theta: Tensor) -> ActionProfile:
        """The equilibrium profile under ``theta [K, p]``."""
        return ActionProfile.derived(self.equilibrium(theta), self.low, self.high)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        raise NotImplementedError("an equilibrium profile is played under a θ: use under(theta)")
