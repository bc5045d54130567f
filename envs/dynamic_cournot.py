"""Dynamic Cournot: a linear-quadratic Markov game with an AR(1) demand intercept.

N firms choose quantities q_i ∈ [0, q_max] every period. State s = (d, q_prev, t): the demand
intercept d and last period's quantities. With price P = d − b Q (Q = Σ q_i),

    r_i(s, q; θ) = (d − b Q) q_i − c_i q_i − κ (q_i − q_prev,i)²,
    d' = μ + ρ (d − μ) + σ ε,   ε ~ N(0, 1),      q_prev' = q,

discounted by β over a horizon T. θ = (c_0..c_{N-1}, b, κ); the costs c are learned, b and κ known.
The adjustment cost makes the game truly dynamic: today's quantity moves tomorrow's cost.

Its Markov perfect equilibrium is linear in x = (d, q_prev), q_t = K_t x + k_t, and is computed
exactly by backward induction: with quadratic values V_{i,t+1}(x) = xᵀP_i x + 2 p_iᵀx + const,
each period's first-order conditions ∂/∂q_i [r_i + β E V_{i,t+1}(x')] = 0 are linear in (x, q).
The affine maps, Jacobians and Hessians come from ``torch.func`` (exact: everything is quadratic).
The same recursion with only agent i optimising gives i's exact best response to a linear profile.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.func import hessian, jacrev

from imitgame import MarkovGame
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionSample, Strategy


class LinearFeedback(Strategy):
    """Time-varying linear policies q_t = clip(K_t x + k_t): ``gain [K, T, n, m]``,
    ``offset [K, T, n]`` with x = (d, q_prev) the first m = n + 1 observation entries."""

    def __init__(self, gain: Tensor, offset: Tensor, low: Tensor, high: Tensor) -> None:
        super().__init__()
        self.register_buffer("gain", gain.detach().clone())
        self.register_buffer("offset", offset.detach().clone())
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())

    def act(self, obs: Tensor, t: int) -> ActionSample:
        m = self.gain.shape[-1]
        x = obs[..., 0, :m]  # [..., K, B, m]: every agent observes the full state
        q = torch.einsum("kim,...kbm->...kbi", self.gain[:, t], x) + self.offset[:, t, None]
        return ActionSample(torch.clamp(q.unsqueeze(-1), self.low, self.high))


class DynamicCournot(MarkovGame):
    """N-firm dynamic Cournot with AR(1) demand and quadratic adjustment costs."""

    def __init__(
        self,
        n_firms: int = 2,
        costs: Sequence[float] = (10.0, 20.0),
        slope: float = 1.0,
        adjustment_cost: float = 0.5,
        demand_mean: float = 100.0,
        demand_persistence: float = 0.8,
        demand_std: float = 5.0,
        initial_quantity: float = 30.0,
        discount: float = 0.95,
        horizon: int = 8,
        max_quantity: float = 100.0,
        cost_bounds: Sequence[float] = (0.0, 50.0),
    ) -> None:
        if n_firms < 1:
            raise ImitgameError(f"n_firms must be >= 1, got {n_firms}")
        costs_t = torch.as_tensor(costs, dtype=torch.get_default_dtype()).flatten()
        if costs_t.numel() == 1:
            costs_t = costs_t.expand(n_firms).clone()
        if costs_t.numel() != n_firms:
            raise ImitgameError(f"costs has {costs_t.numel()} entries for {n_firms} firms")
        if slope <= 0 or adjustment_cost < 0 or demand_std < 0:
            raise ImitgameError("need slope > 0, adjustment_cost >= 0 and demand_std >= 0")
        if not -1 < demand_persistence < 1:
            raise ImitgameError(f"demand_persistence must lie in (-1, 1), got {demand_persistence}")
        self.n_firms = int(n_firms)
        self.mu = float(demand_mean)
        self.rho = float(demand_persistence)
        self.sigma = float(demand_std)
        self.initial_quantity = float(initial_quantity)
        names = [f"c_{i}" for i in range(n_firms)] + ["b", "kappa"]
        super().__init__(
            n_agents=n_firms,
            action_dim=1,
            action_low=0.0,
            action_high=max_quantity,
            param_names=names,
            param_low=[cost_bounds[0]] * n_firms + [1e-3, 0.0],
            param_high=[cost_bounds[1]] * n_firms + [100.0, 100.0],
            true_params=[*costs_t.tolist(), slope, adjustment_cost],
            horizon=horizon,
            discount=discount,
            state_dim=n_firms + 2,
            obs_dim=n_firms + 2,
            noise_dim=n_firms + 1,
        )
        self.learned_params = names[:n_firms]
        scale = [self.mu] + [max(self.initial_quantity, 1.0)] * n_firms + [1.0]
        self.register_buffer("obs_scale", torch.tensor(scale))

    # --- dynamics -------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(theta.shape[:-1], noise.shape[:-1])
        noise = noise.expand(*shape, self.noise_dim)
        stationary = self.sigma / (1 - self.rho**2) ** 0.5
        d = self.mu + stationary * noise[..., :1]
        q = (self.initial_quantity * (1 + 0.2 * noise[..., 1:])).clamp(min=0.0)
        return torch.cat([d, q, torch.zeros_like(d)], dim=-1)

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        d = state[..., :1]
        d_next = self.mu + self.rho * (d - self.mu) + self.sigma * noise[..., :1]
        q = actions[..., 0]
        shape = torch.broadcast_shapes(d_next.shape[:-1], q.shape[:-1])
        return torch.cat(
            [
                d_next.expand(*shape, 1),
                q.expand(*shape, self.n_agents),
                state[..., -1:].expand(*shape, 1) + 1,
            ],
            dim=-1,
        )

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        n = self.n_agents
        d = state[..., :1]
        q_prev = state[..., 1 : 1 + n]
        q = actions[..., 0]
        costs, b, kappa = theta[..., :n], theta[..., n : n + 1], theta[..., n + 1 : n + 2]
        price = d - b * q.sum(-1, keepdim=True)
        return (price - costs) * q - kappa * (q - q_prev) ** 2

    # --- closed forms ---------------------------------------------------------------------------
    def _lq(self, theta: Tensor, responders: Tensor, base: LinearFeedback | None, k: int):
        """Backward induction for one instance: players in ``responders [n]`` optimise, the rest
        follow ``base`` (instance ``k``). Returns gains ``[T, n, m]`` and offsets ``[T, n]``."""
        n, m, beta = self.n_agents, self.n_agents + 1, self.discount
        dt = theta.dtype
        P = torch.zeros(n, m, m, dtype=dt, device=theta.device)
        p = torch.zeros(n, m, dtype=dt, device=theta.device)
        gains, offsets = [], []
        zero_x, zero_q = (
            torch.zeros(m, dtype=dt, device=theta.device),
            torch.zeros(n, dtype=dt, device=theta.device),
        )
        for t in reversed(range(self.horizon)):
            Pt, pt = P, p

            def q_value(x: Tensor, q: Tensor, Pt=Pt, pt=pt) -> Tensor:
                state = torch.cat([x, x.new_zeros(1)])
                r = self.reward(state, q.unsqueeze(-1), theta)
                x_next = torch.cat([(self.mu + self.rho * (x[:1] - self.mu)), q])
                cont = torch.einsum("a,iab,b->i", x_next, Pt, x_next) + 2 * pt @ x_next
                return r + beta * cont

            if base is not None:
                kb, ob = base.gain[k, t], base.offset[k, t]
            else:
                kb, ob = theta.new_zeros(n, m), theta.new_zeros(n)

            def foc(x: Tensor, q: Tensor, kb=kb, ob=ob) -> Tensor:
                own = torch.diagonal(jacrev(q_value, argnums=1)(x, q))
                return torch.where(responders, own, q - (kb @ x + ob))

            M = jacrev(foc, argnums=1)(zero_x, zero_q)
            N = jacrev(foc, argnums=0)(zero_x, zero_q)
            h0 = foc(zero_x, zero_q)
            gain = -torch.linalg.solve(M, N)
            offset = -torch.linalg.solve(M, h0)

            def value(x: Tensor, gain=gain, offset=offset) -> Tensor:
                return q_value(x, gain @ x + offset)

            P = 0.5 * hessian(value)(zero_x)
            p = 0.5 * jacrev(value)(zero_x)
            gains.append(gain)
            offsets.append(offset)
        return torch.stack(gains[::-1]), torch.stack(offsets[::-1])

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        """The linear MPE for each instance of ``theta [K, p]`` (backward induction)."""
        everyone = torch.ones(self.n_agents, dtype=torch.bool, device=theta.device)
        parts = [self._lq(theta[k].detach(), everyone, None, k) for k in range(theta.shape[0])]
        gain = torch.stack([g for g, _ in parts])
        offset = torch.stack([o for _, o in parts])
        return LinearFeedback(gain, offset, self.action_low, self.action_high)

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        """Each agent's exact best response to a linear profile (row i of the result is ρ_i)."""
        if not isinstance(profile, LinearFeedback):
            return None
        eye = torch.eye(self.n_agents, dtype=torch.bool, device=theta.device)
        gains, offsets = [], []
        for k in range(theta.shape[0]):  # setup, not a hot path
            per_agent = [
                self._lq(theta[k].detach(), eye[i], profile, k) for i in range(self.n_agents)
            ]
            gains.append(torch.stack([g[:, i] for i, (g, _) in enumerate(per_agent)], dim=1))
            offsets.append(torch.stack([o[:, i] for i, (_, o) in enumerate(per_agent)], dim=1))
        return LinearFeedback(
            torch.stack(gains), torch.stack(offsets), self.action_low, self.action_high
        )
