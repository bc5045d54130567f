"""Games used only by the tests."""

from __future__ import annotations

import torch
from torch import Tensor

from envs.cournot import Cournot
from imitgame import StaticGame


class QuadraticGame(StaticGame):
    """u_i = −(a_i − θ_i)² + 0.1 a_i a_j for two players; the equilibrium solves a 2×2 system."""

    def __init__(self, true_params: tuple[float, float] = (1.0, 2.0)) -> None:
        super().__init__(
            n_agents=2,
            action_dim=1,
            action_low=-10.0,
            action_high=10.0,
            param_names=["t0", "t1"],
            param_low=-5.0,
            param_high=5.0,
            true_params=true_params,
        )

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        a = actions[..., 0]
        others = a.sum(-1, keepdim=True) - a
        return -((a - theta) ** 2) + 0.1 * a * others


class IsoelasticCournot(Cournot):
    """Cournot with isoelastic inverse demand P(Q) = a·Q^(-1/ε): only ``inverse_demand`` changes."""

    def __init__(self, elasticity: float = 1.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.elasticity = elasticity

    def inverse_demand(self, total: Tensor, theta: Tensor, context: Tensor | None) -> Tensor:
        a, _ = self.demand(theta, context)
        return a * total.clamp(min=1e-6) ** (-1.0 / self.elasticity)


class ExplodingCournot(Cournot):
    """Payoffs turn NaN once any cost estimate drops below 45 (to test divergence handling)."""

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        u = super().payoffs(actions, theta, context)
        bad = (self.marginal_costs(theta) < 45).any(-1, keepdim=True)
        return torch.where(bad, torch.full_like(u, float("nan")), u)
