"""Policy networks: joint strategies for Markov games (and context-dependent one-shot play).

Every (instance, agent) pair has its own network; all of them run as one batched einsum.
Observations are laid out ``[..., K, B, n, obs_dim]`` (an optional deviation-row dim in front),
weights ``[K, n, in, out]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame
from imitgame.game.hooks import attribute
from imitgame.game.strategies import ActionSample, Strategy


class BatchedMLP(nn.Module):
    """K × n independent MLPs ``in_dim -> hidden... -> out_dim`` with tanh hidden layers."""

    def __init__(
        self,
        n_instances: int,
        n_agents: int,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (64, 64),
    ) -> None:
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = fan_in**-0.5
            w = torch.empty(n_instances, n_agents, fan_in, fan_out).uniform_(-bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_instances, n_agents, fan_out)))

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., K, B, n, in]`` -> ``[..., K, B, n, out]``."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.einsum("...kbni,knio->...kbno", x, w) + b[:, None]
            if i < last:
                x = torch.tanh(x)
        return x


class DeterministicPolicy(Strategy):
    """a = low + (high − low) · sigmoid(MLP(o)): deterministic, bounded, differentiable."""

    def __init__(
        self,
        n_instances: int,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        low: Tensor,
        high: Tensor,
        hidden: Sequence[int] = (64, 64),
        obs_scale: Tensor | float = 1.0,
    ) -> None:
        super().__init__()
        self.net = BatchedMLP(n_instances, n_agents, obs_dim, action_dim, hidden)
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())
        self.register_buffer("obs_scale", torch.as_tensor(obs_scale, dtype=low.dtype))

    def act(self, obs: Tensor, t: int) -> ActionSample:
        z = self.net(obs / self.obs_scale)
        return ActionSample(self.low + (self.high - self.low) * torch.sigmoid(z))


def _squash(low: Tensor, high: Tensor, u: Tensor) -> Tensor:
    return low + (high - low) * torch.sigmoid(u)


def _unsquash(low: Tensor, high: Tensor, a: Tensor, eps: float = 1e-6) -> Tensor:
    y = ((a - low) / (high - low)).clamp(eps, 1 - eps)
    return torch.log(y) - torch.log1p(-y)


class GaussianPolicy(Strategy):
    """a = low + (high − low)·sigmoid(u), u ~ N(MLP(o), σ²) reparameterised (u = μ + σ ε).

    log π(a|o) = Σ_d [log N(u; μ, σ²) − log((high − low) σ'(u))] (change of variables),
    ``[..., n]``.
    ``log_std [K, n, d]`` is learned; ``deterministic=True`` plays the mode ``u = μ``.
    """

    def __init__(
        self,
        n_instances: int,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        low: Tensor,
        high: Tensor,
        hidden: Sequence[int] = (64, 64),
        obs_scale: Tensor | float = 1.0,
        init_std: float = 0.3,
    ) -> None:
        super().__init__()
        self.net = BatchedMLP(n_instances, n_agents, obs_dim, action_dim, hidden)
        self.log_std = nn.Parameter(
            torch.full((n_instances, n_agents, action_dim), float(init_std)).log()
        )
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())
        self.register_buffer("obs_scale", torch.as_tensor(obs_scale, dtype=low.dtype))
        self.deterministic = False
        # False: actions carry no pathwise gradient (pure score-function estimator)
        self.reparameterize = True

    def _dist(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.net(obs / self.obs_scale)  # [..., K, B, n, d]
        std = self.log_std.exp()[:, None]  # [K, 1, n, d]
        return mean, std.expand_as(mean)

    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        """log π(a|o) ``[..., n]`` of given actions (behaviour cloning, diagnostics)."""
        mean, std = self._dist(obs)
        u = _unsquash(self.low, self.high, actions)
        return self._log_prob_u(u, mean, std)

    def _log_prob_u(self, u: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        normal = torch.distributions.Normal(mean, std).log_prob(u)
        # log |da/du| = log(high − low) + log σ(u) + log σ(−u)
        jac = torch.log(self.high - self.low) + F.logsigmoid(u) + F.logsigmoid(-u)
        return (normal - jac).sum(-1)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        mean, std = self._dist(obs)
        if self.deterministic:
            return ActionSample(_squash(self.low, self.high, mean))
        # shocks shared by the leading deviation rows (common random numbers)
        eps = torch.randn(mean.shape[-4:], device=mean.device, dtype=mean.dtype)
        u = mean + std * eps
        if not self.reparameterize:
            u = u.detach()
        # the log-prob carries no pathwise gradient through u (score-function use)
        return ActionSample(
            _squash(self.low, self.high, u), self._log_prob_u(u.detach(), mean, std)
        )


class CategoricalPolicy(Strategy):
    """a ~ Categorical(softmax(MLP(o))) over ``n_actions`` choices; actions ``[..., n, 1]`` hold the
    choice index as a float (the game's discrete-action convention), log π(a|o) ``[..., n]``."""

    def __init__(
        self,
        n_instances: int,
        n_agents: int,
        obs_dim: int,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        obs_scale: Tensor | float = 1.0,
    ) -> None:
        super().__init__()
        self.net = BatchedMLP(n_instances, n_agents, obs_dim, n_actions, hidden)
        self.register_buffer("obs_scale", torch.as_tensor(obs_scale))

    def logits(self, obs: Tensor) -> Tensor:
        """Log-probabilities of every choice ``[..., n, n_actions]``."""
        return torch.log_softmax(self.net(obs / self.obs_scale.to(obs.dtype)), dim=-1)

    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        """log π(a|o) ``[..., n]`` of given choices ``actions [..., n, 1]``."""
        logp = self.logits(obs)
        return logp.gather(-1, actions.long()).squeeze(-1)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        logp = self.logits(obs)
        # Gumbel-max sampling: one batched op, no Python loop
        # one draw per (instance, environment, agent), shared by the leading deviation rows:
        # common random numbers lower the variance of regret (a difference of returns)
        uniform = torch.rand(logp.shape[-4:], device=logp.device, dtype=logp.dtype)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
        choice = (logp.detach() + gumbel).argmax(-1, keepdim=True)
        return ActionSample(choice.to(logp.dtype), logp.gather(-1, choice).squeeze(-1))


class FrozenStrategy(Strategy):
    """A strategy whose parameters are not trained (e.g. a behaviour-cloned observed policy)."""

    def __init__(self, strategy: Strategy) -> None:
        super().__init__()
        self.inner = strategy
        for p in self.inner.parameters():
            p.requires_grad_(False)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        return self.inner.act(obs, t)

    def logits(self, obs: Tensor) -> Tensor:
        """The inner policy's log-probabilities (categorical policies only)."""
        return self.inner.logits(obs)


class ResidualPolicy(Strategy):
    """A deviation that starts at a base policy: a = clip(π_base(o) + scale · MLP(o), low, high).

    The MLP's last layer starts at zero, so ρ = π_base (ψ = 0) at initialisation and ascent learns
    the profitable correction; the base's actions carry no gradient.
    """

    def __init__(
        self,
        base: Strategy,
        n_instances: int,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        low: Tensor,
        high: Tensor,
        hidden: Sequence[int] = (32, 32),
        obs_scale: Tensor | float = 1.0,
        scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.base = FrozenStrategy(base)
        self.net = BatchedMLP(n_instances, n_agents, obs_dim, action_dim, hidden)
        with torch.no_grad():
            self.net.weights[-1].zero_()
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())
        self.register_buffer("obs_scale", torch.as_tensor(obs_scale, dtype=low.dtype))
        self.scale = float(scale)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        base = self.base.act(obs, t).actions.detach()
        step = self.scale * (self.high - self.low) * self.net(obs / self.obs_scale)
        return ActionSample(torch.clamp(base + step, self.low, self.high))


class ResidualCategorical(Strategy):
    """Categorical deviation with logits = base logits + MLP(o) (last layer zero: starts at base).

    ``base`` must expose ``logits(obs) -> [..., n, n_actions]`` (log-probabilities).
    """

    def __init__(
        self,
        base: Strategy,
        n_instances: int,
        n_agents: int,
        obs_dim: int,
        n_actions: int,
        hidden: Sequence[int] = (32, 32),
        obs_scale: Tensor | float = 1.0,
    ) -> None:
        super().__init__()
        self.base = FrozenStrategy(base)
        self.net = BatchedMLP(n_instances, n_agents, obs_dim, n_actions, hidden)
        with torch.no_grad():
            self.net.weights[-1].zero_()
        self.register_buffer("obs_scale", torch.as_tensor(obs_scale))

    def logits(self, obs: Tensor) -> Tensor:
        base = self.base.logits(obs).detach()
        return torch.log_softmax(base + self.net(obs / self.obs_scale.to(obs.dtype)), dim=-1)

    log_prob = CategoricalPolicy.log_prob
    act = CategoricalPolicy.act


def make_policy(
    game: MarkovGame,
    n_instances: int,
    kind: str,
    hidden: Sequence[int],
    *,
    profile: Strategy | None = None,
    estimator: str = "pathwise",
) -> Strategy:
    """One network per (instance, agent), of ``kind``: ``residual`` (``profile`` plus a learned
    correction), ``deterministic``, ``gaussian`` (reparameterised for the pathwise estimator) or
    ``categorical``. Discrete-action games always get categorical policies (residual ones around
    a categorical ``profile``). Built on the CPU in the default dtype: move it with ``.to``."""
    k, n, obs_dim, hidden = n_instances, game.n_agents, game.obs_dim, list(hidden)
    scale = attribute(game, "obs_scale")
    if game.n_discrete_actions is not None:
        m = game.n_discrete_actions
        if kind == "residual" and hasattr(profile, "logits"):
            return ResidualCategorical(profile, k, n, obs_dim, m, hidden, scale)
        return CategoricalPolicy(k, n, obs_dim, m, hidden, scale)
    low, high, d = game.action_low, game.action_high, game.action_dim
    if kind == "residual":
        if profile is None:
            raise ImitgameError("a residual policy needs the profile it corrects")
        return ResidualPolicy(profile, k, n, obs_dim, d, low, high, hidden, scale)
    if kind == "gaussian":
        policy = GaussianPolicy(k, n, obs_dim, d, low, high, hidden, scale)
        policy.reparameterize = estimator == "pathwise"
        return policy
    if kind == "categorical":
        raise ImitgameError(f"algo.policy=categorical needs a discrete-action game, not {game}")
    return DeterministicPolicy(k, n, obs_dim, d, low, high, hidden, scale)
