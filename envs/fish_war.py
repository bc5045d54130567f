"""The Levhari–Mirman fish war: n players harvest a common fish stock.

State s = (x, t): stock x > 0 and the period t. Player i harvests the fraction a_i of the stock
(consumption c_i = a_i x; the action box keeps Σ a_i < 1), with utility log c_i, and

    x' = ε (x − Σ_i c_i)^α,     log ε ~ N(0, σ²)  (σ = 0: the deterministic game),

discounted by β. θ = (α, β); by default α is learned and β known (``learn: [beta]`` swaps them).

The infinite-horizon game has the linear Markov perfect equilibrium (MPE)

    c_i = x (1 − αβ) / (n − (n − 1) αβ),

with equilibrium value V(x) = A log x + const, A = 1 / (1 − αβ). The rollout is truncated at the
horizon T and the last reward adds the continuation value β E[A log x_T] (the constant cancels in
regret), so the finite game has exactly the stationary MPE above, and against others who harvest
the fraction k the best response is the constant fraction (1 − (n − 1) k)(1 − αβ).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import MarkovGame, StaticGame
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionSample, Strategy


class ConstantFraction(Strategy):
    """Every agent harvests the fraction ``fraction [K, n]`` of the stock, whatever the state."""

    def __init__(self, fraction: Tensor) -> None:
        super().__init__()
        self.register_buffer("fraction", fraction.detach().clone())

    def act(self, obs: Tensor, t: int) -> ActionSample:
        # obs [..., K, B, n, obs_dim] -> actions [..., K, B, n, 1]
        a = self.fraction[:, None, :, None].to(obs.dtype)
        return ActionSample(a.expand(*obs.shape[:-1], 1))


class FishWar(MarkovGame):
    """Levhari–Mirman fish war with lognormal shocks and a closed-form MPE."""

    def __init__(
        self,
        n_players: int = 2,
        alpha: float = 0.6,
        beta: float = 0.95,
        shock_std: float = 0.1,
        horizon: int = 10,
        initial_stock: float = 1.0,
        initial_spread: float = 0.5,
        learn: Sequence[str] = ("alpha",),
        alpha_bounds: Sequence[float] = (0.05, 0.95),
        beta_bounds: Sequence[float] = (0.5, 0.99),
    ) -> None:
        if n_players < 1:
            raise ImitgameError(f"n_players must be >= 1, got {n_players}")
        if initial_stock <= 0:
            raise ImitgameError(f"initial_stock must be > 0, got {initial_stock}")
        if shock_std < 0 or initial_spread < 0:
            raise ImitgameError("shock_std and initial_spread must be >= 0")
        unknown = [name for name in learn if name not in ("alpha", "beta")]
        if unknown or not learn:
            raise ImitgameError(f"learn: {list(learn)} must name alpha and/or beta")
        self.n_players = int(n_players)
        self.shock_std = float(shock_std)
        self.initial_stock = float(initial_stock)
        self.initial_spread = float(initial_spread)
        edge = 1e-3
        super().__init__(
            n_agents=n_players,
            action_dim=1,
            action_low=edge,
            action_high=1.0 / n_players - edge,
            param_names=["alpha", "beta"],
            param_low=[alpha_bounds[0], beta_bounds[0]],
            param_high=[alpha_bounds[1], beta_bounds[1]],
            true_params=[alpha, beta],
            horizon=horizon,
            discount=beta,
            state_dim=2,
            obs_dim=2,
            noise_dim=1,
        )
        self.learned_params = [name for name in ("alpha", "beta") if name in learn]

    # --- dynamics -------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        x = self.initial_stock * torch.exp(self.initial_spread * noise[..., 0])
        x = x.expand(torch.broadcast_shapes(theta.shape[:-1], noise.shape[:-1]))
        return torch.stack([x, torch.zeros_like(x)], dim=-1)

    def _remaining(self, state: Tensor, actions: Tensor) -> Tensor:
        """x (1 − Σ a_i), ``[...]``."""
        share = (1 - actions[..., 0].sum(-1)).clamp(min=1e-9)
        return state[..., 0] * share

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        alpha = theta[..., 0]
        x_next = (
            torch.exp(self.shock_std * noise[..., 0]) * self._remaining(state, actions) ** alpha
        )
        return torch.stack([x_next, state[..., 1].expand_as(x_next) + 1], dim=-1)

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        alpha, beta = theta[..., 0], theta[..., 1]
        x = state[..., 0]
        utility = torch.log(actions[..., 0] * x[..., None])  # [..., n]
        # continuation value β E[A log x_T] = β A α log(x (1 − Σa)) (E log ε = 0), last step only
        last = (state[..., 1] >= self.horizon - 1.5).to(x.dtype)
        terminal = beta * alpha / (1 - alpha * beta) * torch.log(self._remaining(state, actions))
        return utility + (last * terminal)[..., None]

    def observe(self, state: Tensor) -> Tensor:
        """(log x, t / T) for every agent: ``[..., n, 2]``."""
        feats = torch.stack([torch.log(state[..., 0]), state[..., 1] / self.horizon], dim=-1)
        return feats.unsqueeze(-2).expand(*feats.shape[:-1], self.n_agents, 2)

    # --- closed forms ---------------------------------------------------------------------------
    def mpe_fraction(self, theta: Tensor) -> Tensor:
        """k(θ) = (1 − αβ) / (n − (n − 1) αβ), ``theta [..., 2]`` -> ``[...]``."""
        ab = theta[..., 0] * theta[..., 1]
        n = self.n_agents
        return (1 - ab) / (n - (n - 1) * ab)

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        """The MPE as a queryable joint policy for ``theta [K, 2]``."""
        k = self.mpe_fraction(theta)
        return ConstantFraction(k[:, None].expand(-1, self.n_agents))

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        """Exact best responses ``(1 − Σ_{j≠i} k_j)(1 − αβ)`` to constant fractions (else None)."""
        if not isinstance(profile, ConstantFraction):
            return None
        k = profile.fraction  # [K, n]
        others = k.sum(-1, keepdim=True) - k
        ab = (theta[..., 0] * theta[..., 1])[:, None]
        br = (1 - others) * (1 - ab)
        return ConstantFraction(
            torch.minimum(torch.maximum(br, self.action_low[:, 0]), self.action_high[:, 0])
        )


class StationaryFishWar(StaticGame):
    """The fish war in stationary Markov strategies: player i harvests the constant fraction k_i
    of the stock forever (the MPE's strategy class), and its payoff is the exact expected value

        V_i(k; θ) = log k_i / (1 − β) + αβ log(1 − Σ_j k_j) / ((1 − β)(1 − αβ))
                    + log x_0 / (1 − αβ),

    (E log ε = 0). Its Nash equilibrium is the MPE fraction k(θ) of :class:`FishWar` and its best
    response the constant fraction (1 − Σ_{j≠i} k_j)(1 − αβ) — the Markov game's closed forms, so
    the regret of a stationary profile is exact. Observed behaviour: harvest fractions measured
    along trajectories (one observation per period; a constant-fraction profile harvests the same
    fraction in every state). θ = (α, β) as in :class:`FishWar`.
    """

    def __init__(
        self,
        n_players: int = 2,
        alpha: float = 0.6,
        beta: float = 0.95,
        initial_stock: float = 1.0,
        learn: Sequence[str] = ("alpha",),
        alpha_bounds: Sequence[float] = (0.05, 0.95),
        beta_bounds: Sequence[float] = (0.5, 0.99),
    ) -> None:
        if n_players < 1:
            raise ImitgameError(f"n_players must be >= 1, got {n_players}")
        if initial_stock <= 0:
            raise ImitgameError(f"initial_stock must be > 0, got {initial_stock}")
        unknown = [name for name in learn if name not in ("alpha", "beta")]
        if unknown or not learn:
            raise ImitgameError(f"learn: {list(learn)} must name alpha and/or beta")
        edge = 1e-3
        super().__init__(
            n_agents=n_players,
            action_dim=1,
            action_low=edge,
            action_high=1.0 / n_players - edge,
            param_names=["alpha", "beta"],
            param_low=[alpha_bounds[0], beta_bounds[0]],
            param_high=[alpha_bounds[1], beta_bounds[1]],
            true_params=[alpha, beta],
            agent_names=[f"player_{i}" for i in range(n_players)],
        )
        self.initial_stock = float(initial_stock)
        self.learned_params = [name for name in ("alpha", "beta") if name in learn]

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        k = actions[..., 0]  # [..., n]
        alpha, beta = theta[..., 0:1], theta[..., 1:2]
        ab = alpha * beta
        rest = (1 - k.sum(-1, keepdim=True)).clamp(min=1e-9)
        x0 = torch.log(torch.as_tensor(self.initial_stock, dtype=k.dtype, device=k.device))
        return (
            torch.log(k) / (1 - beta)
            + ab * torch.log(rest) / ((1 - beta) * (1 - ab))
            + x0 / (1 - ab)
        )

    @property
    def has_equilibrium(self) -> bool:
        return True

    @property
    def has_best_response(self) -> bool:
        return True

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """The MPE fraction k(θ) = (1 − αβ) / (n − (n − 1) αβ) for every player."""
        ab = theta[..., 0] * theta[..., 1]
        n = self.n_agents
        k = (1 - ab) / (n - (n - 1) * ab)
        return self.project_actions(k[..., None, None].expand(*k.shape, n, 1))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """BR_i = (1 − Σ_{j≠i} k_j)(1 − αβ), clipped to the action box."""
        k = actions[..., 0]
        others = k.sum(-1, keepdim=True) - k
        ab = theta[..., 0:1] * theta[..., 1:2]
        return self.project_actions(((1 - others) * (1 - ab)).unsqueeze(-1))
