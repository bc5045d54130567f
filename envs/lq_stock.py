"""A linear-quadratic stock game: n players emit into a shared stock that harms all of them.

State (s, t): the stock s (a pollutant, say) and the period t. Player i chooses its emission e_i,
enjoys b_i e_i − e_i²/2 and suffers the damage d s²/2 of the current stock; the stock decays
at the rate 1 − ρ and takes in everyone's emissions and a shock:

    r_i(s, e; θ) = b_i e_i − e_i² / 2 − d s² / 2,
    s' = ρ s + Σ_j e_j + σ ε,   ε ~ N(0, 1),

for T periods discounted by δ (no value after T). θ = (b_0 … b_{n-1}, d): private benefits and the
common damage weight; ρ, σ, δ and T are known. The benefits are learned and d is known by default
(``learn=("benefits", "damage")`` learns d too: b and d trade off along a shallow valley, so that
takes more iterations, e.g. ``algo.iterations=600 algo.lr_theta=0.02``).

**The equilibrium depends on t.** With a finite horizon there is nothing to protect after T, so the
last period is myopic (e_i = b_i) and earlier periods hold back the more, the more periods of
damage lie ahead. The linear Markov perfect equilibrium e_{i,t}(s) = K_{i,t} s + k_{i,t} has
time-varying gains, so every player observes (s, t / T): **a finite-horizon game must put t in its
observation**, or no policy network (neither the behaviour-cloned observed policy nor the
deviations) can represent its equilibrium.

Exact solution by backward induction (:meth:`LQStock.linear_policies`). With player i's value
V_{i,t+1}(s) = A_i s² + B_i s + const (A_i ≤ 0), the first-order condition of i in period t,
with m = ρ s + Σ_j e_j the expected next stock, is

    b_i − e_i + δ (2 A_i m + B_i) = 0,

linear in (s, e). Solving the n conditions together gives the MPE; solving player i's alone, with
the others playing a given linear policy, gives i's exact best response to it. Substituting the
policy back gives V_{i,t}: A ← −K_i²/2 − d/2 + δ A a², B ← b_i K_i − K_i k_i + δ (2 A a c + B a),
with a = ρ + Σ_j K_j and c = Σ_j k_j. The defaults keep equilibrium play inside the action box, so
the linear policies are exact (clipping at the bounds would make them approximations).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import MarkovGame
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionSample, Strategy


class LinearStockPolicy(Strategy):
    """e_{i,t} = clip(K_{i,t} s + k_{i,t}): ``gain [K, T, n]`` and ``offset [K, T, n]`` per
    instance, period and player; the stock s is the first observation entry."""

    def __init__(self, gain: Tensor, offset: Tensor, low: Tensor, high: Tensor) -> None:
        super().__init__()
        self.register_buffer("gain", gain.detach().clone())
        self.register_buffer("offset", offset.detach().clone())
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())

    def act(self, obs: Tensor, t: int) -> ActionSample:
        # obs [..., K, B, n, 2] -> actions [..., K, B, n, 1]
        stock = obs[..., 0]
        e = self.gain[:, t, None] * stock + self.offset[:, t, None]
        return ActionSample(torch.clamp(e.unsqueeze(-1), self.low, self.high))


class LQStock(MarkovGame):
    """n-player linear-quadratic stock (pollution) game with a finite horizon and its exact
    time-varying linear MPE and best responses."""

    def __init__(
        self,
        n_players: int = 2,
        benefits: Sequence[float] = (6.0, 9.0),
        damage: float = 0.1,
        persistence: float = 0.8,
        shock_std: float = 1.0,
        discount: float = 0.95,
        horizon: int = 10,
        initial_stock: float = 10.0,
        initial_spread: float = 2.0,
        max_emission: float = 20.0,
        benefit_bounds: Sequence[float] = (0.0, 20.0),
        damage_bounds: Sequence[float] = (0.01, 0.5),
        learn: Sequence[str] = ("benefits",),
    ) -> None:
        if n_players < 1:
            raise ImitgameError(f"n_players must be >= 1, got {n_players}")
        b = torch.as_tensor(benefits, dtype=torch.get_default_dtype()).flatten()
        if b.numel() == 1:
            b = b.expand(n_players).clone()
        if b.numel() != n_players:
            raise ImitgameError(f"benefits has {b.numel()} entries for {n_players} players")
        if shock_std < 0 or initial_spread < 0:
            raise ImitgameError("shock_std and initial_spread must be >= 0")
        if damage_bounds[0] <= 0:
            raise ImitgameError("damage_bounds must be > 0: the damage keeps the values concave")
        unknown = [name for name in learn if name not in ("benefits", "damage")]
        if unknown or not learn:
            raise ImitgameError(f"learn: {list(learn)} must name benefits and/or damage")
        self.n_players = int(n_players)
        self.rho = float(persistence)
        self.sigma = float(shock_std)
        self.initial_stock = float(initial_stock)
        self.initial_spread = float(initial_spread)
        names = [f"b_{i}" for i in range(n_players)] + ["d"]
        super().__init__(
            n_agents=n_players,
            action_dim=1,
            action_low=0.0,
            action_high=max_emission,
            param_names=names,
            param_low=[benefit_bounds[0]] * n_players + [damage_bounds[0]],
            param_high=[benefit_bounds[1]] * n_players + [damage_bounds[1]],
            true_params=[*b.tolist(), damage],
            horizon=horizon,
            discount=discount,
            state_dim=2,
            obs_dim=2,
            noise_dim=1,
        )
        self.learned_params = (names[:n_players] if "benefits" in learn else []) + (
            ["d"] if "damage" in learn else []
        )
        # policy networks see (s / typical stock, t / T)
        self.register_buffer("obs_scale", torch.tensor([max(abs(initial_stock), 1.0), 1.0]))

    # --- dynamics -------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(theta.shape[:-1], noise.shape[:-1])
        s = (self.initial_stock + self.initial_spread * noise[..., 0]).expand(shape)
        return torch.stack([s, torch.zeros_like(s)], dim=-1)

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        s_next = self.rho * state[..., 0] + actions[..., 0].sum(-1) + self.sigma * noise[..., 0]
        return torch.stack([s_next, (state[..., 1] + 1).expand_as(s_next)], dim=-1)

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        n = self.n_agents
        b, d = theta[..., :n], theta[..., n : n + 1]
        e = actions[..., 0]
        s = state[..., :1]
        return b * e - 0.5 * e**2 - 0.5 * d * s**2

    def observe(self, state: Tensor) -> Tensor:
        """(s, t / T) for every player: ``[..., n, 2]``."""
        feats = torch.stack([state[..., 0], state[..., 1] / self.horizon], dim=-1)
        return feats.unsqueeze(-2).expand(*feats.shape[:-1], self.n_agents, 2)

    # --- closed forms ---------------------------------------------------------------------------
    def linear_policies(
        self, theta: Tensor, optimise: Tensor, profile: LinearStockPolicy | None = None
    ) -> tuple[Tensor, Tensor]:
        """Backward induction for R rows of players at once: in row r the players with
        ``optimise[r, i]`` best-respond (jointly: a Nash equilibrium among them), the others play
        ``profile``. ``theta [K, p]``, ``optimise [R, n]`` -> gains, offsets ``[K, R, T, n]``."""
        n, rho, delta = self.n_agents, self.rho, self.discount
        theta = theta.detach()
        b = theta[:, None, :n]  # [K, 1, n]
        d = theta[:, None, n : n + 1]  # [K, 1, 1]
        k_instances, rows = theta.shape[0], optimise.shape[0]
        opt = optimise.to(theta.device)[None]  # [1, R, n]
        eye = torch.eye(n, dtype=theta.dtype, device=theta.device)
        A = theta.new_zeros(k_instances, rows, n)
        B = theta.new_zeros(k_instances, rows, n)
        gains, offsets = [], []
        for t in reversed(range(self.horizon)):
            # row i of the linear system M e = N s + h: i's first-order condition, or i's policy
            foc = eye - 2 * delta * A[..., None] * torch.ones_like(eye)  # [K, R, n, n]
            M = torch.where(opt[..., None], foc, eye)
            if profile is not None:
                fixed_gain = profile.gain[:, None, t].to(theta)
                fixed_offset = profile.offset[:, None, t].to(theta)
            else:
                fixed_gain = fixed_offset = torch.zeros_like(A)
            N = torch.where(opt, 2 * delta * A * rho, fixed_gain)
            h = torch.where(opt, b + delta * B, fixed_offset)
            gain = torch.linalg.solve(M, N.unsqueeze(-1)).squeeze(-1)  # [K, R, n]
            offset = torch.linalg.solve(M, h.unsqueeze(-1)).squeeze(-1)
            a = rho + gain.sum(-1, keepdim=True)
            c = offset.sum(-1, keepdim=True)
            A, B = (
                -0.5 * gain**2 - 0.5 * d + delta * A * a**2,
                b * gain - gain * offset + delta * (2 * A * a * c + B * a),
            )
            gains.append(gain)
            offsets.append(offset)
        return torch.stack(gains[::-1], dim=2), torch.stack(offsets[::-1], dim=2)

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        """The linear MPE under ``theta [K, p]`` (time-varying gains)."""
        everyone = torch.ones(1, self.n_agents, dtype=torch.bool)
        gain, offset = self.linear_policies(theta, everyone)
        return LinearStockPolicy(gain[:, 0], offset[:, 0], self.action_low, self.action_high)

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        """Each player's exact best response to a linear profile (entry i of the result is
        player i's response; None for other profiles)."""
        if not isinstance(profile, LinearStockPolicy):
            return None
        alone = torch.eye(self.n_agents, dtype=torch.bool)
        gain, offset = self.linear_policies(theta, alone, profile)  # [K, R = n, T, n]
        gain = torch.diagonal(gain, dim1=1, dim2=3)  # [K, T, n]: row i's player i
        offset = torch.diagonal(offset, dim1=1, dim2=3)
        return LinearStockPolicy(gain, offset, self.action_low, self.action_high)
