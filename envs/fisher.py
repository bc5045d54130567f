"""Fisher markets as a game of n buyers against a seller.

n buyers with budgets B_i and valuations v_i ∈ R^m, m goods with supplies s_j. The competitive
equilibrium (p*, X*) solves the Eisenberg-Gale program

    max_X Σ_i B_i log u_i(x_i)   s.t.  Σ_i x_ij ≤ s_j,  x ≥ 0,          p* = its duals.

Its Lagrangian L(X, p) = Σ_i [B_i log u_i(x_i) − p·x_i] + p·s is a zero-sum game between the
buyers (maximising over X) and a seller (minimising over p); as an (n+1)-player game

    buyer i:  u_i = B_i log u_i(x_i) − p·x_i,        seller:  u_s = p·(Σ_i x_i − s),

and its exploitability (the sum of unilateral gains) is the Lagrangian duality gap
max_X L(X, p) − min_p L(X, p), zero exactly at the EG optimum. Every agent's action has m
entries: buyer i's bundle x_i, the seller's price vector p (the last agent).

Utilities (all homogeneous of degree 1, so a buyer facing p spends exactly B_i):

* ``linear``        u = v·x                 demand: all of B on a good maximising v_j / p_j
* ``cobb_douglas``  u = Π_j x_j^{v_j/Σv}    demand: x_j = B v_j / (Σv p_j)   (v only up to scale)
* ``leontief``      u = min_j x_j / v_j      demand: x = B v / (p·v)
* ``ces``           u = (Σ_j v_j x_j^ρ)^{1/ρ}, ρ < 1, ρ ≠ 0:
                    x_j = B (v_j/p_j)^σ / Σ_k p_k (v_k/p_k)^σ,  σ = 1/(1 − ρ)

θ = (B_0..B_{n-1}, v_00..v_{n-1,m-1}) (valuations row-major). ``learn`` picks blocks
``budgets`` and/or ``valuations``. Identifiability from one observed equilibrium: budgets equal
spending p*·x_i* (identified); Cobb-Douglas valuations are spending shares (identified up to
each buyer's scale, which the utility ignores: compare :meth:`canonical` parameters); linear
valuations are not identified (any v making the bought goods maximal bang-per-buck works).

Equilibria come from the EG program solved with cvxpy (:func:`eisenberg_gale`); Cobb-Douglas
has the closed form p_j = Σ_i B_i v̂_ij / s_j.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from imitgame import StaticGame
from imitgame.errors import ImitgameError

UTILITIES = ("linear", "cobb_douglas", "leontief", "ces")
BLOCKS = ("budgets", "valuations")


class Fisher(StaticGame):
    """Fisher market with ``n_buyers`` buyers, ``n_goods`` goods and one price-setting seller."""

    def __init__(
        self,
        n_buyers: int = 3,
        n_goods: int = 2,
        utility: str = "linear",
        budgets: float | Sequence[float] | None = None,
        valuations: Sequence[float] | Sequence[Sequence[float]] | None = None,
        supplies: float | Sequence[float] = 1.0,
        rho: float = 0.5,
        learn: Sequence[str] = ("budgets",),
        budget_bounds: Sequence[float] = (1e-3, 10.0),
        valuation_bounds: Sequence[float] = (1e-6, 10.0),
        price_bounds: Sequence[float] = (1e-2, 100.0),
    ) -> None:
        if utility not in UTILITIES:
            raise ImitgameError(f"utility={utility!r} is not one of {', '.join(UTILITIES)}")
        if n_buyers < 1 or n_goods < 1:
            raise ImitgameError(f"need n_buyers >= 1 and n_goods >= 1, got {n_buyers}, {n_goods}")
        unknown = [b for b in learn if b not in BLOCKS]
        if unknown or not learn:
            raise ImitgameError(f"learn: choose one or more of {list(BLOCKS)}, got {list(learn)}")
        if utility == "ces" and (rho >= 1 or rho == 0):
            raise ImitgameError(f"ces needs rho < 1 and rho != 0, got {rho}")
        n, m = int(n_buyers), int(n_goods)
        dtype = torch.get_default_dtype()
        if budgets is None:
            budget_t = torch.linspace(1.0, 2.0, n)
        else:
            budget_t = torch.as_tensor(budgets, dtype=dtype).flatten()
            budget_t = budget_t.expand(n).clone() if budget_t.numel() == 1 else budget_t
        if valuations is None:
            value_t = torch.arange(1, n * m + 1, dtype=dtype).reshape(n, m) % (m + 1) + 1.0
            value_t = (value_t / value_t.sum(-1, keepdim=True)).flatten()
        else:
            value_t = torch.as_tensor(valuations, dtype=dtype).reshape(-1)
        if budget_t.numel() != n or value_t.numel() != n * m:
            raise ImitgameError(
                f"budgets need {n} entries and valuations {n}x{m}, got "
                f"{budget_t.numel()} and {value_t.numel()}"
            )
        supply_t = torch.as_tensor(supplies, dtype=dtype).flatten()
        supply_t = supply_t.expand(m).clone() if supply_t.numel() == 1 else supply_t
        if supply_t.numel() != m or bool((supply_t <= 0).any()):
            raise ImitgameError(f"supplies must be {m} positive numbers")
        p_low, p_high = float(price_bounds[0]), float(price_bounds[1])
        if not 0 < p_low < p_high:
            raise ImitgameError(f"price_bounds must satisfy 0 < low < high, got {price_bounds}")
        # a buyer never demands more than its budget buys at the lowest price
        x_high = float(budget_bounds[1]) / p_low
        low = torch.zeros(n + 1, m)
        high = torch.full((n + 1, m), x_high)
        low[n], high[n] = p_low, p_high
        self.n_buyers, self.n_goods = n, m
        self.utility = utility
        self.rho = float(rho)
        self.blocks = {"budgets": list(range(n)), "valuations": list(range(n, n + n * m))}
        names = [f"B_{i}" for i in range(n)] + [f"v_{i}_{j}" for i in range(n) for j in range(m)]
        super().__init__(
            n_agents=n + 1,
            action_dim=m,
            action_low=low,
            action_high=high,
            param_names=names,
            param_low=[float(budget_bounds[0])] * n + [float(valuation_bounds[0])] * (n * m),
            param_high=[float(budget_bounds[1])] * n + [float(valuation_bounds[1])] * (n * m),
            true_params=torch.cat([budget_t, value_t]),
            agent_names=[f"buyer_{i}" for i in range(n)] + ["seller"],
        )
        self.learned_params = [names[i] for b in learn for i in self.blocks[b]]
        self.register_buffer("supplies", supply_t)

    # --- θ layout -------------------------------------------------------------------------------
    def unpack(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Budgets ``[..., n]`` and valuations ``[..., n, m]``."""
        n, m = self.n_buyers, self.n_goods
        return theta[..., :n], theta[..., n:].reshape(*theta.shape[:-1], n, m)

    def canonical(self, theta: Tensor) -> Tensor:
        """θ with valuations divided by their row sums: the utility's own normalisation (the
        identified quantities for Cobb-Douglas; for linear, Leontief and CES a harmless scale)."""
        budgets, values = self.unpack(theta)
        values = values / values.sum(-1, keepdim=True)
        return torch.cat([budgets, values.flatten(-2)], -1)

    def log_utility(self, bundles: Tensor, values: Tensor) -> Tensor:
        """log u_i(x_i): ``bundles [..., n, m]``, ``values [..., n, m]`` -> ``[..., n]``."""
        tiny = torch.finfo(bundles.dtype).tiny
        if self.utility == "linear":
            return (values * bundles).sum(-1).clamp(min=tiny).log()
        if self.utility == "cobb_douglas":
            shares = values / values.sum(-1, keepdim=True)
            return (shares * bundles.clamp(min=tiny).log()).sum(-1)
        if self.utility == "leontief":
            return (bundles / values).amin(-1).clamp(min=tiny).log()
        rho = self.rho
        inner = (values * bundles.clamp(min=tiny) ** rho).sum(-1)
        return inner.clamp(min=tiny).log() / rho

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        n = self.n_buyers
        bundles, prices = actions[..., :n, :], actions[..., n, :]
        budgets, values = self.unpack(theta)
        spend = (bundles * prices.unsqueeze(-2)).sum(-1)
        buyers = budgets * self.log_utility(bundles, values) - spend
        excess = bundles.sum(-2) - self.supplies
        seller = (prices * excess).sum(-1, keepdim=True)
        return torch.cat([buyers, seller], -1)

    # --- closed forms ---------------------------------------------------------------------------
    def demand(self, prices: Tensor, theta: Tensor) -> Tensor:
        """Each buyer's utility-maximising bundle at ``prices [..., m]``: ``[..., n, m]``."""
        budgets, values = self.unpack(theta)
        b = budgets.unsqueeze(-1)
        p = prices.unsqueeze(-2)
        if self.utility == "linear":
            ratio = values / p  # broadcast first: θ may come as [K, 1, p] against [K, B] prices
            pick = torch.zeros_like(ratio).scatter(-1, ratio.argmax(-1, keepdim=True), 1.0)
            return pick * b / p
        if self.utility == "cobb_douglas":
            return b * values / values.sum(-1, keepdim=True) / p
        if self.utility == "leontief":
            return b * values / (values * p).sum(-1, keepdim=True)
        sigma = 1.0 / (1.0 - self.rho)
        weight = (values / p) ** sigma
        return b * weight / (p * weight).sum(-1, keepdim=True)

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Buyers: demands at the posted prices. Seller: the highest price on over-demanded goods,
        the lowest on under-demanded ones (the current price where demand meets supply)."""
        n = self.n_buyers
        bundles, prices = actions[..., :n, :], actions[..., n, :]
        demand = self.demand(prices, theta)
        excess = bundles.sum(-2) - self.supplies
        p_low, p_high = self.action_low[n], self.action_high[n]
        seller = torch.where(excess > 0, p_high, torch.where(excess < 0, p_low, prices))
        return self.project_actions(torch.cat([demand, seller.unsqueeze(-2)], -2))

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """Competitive equilibrium ``[..., n+1, m]`` (bundles, then prices): closed form for
        Cobb-Douglas, the Eisenberg-Gale program (cvxpy, one solve per θ row) otherwise."""
        n = self.n_buyers
        budgets, values = self.unpack(theta)
        if self.utility == "cobb_douglas":
            shares = values / values.sum(-1, keepdim=True)
            prices = (budgets.unsqueeze(-1) * shares).sum(-2) / self.supplies
            bundles = budgets.unsqueeze(-1) * shares / prices.unsqueeze(-2)
        else:
            flat = theta.detach().reshape(-1, theta.shape[-1]).cpu().double().numpy()
            solved = [
                eisenberg_gale(
                    self.utility,
                    row[:n],
                    row[n:].reshape(n, self.n_goods),
                    self.supplies.cpu().double().numpy(),
                    rho=self.rho,
                )
                for row in flat
            ]
            bundles = torch.as_tensor(np.stack([s[0] for s in solved])).to(theta)
            prices = torch.as_tensor(np.stack([s[1] for s in solved])).to(theta)
            bundles = bundles.reshape(*theta.shape[:-1], n, self.n_goods)
            prices = prices.reshape(*theta.shape[:-1], self.n_goods)
        return self.project_actions(torch.cat([bundles, prices.unsqueeze(-2)], -2))


def eisenberg_gale(
    utility: str,
    budgets: np.ndarray,
    values: np.ndarray,
    supplies: np.ndarray,
    *,
    rho: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the EG program with cvxpy: bundles ``[n, m]`` and prices ``[m]`` (the duals of the
    supply constraints). Bundles are rescaled so that every priced good clears exactly."""
    import cvxpy as cp

    n, m = values.shape
    x = cp.Variable((n, m), nonneg=True)
    if utility == "linear":
        log_u = cp.log(cp.sum(cp.multiply(values, x), axis=1))
    elif utility == "cobb_douglas":
        shares = values / values.sum(-1, keepdims=True)
        log_u = cp.sum(cp.multiply(shares, cp.log(x)), axis=1)
    elif utility == "leontief":
        t = cp.Variable(n)
        log_u = cp.log(t)
    elif utility == "ces":
        log_u = cp.log(cp.sum(cp.multiply(values, cp.power(x, rho)), axis=1)) / rho
    else:
        raise ImitgameError(f"utility={utility!r} is not one of {', '.join(UTILITIES)}")
    supply = cp.sum(x, axis=0) <= supplies
    constraints = [supply]
    if utility == "leontief":
        constraints.append(cp.multiply(t[:, None], values) <= x)
    problem = cp.Problem(cp.Maximize(budgets @ log_u), constraints)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise ImitgameError(f"the Eisenberg-Gale program is {problem.status}")
    bundles = np.maximum(x.value, 0.0)
    prices = np.asarray(supply.dual_value, dtype=float).reshape(m)
    sold = bundles.sum(0)
    clear = prices > 1e-9
    bundles[:, clear] *= supplies[clear] / np.maximum(sold[clear], 1e-300)
    return bundles, prices
