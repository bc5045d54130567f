"""Game base classes: a batched, differentiable Markov game and its one-shot special case.

Shapes (any leading batch shape ``...`` broadcasts; the framework uses ``[K, B]`` = instances,
environments/observations, and prepends a deviation row dimension when it estimates regret):

* ``theta``   ``[..., param_dim]``
* ``state``   ``[..., state_dim]``
* ``actions`` ``[..., n_agents, action_dim]``
* ``obs``     ``[..., n_agents, obs_dim]``
* ``reward``  ``[..., n_agents]``
* ``noise``   ``[..., noise_dim]`` (explicit randomness; ``noise_dim`` may be 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from imitgame.errors import ImitgameError
from imitgame.game.hooks import provides
from imitgame.game.parallel_env import ParallelEnvFace


def _as_bounds(value: float | Sequence[float] | Tensor, shape: tuple[int, ...]) -> Tensor:
    tensor = torch.as_tensor(value, dtype=torch.get_default_dtype())
    try:
        return tensor.expand(shape).clone()
    except RuntimeError:
        raise ImitgameError(
            f"bounds of shape {list(tensor.shape)} do not fit the expected shape {list(shape)}"
        ) from None


class MarkovGame(ParallelEnvFace, nn.Module):
    """A batched, differentiable n-player Markov game ``(S, A, T, r, γ, H)`` parameterised by θ.

    A subclass calls ``super().__init__(...)`` with its dimensions and bounds, and implements four
    pure tensor functions: :meth:`initial_state`, :meth:`transition`, :meth:`reward`,
    :meth:`observe`. Randomness enters only through the explicit ``noise`` argument, drawn by
    :meth:`sample_noise` (override it for non-Gaussian shocks), so rollouts are reproducible and
    pathwise-differentiable. Constants belong in buffers so that ``.to(device)`` and ``.double()``
    move them.

    Parameter bounds Θ = [param_low, param_high] (a box) and action bounds are validated here.
    """

    metadata = {"name": "imitgame_game", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        *,
        n_agents: int,
        action_dim: int,
        action_low: float | Sequence[float] | Tensor,
        action_high: float | Sequence[float] | Tensor,
        param_names: Sequence[str],
        param_low: float | Sequence[float] | Tensor,
        param_high: float | Sequence[float] | Tensor,
        true_params: Sequence[float] | Tensor | None = None,
        horizon: int,
        discount: float = 1.0,
        state_dim: int,
        obs_dim: int,
        noise_dim: int = 0,
        n_discrete_actions: int | None = None,
        agent_names: Sequence[str] | None = None,
    ) -> None:
        nn.Module.__init__(self)
        if n_agents < 1:
            raise ImitgameError(f"n_agents must be >= 1, got {n_agents}")
        if action_dim < 1:
            raise ImitgameError(f"action_dim must be >= 1, got {action_dim}")
        if horizon < 1:
            raise ImitgameError(f"horizon must be >= 1, got {horizon}")
        if not 0.0 < discount <= 1.0:
            raise ImitgameError(f"discount must lie in (0, 1], got {discount}")
        self.n_agents = int(n_agents)
        self.action_dim = int(action_dim)
        self.horizon = int(horizon)
        self.discount = float(discount)
        self.state_dim = int(state_dim)
        self.obs_dim = int(obs_dim)
        self.noise_dim = int(noise_dim)
        self.n_discrete_actions = n_discrete_actions
        self.param_names = list(param_names)
        self.param_dim = len(self.param_names)
        # the entries of θ an inverse problem learns (a subclass may narrow it; the rest is known)
        self.learned_params = list(self.param_names)
        if self.param_dim < 1:
            raise ImitgameError("a game needs at least one parameter name")

        a_low = _as_bounds(action_low, (self.n_agents, self.action_dim))
        a_high = _as_bounds(action_high, (self.n_agents, self.action_dim))
        if bool((a_low >= a_high).any()):
            raise ImitgameError(
                f"action bounds are empty or inverted: low {a_low.tolist()} "
                f">= high {a_high.tolist()}"
            )
        p_low = _as_bounds(param_low, (self.param_dim,))
        p_high = _as_bounds(param_high, (self.param_dim,))
        bad = (p_low >= p_high).nonzero().flatten().tolist()
        if bad:
            names = ", ".join(
                f"{self.param_names[i]} [{p_low[i].item():g}, {p_high[i].item():g}]" for i in bad
            )
            raise ImitgameError(f"parameter bounds are empty or inverted: {names}")
        self.register_buffer("action_low", a_low)
        self.register_buffer("action_high", a_high)
        self.register_buffer("param_low", p_low)
        self.register_buffer("param_high", p_high)

        if true_params is not None:
            true = torch.as_tensor(true_params, dtype=torch.get_default_dtype()).flatten()
            if true.numel() != self.param_dim:
                raise ImitgameError(
                    f"true_params has {true.numel()} entries, the game has {self.param_dim} "
                    f"parameters {self.param_names}"
                )
            outside = ((true < p_low) | (true > p_high)).nonzero().flatten().tolist()
            if outside:
                names = ", ".join(
                    f"{self.param_names[i]}={true[i].item():g} not in "
                    f"[{p_low[i].item():g}, {p_high[i].item():g}]"
                    for i in outside
                )
                raise ImitgameError(f"true parameters lie outside the parameter bounds: {names}")
            self.register_buffer("true_params", true)
        else:
            self.true_params = None

        names = (
            list(agent_names)
            if agent_names is not None
            else [f"agent_{i}" for i in range(self.n_agents)]
        )
        if len(names) != self.n_agents:
            raise ImitgameError(f"{len(names)} agent names for {self.n_agents} agents")
        self._init_parallel_env(names)

    # --- the game: pure tensor functions -------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        """s_0 ~ μ_θ: ``theta [..., p]``, ``noise [..., noise_dim]`` -> ``[..., state_dim]``."""
        raise NotImplementedError

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        """s' = T(s, a; θ, ε) -> ``[..., state_dim]``."""
        raise NotImplementedError

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        """r(s, a; θ) -> ``[..., n_agents]``."""
        raise NotImplementedError

    def observe(self, state: Tensor) -> Tensor:
        """Per-agent observations ``[..., n_agents, obs_dim]`` (default: the full state)."""
        return state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1])

    def sample_noise(
        self, batch_shape: Sequence[int], generator: torch.Generator | None = None
    ) -> Tensor:
        """Standard normal shocks ``[*batch_shape, noise_dim]`` on the game's device."""
        return torch.randn(
            (*batch_shape, self.noise_dim),
            generator=generator,
            device=self.param_low.device,
            dtype=self.param_low.dtype,
        )

    # --- helpers --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.param_low.device

    @property
    def dtype(self) -> torch.dtype:
        return self.param_low.dtype

    def project_actions(self, actions: Tensor) -> Tensor:
        """Euclidean projection onto the action box."""
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)

    def project_params(self, theta: Tensor) -> Tensor:
        """Euclidean projection onto Θ."""
        return torch.maximum(torch.minimum(theta, self.param_high), self.param_low)

    def param_index(self, name: str) -> int:
        if name not in self.param_names:
            raise ImitgameError(f"unknown parameter {name!r}; the game has {self.param_names}")
        return self.param_names.index(name)


