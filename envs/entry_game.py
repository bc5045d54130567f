"""A dynamic entry/exit game with logit shocks: discrete actions, a state that matters.

n firms decide every period whether to be active (a_i = 1) or not (a_i = 0). State s = (w, z, t),
observed one-hot: w_i = last period's activity (incumbency), z ∈ {0, 1} a low/high demand state
that follows a two-state Markov chain (stays with probability ``demand_persistence``). An active
firm earns

    r_i = R (1 + z) − competition · Σ_{j≠i} a_j − fixed_cost − entry_cost · (1 − w_i),

an inactive one 0. Firms have i.i.d. type-I extreme value payoff shocks of scale τ, so the
equilibrium is the logit Markov perfect equilibrium of dynamic discrete choice — the Nash
equilibrium of the entropy-regularised game r_i − τ log π_i(a_i|s) (``entropy_weight`` = τ,
which the regret estimator uses). It is computed exactly by backward induction over the
2ⁿ·2 states, with a damped fixed point for each period's simultaneous-move stage game.

θ = (R, competition, fixed_cost, entry_cost); ``competition`` and ``entry_cost`` are learned.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import MarkovGame
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionSample, Strategy

# Φ⁻¹(p) for the demand chain's switching draws is computed in __init__
PARAMS = ("revenue", "competition", "fixed_cost", "entry_cost")


class TabularLogitPolicy(Strategy):
    """Per-(instance, period, state) choice log-probabilities ``table [K, T, S, n, 2]``; the
    period and state are decoded from the one-hot observations (index t · S + s)."""

    def __init__(self, table: Tensor, horizon: int) -> None:
        super().__init__()
        self.register_buffer("table", table.detach().clone())
        self.horizon = horizon

    def logits(self, obs: Tensor) -> Tensor:
        n_states = self.table.shape[2]
        flat = obs[..., 0, :].argmax(-1)  # [..., K, B]
        t, index = flat // n_states, flat % n_states
        k = torch.arange(self.table.shape[0], device=obs.device).view(-1, 1)
        return self.table[k, t, index].to(obs.dtype)  # [..., K, B, n, 2]

    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        return self.logits(obs).gather(-1, actions.long()).squeeze(-1)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        logp = self.logits(obs)
        # one draw per (instance, environment, agent), shared by the leading deviation rows:
        # common random numbers lower the variance of regret (a difference of returns)
        uniform = torch.rand(logp.shape[-4:], device=logp.device, dtype=logp.dtype)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
        choice = (logp + gumbel).argmax(-1, keepdim=True)
        return ActionSample(choice.to(logp.dtype), logp.gather(-1, choice).squeeze(-1))


class EntryGame(MarkovGame):
    """Dynamic entry/exit with logit shocks (entropy-regularised Markov game)."""

    def __init__(
        self,
        n_firms: int = 2,
        revenue: float = 1.0,
        competition: float = 1.5,
        fixed_cost: float = 0.5,
        entry_cost: float = 1.0,
        shock_scale: float = 0.5,
        demand_persistence: float = 0.8,
        discount: float = 0.95,
        horizon: int = 5,
        learn: Sequence[str] = ("competition", "entry_cost"),
        param_bounds: Sequence[float] = (0.0, 5.0),
    ) -> None:
        if n_firms < 1:
            raise ImitgameError(f"n_firms must be >= 1, got {n_firms}")
        if shock_scale <= 0:
            raise ImitgameError(f"shock_scale τ must be > 0, got {shock_scale}")
        if not 0 < demand_persistence < 1:
            raise ImitgameError(f"demand_persistence must lie in (0, 1), got {demand_persistence}")
        unknown = [name for name in learn if name not in PARAMS]
        if unknown or not learn:
            raise ImitgameError(f"learn: {list(learn)} must name entries of {list(PARAMS)}")
        self.entropy_weight = float(shock_scale)
        self.persistence = float(demand_persistence)
        super().__init__(
            n_agents=n_firms,
            action_dim=1,
            action_low=0.0,
            action_high=1.0,
            param_names=list(PARAMS),
            param_low=param_bounds[0],
            param_high=param_bounds[1],
            true_params=[revenue, competition, fixed_cost, entry_cost],
            horizon=horizon,
            discount=discount,
            state_dim=n_firms + 2,
            obs_dim=horizon * 2 ** (n_firms + 1),
            noise_dim=n_firms + 1,
            n_discrete_actions=2,
        )
        self.learned_params = [name for name in PARAMS if name in learn]
        self.switch = float(
            torch.distributions.Normal(0.0, 1.0).icdf(
                torch.tensor(demand_persistence, dtype=torch.float64)
            )
        )

    # --- dynamics -------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(theta.shape[:-1], noise.shape[:-1])
        noise = noise.expand(*shape, self.noise_dim)
        z = (noise[..., 0] > 0).to(noise.dtype)
        # incumbency drawn at random, so entrants and incumbents are both observed in every state
        w = (noise[..., 1:] > 0).to(noise.dtype)
        return torch.cat([w, z[..., None], torch.zeros_like(z)[..., None]], dim=-1)

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        n = self.n_agents
        z = state[..., n]
        stay = noise[..., 0] < self.switch  # probability demand_persistence
        z_next = torch.where(stay, z, 1 - z)
        w = actions[..., 0]
        shape = torch.broadcast_shapes(z_next.shape, w.shape[:-1])
        return torch.cat(
            [
                w.expand(*shape, n),
                z_next.expand(shape)[..., None],
                state[..., -1:].expand(*shape, 1) + 1,
            ],
            dim=-1,
        )

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        n = self.n_agents
        a = actions[..., 0]
        w, z = state[..., :n], state[..., n : n + 1]
        rev, comp, fixed, entry = (theta[..., j : j + 1] for j in range(4))
        rivals = a.sum(-1, keepdim=True) - a
        profit = rev * (1 + z) - comp * rivals - fixed - entry * (1 - w)
        return a * profit

    def observe(self, state: Tensor) -> Tensor:
        """One-hot of (period t, state (w, z)) for every agent: ``[..., n, T · 2^(n+1)]`` (a
        linear policy on it is tabular, so deviations can represent any Markov policy)."""
        n = self.n_agents
        bits = state[..., : n + 1].round().long()
        index = (bits * 2 ** torch.arange(n + 1, device=state.device)).sum(-1)
        t = state[..., -1].round().long().clamp(0, self.horizon - 1)
        feats = torch.nn.functional.one_hot(t * 2 ** (n + 1) + index, self.obs_dim)
        feats = feats.to(state.dtype)
        return feats.unsqueeze(-2).expand(*feats.shape[:-1], n, self.obs_dim)

    # --- closed forms ---------------------------------------------------------------------------
    def _states(self) -> Tensor:
        """All states ``[S, n + 1]`` = (w, z) with index Σ_j bit_j 2^j."""
        n = self.n_agents
        idx = torch.arange(2 ** (n + 1), device=self.device)
        bits = (idx[:, None] >> torch.arange(n + 1, device=self.device)) & 1
        return bits.to(self.dtype)

    def _solve(self, theta: Tensor, responders: Tensor, base: Tensor | None) -> Tensor:
        """Soft backward induction for ``theta [K, p]``; agents in ``responders [n]`` play soft
        best responses (a damped fixed point among them), the rest follow ``base [K, T, S, n, 2]``.
        Returns log-probabilities ``[K, T, S, n, 2]``."""
        n, tau, beta = self.n_agents, self.entropy_weight, self.discount
        states = self._states()  # [S, n + 1]
        n_states = states.shape[0]
        k = theta.shape[0]
        # joint action profiles [A, n] and the next state's index for each (state, profile)
        profiles = (
            (torch.arange(2**n, device=self.device)[:, None] >> torch.arange(n, device=self.device))
            & 1
        ).to(self.dtype)
        z = states[:, n]
        w_index = (profiles * 2 ** torch.arange(n, device=self.device)).sum(-1).long()  # [A]
        full = torch.cat(
            [
                states[:, None, :n].expand(n_states, 2**n, n),
                states[:, None, n:].expand(n_states, 2**n, 1),
                states.new_zeros(n_states, 2**n, 1),
            ],
            -1,
        )  # [S, A, n + 2]
        r = self.reward(
            full, profiles[None, :, :, None].expand(n_states, -1, n, 1), theta[:, None, None, :]
        )  # [K, S, A, n]
        value = torch.zeros(k, n_states, n, dtype=self.dtype, device=self.device)
        tables = []
        for t in reversed(range(self.horizon)):
            # E V(s') for each (state, profile): z' = z w.p. persistence
            same = w_index[None, :] + (2**n) * z.long()[:, None]  # [S, A]
            flip = w_index[None, :] + (2**n) * (1 - z.long())[:, None]
            cont = self.persistence * value[:, same] + (1 - self.persistence) * value[:, flip]
            q_joint = r + beta * cont  # [K, S, A, n]
            logp = states.new_full((k, n_states, n, 2), -0.6931471805599453)
            if base is not None:
                logp = torch.where(responders[:, None], logp, base[:, t])
            for it in range(300 if int(responders.sum()) > 1 else 1):
                probs = logp.exp()  # [K, S, n, 2]
                # P(profile) excluding agent i, and Q_i(a_i) = E_{a_-i}[q_joint]
                chosen = probs[:, :, None, :, :].expand(k, n_states, 2**n, n, 2)
                index = profiles.long()[None, None, :, :, None].expand(k, n_states, -1, -1, 1)
                pick = chosen.gather(-1, index).squeeze(-1)  # gather does not broadcast
                q_own = []
                for a_i in (0, 1):  # two actions: not a loop over agents or instances
                    mask = (profiles == a_i).to(self.dtype)  # [A, n]
                    others = torch.exp(
                        torch.log(pick.clamp(min=1e-300)).sum(-1, keepdim=True)
                        - torch.log(pick.clamp(min=1e-300))
                    )  # [K, S, A, n]
                    q_own.append((others * mask * q_joint).sum(2))
                q = torch.stack(q_own, -1)  # [K, S, n, 2]
                new = torch.log_softmax(q / tau, -1)
                new = torch.where(responders[:, None], new, logp)
                if it:
                    new = torch.log_softmax(0.5 * new + 0.5 * logp, -1)  # damping
                logp = new
            tables.append(logp)
            probs = logp.exp()
            value = (probs * (q - tau * logp)).sum(-1)  # soft value [K, S, n]
        return torch.stack(tables[::-1], dim=1)

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        everyone = torch.ones(self.n_agents, dtype=torch.bool, device=self.device)
        return TabularLogitPolicy(self._solve(theta.detach(), everyone, None), self.horizon)

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        """Soft best responses to a tabular profile (row i of the result is ρ_i)."""
        if not isinstance(profile, TabularLogitPolicy):
            return None
        eye = torch.eye(self.n_agents, dtype=torch.bool, device=self.device)
        parts = [
            self._solve(theta.detach(), eye[i], profile.table)[..., i, :]
            for i in range(self.n_agents)
        ]
        return TabularLogitPolicy(torch.stack(parts, dim=-2), self.horizon)
