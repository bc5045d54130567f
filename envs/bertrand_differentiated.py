"""Differentiated-products Bertrand competition: N firms, heterogeneous costs, smooth demand.

Firm i sets p_i and earns u_i = (p_i − c_i) q_i(p). Two demand systems:

* ``linear``: q_i = α_i − β p_i + γ Σ_{j≠i} p_j (β > 0, substitutes γ ≥ 0, 2β > (N−1)γ).
  Best response p_i = (α_i + β c_i + γ Σ_{j≠i} p_j) / (2β); equilibrium
  P = Σ_i(α_i + β c_i) / (2β + γ − Nγ),  p_i* = (α_i + β c_i + γ P) / (2β + γ).
* ``logit``: q_i = M e^{α_i − β p_i} / (1 + Σ_j e^{α_j − β p_j}) (outside good). The best response
  solves β(p_i − c_i)(1 − s_i) = 1: p_i = c_i + (1 + W(e^{α_i − β c_i − 1} / A_i)) / β with
  A_i = 1 + Σ_{j≠i} e^{α_j − β p_j} and W the Lambert function; the equilibrium is the fixed point
  of best responses (a contraction here), iterated to convergence.

θ = (c_0..c_{N-1}, α_0..α_{N-1}, β, γ) (γ unused by logit). ``learn`` picks blocks among
``costs``, ``intercepts``, ``own_slope``, ``cross_slope``. With demand known, one observed market
identifies every cost (each first-order condition is linear in its own c_i with slope β·∂q_i/∂p_i
≠ 0); demand and costs together are not identified from one market.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import StaticGame
from imitgame.errors import ImitgameError

BLOCKS = ("costs", "intercepts", "own_slope", "cross_slope")


def lambert_w(x: Tensor, iterations: int = 30) -> Tensor:
    """Principal branch W(x) for x ≥ 0 (Halley's iteration from log1p(x))."""
    w = torch.log1p(x)
    for _ in range(iterations):
        ew = torch.exp(w)
        f = w * ew - x
        w = w - f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
    return w


class BertrandDifferentiated(StaticGame):
    """N-firm price competition with linear or logit differentiated demand."""

    def __init__(
        self,
        n_firms: int = 3,
        demand: str = "linear",
        costs: float | Sequence[float] | None = None,
        intercepts: float | Sequence[float] = 10.0,
        own_slope: float = 1.0,
        cross_slope: float = 0.2,
        market_size: float = 1.0,
        learn: Sequence[str] = ("costs",),
        cost_bounds: Sequence[float] = (0.0, 20.0),
        intercept_bounds: Sequence[float] = (0.0, 100.0),
        own_slope_bounds: Sequence[float] = (0.01, 10.0),
        cross_slope_bounds: Sequence[float] = (0.0, 10.0),
        max_price: float = 100.0,
    ) -> None:
        if n_firms < 1:
            raise ImitgameError(f"n_firms must be >= 1, got {n_firms}")
        if demand not in ("linear", "logit"):
            raise ImitgameError(f"demand={demand!r} is not one of linear, logit")
        unknown = [b for b in learn if b not in BLOCKS]
        if unknown:
            raise ImitgameError(f"learn: unknown block(s) {unknown}; choose from {list(BLOCKS)}")
        n = int(n_firms)
        dtype = torch.get_default_dtype()
        cost_t = (
            torch.linspace(1.0, 3.0, n)
            if costs is None
            else torch.as_tensor(costs, dtype=dtype).flatten().expand(n).clone()
        )
        alpha_t = torch.as_tensor(intercepts, dtype=dtype).flatten()
        alpha_t = alpha_t.expand(n).clone() if alpha_t.numel() == 1 else alpha_t
        if cost_t.numel() != n or alpha_t.numel() != n:
            raise ImitgameError(f"costs and intercepts need {n} entries each")
        if demand == "linear" and not 2 * own_slope > (n - 1) * cross_slope:
            raise ImitgameError(
                f"linear demand needs 2·own_slope > (N−1)·cross_slope for an equilibrium, got "
                f"{own_slope}, {cross_slope} with N={n}"
            )
        self.n_firms = n
        self.demand_kind = demand
        self.market_size = float(market_size)
        self.blocks = {
            "costs": list(range(n)),
            "intercepts": list(range(n, 2 * n)),
            "own_slope": [2 * n],
            "cross_slope": [2 * n + 1],
        }
        names = [f"c_{i}" for i in range(n)] + [f"alpha_{i}" for i in range(n)] + ["beta", "gamma"]
        bounds = [cost_bounds] * n + [intercept_bounds] * n + [own_slope_bounds]
        bounds.append(cross_slope_bounds)
        super().__init__(
            n_agents=n,
            action_dim=1,
            action_low=0.0,
            action_high=float(max_price),
            param_names=names,
            param_low=[float(b[0]) for b in bounds],
            param_high=[float(b[1]) for b in bounds],
            true_params=torch.cat(
                [cost_t, alpha_t, torch.tensor([float(own_slope), float(cross_slope)])]
            ),
            agent_names=[f"firm_{i}" for i in range(n)],
        )
        self.learned_params = [names[i] for b in learn for i in self.blocks[b]]

    def unpack(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """c ``[..., N]``, α ``[..., N]``, β ``[..., 1]``, γ ``[..., 1]``."""
        n = self.n_firms
        return theta[..., :n], theta[..., n : 2 * n], theta[..., 2 * n : 2 * n + 1], theta[..., -1:]

    def quantities(self, prices: Tensor, theta: Tensor) -> Tensor:
        """q(p) ``[..., N]`` for ``prices [..., N]``."""
        _, alpha, beta, gamma = self.unpack(theta)
        if self.demand_kind == "linear":
            others = prices.sum(-1, keepdim=True) - prices
            return alpha - beta * prices + gamma * others
        utility = alpha - beta * prices
        zero = torch.zeros_like(utility[..., :1])
        shares = torch.softmax(torch.cat([zero, utility], -1), -1)[..., 1:]
        return self.market_size * shares

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        p = actions[..., 0]
        c = self.unpack(theta)[0]
        return (p - c) * self.quantities(p, theta)

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        p = actions[..., 0]
        c, alpha, beta, gamma = self.unpack(theta)
        if self.demand_kind == "linear":
            others = p.sum(-1, keepdim=True) - p
            response = (alpha + beta * c + gamma * others) / (2 * beta)
        else:
            weights = torch.exp(alpha - beta * p)
            rest = 1 + weights.sum(-1, keepdim=True) - weights
            w = lambert_w(torch.exp(alpha - beta * c - 1) / rest)
            response = c + (1 + w) / beta
        return self.project_actions(response.unsqueeze(-1))

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        c, alpha, beta, gamma = self.unpack(theta)
        if self.demand_kind == "linear":
            base = alpha + beta * c
            total = base.sum(-1, keepdim=True) / (2 * beta + gamma - self.n_firms * gamma)
            prices = (base + gamma * total) / (2 * beta + gamma)
            return self.project_actions(prices.unsqueeze(-1))
        prices = (c + 1 / beta).unsqueeze(-1)
        for _ in range(500):
            nxt = self.best_response(prices, theta)
            if bool(((nxt - prices).abs() <= 1e-13 * (1 + prices.abs())).all()):
                return nxt
            prices = nxt
        return prices