class StaticGame(MarkovGame):
    """A one-shot game with continuous actions: the horizon-1 :class:`MarkovGame`.

    A subclass implements :meth:`payoffs` and may add closed forms :meth:`equilibrium` and
    :meth:`best_response`. The state of the horizon-1 game is the game's *context*: known,
    per-observation data such as a market's demand shifter (``context_dim`` columns, 0 for none);
    a game with context receives it as ``payoffs(actions, theta, context=...)``.
    """

    def __init__(
        self,
        *,
        n_agents: int,
        action_dim: int,
        action_low: float | Sequence[float] | Tensor,
        action_high: float | Sequence[float] | Tensor,
        param_names: Sequence[str],
        param_low: float | Sequence[float] | Tensor,
        param_high: float | Sequence[float] | Tensor,
        true_params: Sequence[float] | Tensor | None = None,
        context_dim: int = 0,
        agent_names: Sequence[str] | None = None,
    ) -> None:
        self.context_dim = int(context_dim)
        width = max(self.context_dim, 1)
        super().__init__(
            n_agents=n_agents,
            action_dim=action_dim,
            action_low=action_low,
            action_high=action_high,
            param_names=param_names,
            param_low=param_low,
            param_high=param_high,
            true_params=true_params,
            horizon=1,
            discount=1.0,
            state_dim=width,
            obs_dim=width,
            noise_dim=0,
            agent_names=agent_names,
        )

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """u(a; θ): ``actions [..., n, d]``, ``theta [..., p]`` -> ``[..., n]``."""
        raise NotImplementedError

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """Closed-form Nash equilibrium ``[..., n, d]`` (optional)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form equilibrium")

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Entry i of the result is agent i's best response to ``actions[..., -i, :]``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form best response")

    @property
    def has_equilibrium(self) -> bool:
        return provides(self, "equilibrium")

    @property
    def has_best_response(self) -> bool:
        return provides(self, "best_response")

    def default_context(self) -> Tensor:
        """The context used when none is given: ``[state_dim]`` (a constant 1 without context)."""
        return torch.ones(self.state_dim, device=self.device, dtype=self.dtype)

    def observed_contexts(self) -> Tensor | None:
        """Contexts ``[M, context_dim]`` under which synthetic observations are made (None: one)."""
        return None

    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        return self.default_context().expand(*noise.shape[:-1], self.state_dim)

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        return state

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        return self.payoffs_in(state, actions, theta)

    def payoffs_in(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        """``payoffs`` with the context taken from the horizon-1 state when the game has one."""
        if self.context_dim:
            return self.payoffs(actions, theta, context=state)
        return self.payoffs(actions, theta)

    def equilibrium_in(self, state: Tensor, theta: Tensor) -> Tensor:
        if self.context_dim:
            return self.equilibrium(theta, context=state)
        return self.equilibrium(theta)

    def best_response_in(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        if self.context_dim:
            return self.best_response(actions, theta, context=state)
        return self.best_response(actions, theta)
