"""The destabilizer: the maximising player, who searches for profitable deviations ρ.

* :class:`LearnedDeviation` — ρ is a learnable :class:`Strategy` (deviation actions for one-shot
  games, one policy network per agent for Markov games) trained by gradient ascent on ψ;
* :class:`BestResponseOracle` — ρ = BR(π; θ) from a game's closed form: an exact max-oracle,
  recomputed at every evaluation (Danskin: ∇_θ max_ρ ψ = ∇_θ ψ at ρ = BR).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imitgame.errors import ImitgameError
from imitgame.game.base import StaticGame
from imitgame.game.strategies import ActionProfile, Strategy
from imitgame.solver.stabilizer import Stabilizer


class Destabilizer(nn.Module):
    def deviation(self, stabilizer: Stabilizer) -> Strategy:
        raise NotImplementedError

    def project(self) -> None:
        """Project ρ onto its feasible set after an ascent step."""


class LearnedDeviation(Destabilizer):
    """ρ as a learnable strategy with instance-leading parameters."""

    def __init__(self, strategy: Strategy) -> None:
        super().__init__()
        self.strategy = strategy

    def deviation(self, stabilizer: Stabilizer) -> Strategy:
        return self.strategy

    def project(self) -> None:
        self.strategy.project()


class BestResponseOracle(Destabilizer):
    """Exact best responses of a :class:`StaticGame` with a closed-form ``best_response``.

    ``state0 [K, B, state_dim]`` holds the observations' contexts (or None).
    """

    def __init__(self, game: StaticGame, state0: Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(game, StaticGame) or not game.has_best_response:
            raise ImitgameError(
                f"{type(game).__name__} has no closed-form best_response: "
                "use a learned destabilizer (algo.destabilizer=learned)"
            )
        self.game = game
        self.state0 = state0

    def deviation(self, stabilizer: Stabilizer) -> Strategy:
        profile = stabilizer.profile()
        if not isinstance(profile, ActionProfile):
            raise ImitgameError("the best-response oracle needs an open-loop action profile")
        theta = stabilizer.theta().detach()
        actions = profile.actions.detach()
        state = self.state0
        if state is None:
            state = self.game.default_context().expand(*actions.shape[:2], self.game.state_dim)
        with torch.no_grad():
            response = self.game.best_response_in(state, actions, theta[:, None, :])
        return ActionProfile(response, self.game.action_low, self.game.action_high, learnable=False)
