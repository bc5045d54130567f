"""Homogeneous-good Bertrand competition (the paper's experiment).

N firms post prices p_i ≥ 0 for one good with demand D(p) = max(0, a − b p). The cheapest firm
takes the market; firms tied at the lowest price split it:

    u_i(p; θ) = (p_i − c) D(p_i) · 1[p_i = m] / #{j : p_j = m},   m = min_j p_j,   θ = (c, a, b)

Equilibrium: every firm prices at cost, p_i* = c (zero profits). Payoffs jump at ties, so regret
is discontinuous in the actions; gradients in the actions are useless there. The game therefore
ships an exact best-response oracle (the supremum of profits against the others' prices is
approached by undercutting the cheapest rival by ``undercut``; matching, the monopoly price and
staying out are the other candidates), with which regret at observed prices is continuous and
piecewise linear in θ: ψ(ĉ) ≈ |ĉ − c| D(c) at the equilibrium p = c. For learned destabilizers
(no oracle) ``temperature > 0`` replaces the winner-takes-all split by a softmax of −p/τ, a smooth
surrogate whose τ → 0 limit is the game above (anneal τ by rebuilding the game).

Identifiability: p* = c identifies c when (a, b) are known; (a, b) never enter p*.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import StaticGame
from imitgame.errors import ImitgameError

BLOCKS = ("cost", "intercept", "slope")


class Bertrand(StaticGame):
    """N-firm homogeneous Bertrand game with linear demand and a common marginal cost."""

    def __init__(
        self,
        n_firms: int = 2,
        cost: float = 10.0,
        intercept: float = 100.0,
        slope: float = 1.0,
        learn: Sequence[str] = ("cost",),
        cost_bounds: Sequence[float] = (0.0, 100.0),
        intercept_bounds: Sequence[float] = (1.0, 1000.0),
        slope_bounds: Sequence[float] = (0.01, 100.0),
        max_price: float | None = None,
        undercut: float = 1e-6,
        temperature: float = 0.0,
    ) -> None:
        if n_firms < 2:
            raise ImitgameError(f"Bertrand needs n_firms >= 2, got {n_firms}")
        unknown = [b for b in learn if b not in BLOCKS]
        if unknown:
            raise ImitgameError(f"learn: unknown block(s) {unknown}; choose from {list(BLOCKS)}")
        if undercut <= 0 or temperature < 0:
            raise ImitgameError("undercut must be > 0 and temperature >= 0")
        if max_price is None:
            max_price = 2.0 * float(intercept) / float(slope)
        self.n_firms = int(n_firms)
        self.undercut = float(undercut)
        self.temperature = float(temperature)
        super().__init__(
            n_agents=n_firms,
            action_dim=1,
            action_low=0.0,
            action_high=float(max_price),
            param_names=["c", "a", "b"],
            param_low=[float(cost_bounds[0]), float(intercept_bounds[0]), float(slope_bounds[0])],
            param_high=[
                float(cost_bounds[1]),
                float(intercept_bounds[1]),
                float(slope_bounds[1]),
            ],
            true_params=[float(cost), float(intercept), float(slope)],
            agent_names=[f"firm_{i}" for i in range(n_firms)],
        )
        self.learned_params = [self.param_names[BLOCKS.index(b)] for b in learn]

    @staticmethod
    def unpack(theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """c, a, b each ``[..., 1]``."""
        return theta[..., 0:1], theta[..., 1:2], theta[..., 2:3]

    def demand(self, price: Tensor, theta: Tensor) -> Tensor:
        """D(p) = max(0, a − b p), elementwise in ``price [..., N]``."""
        _, a, b = self.unpack(theta)
        return (a - b * price).clamp(min=0)

    def shares(self, price: Tensor) -> Tensor:
        """Market shares ``[..., N]``: winner takes all, ties split (softmax of −p/τ if τ > 0)."""
        if self.temperature > 0:
            return torch.softmax(-price / self.temperature, dim=-1)
        lowest = price == price.amin(-1, keepdim=True)
        lowest = lowest.to(price.dtype)
        return lowest / lowest.sum(-1, keepdim=True)

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        p = actions[..., 0]
        c, _, _ = self.unpack(theta)
        return (p - c) * self.demand(p, theta) * self.shares(p)

    @property
    def has_equilibrium(self) -> bool:
        return self.temperature == 0  # p = c is not an equilibrium of the smoothed game

    @property
    def has_best_response(self) -> bool:
        return self.temperature == 0

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """p_i* = c for every firm (the unique equilibrium for N ≥ 2 and c < a/b)."""
        c, _, _ = self.unpack(theta)
        return self.project_actions(c.unsqueeze(-1).expand(*c.shape[:-1], self.n_firms, 1))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Best of four candidates per firm against the rivals' lowest price m (shared by k):
        undercut m − δ, match m (share 1/(k+1)), the monopoly price (a/b + c)/2 if below m, or
        stay out above m (zero profit). Exact up to δ = ``undercut``·(1 + m)."""
        if self.temperature > 0:
            raise NotImplementedError("the smoothed game has no closed-form best response")
        p = actions[..., 0]
        c, a, b = self.unpack(theta)
        n = self.n_firms
        # rivals' prices: row i of ``rivals`` is p with p_i replaced by +inf
        eye = torch.eye(n, dtype=torch.bool, device=p.device)
        rivals = torch.where(eye, torch.inf, p.unsqueeze(-2))  # [..., N, N]
        m = rivals.amin(-1)  # [..., N]
        k = (rivals == m.unsqueeze(-1)).sum(-1).to(p.dtype)
        high = self.action_high[:, 0]
        low = self.action_low[:, 0]
        monopoly = 0.5 * (a / b + c)
        delta = self.undercut * (1 + m.abs())
        under = torch.maximum(m - delta, low)
        mono = torch.minimum(monopoly.expand_as(m), under)
        out = torch.where(m < high, high, m)
        c3, a3, b3 = c.unsqueeze(-1), a.unsqueeze(-1), b.unsqueeze(-1)
        cand = torch.stack([under, m, mono, out], -1)  # [..., N, 4]
        share = torch.stack(
            [
                (under < m).to(p.dtype),
                1.0 / (k + 1),
                (mono < m).to(p.dtype),
                torch.where(out > m, 0.0, 1.0 / (k + 1)),
            ],
            -1,
        )
        profit = (cand - c3) * (a3 - b3 * cand).clamp(min=0) * share
        best = profit.argmax(-1, keepdim=True)
        return torch.gather(cand, -1, best)
