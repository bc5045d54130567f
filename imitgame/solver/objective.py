"""The min-max objective L(θ, π, ρ) = Σ_k [L_obs,k(θ, π) + λ ψ_k(π, ρ; θ)] over K instances.

The stabilizer descends it, the destabilizer ascends it (L_obs does not depend on ρ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from imitgame.game.base import MarkovGame
from imitgame.solver.destabilizer import Destabilizer
from imitgame.solver.regret import Baseline, Estimator, estimate_regret
from imitgame.solver.stabilizer import Stabilizer


@dataclass
class ObjectiveTerms:
    """``loss`` scalar to differentiate; per instance: ``value [K]`` = L_obs + λψ,
    ``regret [K]``, ``gains [K, n]``, ``observation_loss [K]`` or None."""

    loss: Tensor
    value: Tensor
    regret: Tensor
    gains: Tensor
    observation_loss: Tensor | None


class MinMaxObjective:
    """Binds a game, the two players and the observations' batch layout.

    ``batch_shape = (K, B)``; ``state0 [K, B, state_dim]`` fixes initial states (contexts of
    one-shot games); ``generator`` drives the rollout shocks of stochastic games.
    """

    def __init__(
        self,
        game: MarkovGame,
        stabilizer: Stabilizer,
        destabilizer: Destabilizer,
        *,
        batch_shape: Sequence[int],
        state0: Tensor | None = None,
        estimator: Estimator = "pathwise",
        regret_weight: float = 1.0,
        baseline: Baseline = "batch_mean",
        entropy_weight: float = 0.0,
        generator: torch.Generator | None = None,
        smoothing_sigma: float = 0.05,
        smoothing_samples: int = 8,
        positive_gains: bool = False,
    ) -> None:
        self.game = game
        self.stabilizer = stabilizer
        self.destabilizer = destabilizer
        self.batch_shape = tuple(batch_shape)
        self.state0 = state0
        self.estimator = estimator
        self.baseline = baseline
        self.entropy_weight = entropy_weight
        self.regret_weight = regret_weight
        self.generator = generator
        self.smoothing_sigma = smoothing_sigma  # estimator=zeroth_order: σ and directions
        self.smoothing_samples = smoothing_samples
        self.positive_gains = positive_gains  # θ's gradient from Σ_i max(gain_i, 0)

    def __call__(self, stabilizer: Stabilizer | None = None) -> ObjectiveTerms:
        stab = self.stabilizer if stabilizer is None else stabilizer
        estimate = estimate_regret(
            self.game,
            stab.theta(),
            stab.profile(),
            self.destabilizer.deviation(stab),
            batch_shape=self.batch_shape,
            state0=self.state0,
            generator=self.generator,
            estimator=self.estimator,
            baseline=self.baseline,
            entropy_weight=self.entropy_weight,
            smoothing_sigma=self.smoothing_sigma,
            smoothing_samples=self.smoothing_samples,
            positive_gains=self.positive_gains,
        )
        obs_loss = stab.observation_loss()
        value = self.regret_weight * estimate.regret
        loss = self.regret_weight * estimate.surrogate
        if obs_loss is not None:
            value = value + obs_loss
            loss = loss + obs_loss.sum()
        return ObjectiveTerms(
            loss=loss,
            value=value,
            regret=estimate.regret,
            gains=estimate.gains,
            observation_loss=obs_loss,
        )
