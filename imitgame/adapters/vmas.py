"""A VMAS scenario as an imitgame :class:`~imitgame.game.base.MarkovGame` with reward θ·features.

VMAS (Bettini et al., vectorised multi-agent simulator) keeps the physical state inside its
``World`` object; a :class:`MarkovGame` is a set of pure functions of an explicit state tensor.
The bridge (:class:`VmasGame`):

* **state** ``[..., E·6]``: for each of the world's E entities (landmarks and agents, in
  ``world.entities`` order) its ``pos (2), vel (2), rot (1), ang_vel (1)``;
* **transition(s, a)**: flatten the batch to N environments, *write* s into a VMAS world with
  ``num_envs = N`` (one per deviation row × instance × episode; one world per batch size, made
  once and cached), set each agent's action ``u = clamp(a, ±u_range) · u_multiplier`` through
  the scenario's own action processing, call ``world.step()`` (VMAS's batched physics: forces,
  collisions, integration, substeps) and *read* the state back. Each call is a pure function of
  its arguments: the world is only scratch space;
* **initial_state(θ, ε)**: a pool of ``initial_pool`` states drawn once by the scenario's own
  ``reset`` (seeded), indexed by Φ(ε) — the scenario's reset distribution, reproducible, and the
  same for the n + 1 deviation rows of one episode (the rollout expands it over rows);
* **reward(s, a; θ)** = Σ_f θ_f · feature_f(s, a) ``[..., n]``: named features (the scenario's
  own reward terms, see :data:`FEATURES`) or any differentiable ``reward_fn(game, s, a, θ)``.

Gradients: with ``grad_enabled=True`` (VMAS's differentiable mode) the transition keeps the
autograd graph through VMAS's torch physics (the pathwise estimator); with ``False`` it is
detached and the problem switches to the score-function estimator. Reward weights are
identified only up to scale: a config fixes one weight (``learn`` lists the others).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame

ENTITY_WIDTH = 6  # pos (2), vel (2), rot (1), ang_vel (1)
FeatureFn = Callable[["VmasGame", Tensor, Tensor], Tensor]


def _import_vmas() -> Any:
    try:
        import vmas
    except ImportError:
        raise ImitgameError("the VMAS adapter needs vmas: pip install 'imitgame[sim]'") from None
    return vmas


# --- reward features: (game, state [..., S], actions [..., n, d]) -> [..., n] --------------------
def goal_distance(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖p_i − g_i‖: distance of agent i to its own goal (navigation's ``agent.goal``)."""
    return -(game.agent_pos(state) - game.pos(state, game.goal_index)).norm(dim=-1)


def agent_collision(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−Σ_{j≠i} relu(r_i + r_j − ‖p_i − p_j‖) / (r_i + r_j): overlap with the other agents
    (a smooth version of the scenario's collision penalty)."""
    pos = game.agent_pos(state)  # [..., n, 2]
    gap = (pos.unsqueeze(-2) - pos.unsqueeze(-3)).pow(2).sum(-1).add(1e-12).sqrt()  # [..., n, n]
    reach = game.agent_radius.unsqueeze(-1) + game.agent_radius  # [n, n]
    overlap = torch.relu(reach - gap) / reach
    eye = torch.eye(game.n_agents, dtype=torch.bool, device=state.device)
    return -overlap.masked_fill(eye, 0.0).sum(-1)


def agent_proximity(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−Σ_{j≠i} exp(−(‖p_i − p_j‖ / ℓ)² / 4), ℓ = ``proximity_scale`` or r_i + r_j: a smooth
    keep-your-distance term (nonzero everywhere, unlike the overlap penalty, so its weight is
    identified from play that rarely collides)."""
    pos = game.agent_pos(state)
    gap2 = (pos.unsqueeze(-2) - pos.unsqueeze(-3)).pow(2).sum(-1)  # [..., n, n]
    reach = game.agent_radius.unsqueeze(-1) + game.agent_radius
    if game.proximity_scale is not None:
        reach = torch.full_like(reach, game.proximity_scale)
    near = torch.exp(-gap2 / (4 * reach.pow(2)))
    eye = torch.eye(game.n_agents, dtype=torch.bool, device=state.device)
    return -near.masked_fill(eye, 0.0).sum(-1)


def control_effort(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖a_i‖²: control effort (actions before VMAS's ``u_multiplier``)."""
    return -actions.pow(2).sum(-1)


def team_goal_distance(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−min_j ‖p_j − p_goal‖ for every agent: the team is rewarded when *any* agent is at the
    shared goal (dropout's objective: who goes is a coordination game)."""
    gap = (game.agent_pos(state) - game.pos(state, game.entity("goal")).unsqueeze(-2)).norm(dim=-1)
    closest = gap.min(-1).values
    return -closest.unsqueeze(-1).expand(*closest.shape, game.n_agents)


def shared_goal_distance(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖p_i − p_goal‖: agent i's own distance to the shared goal (an individual incentive to
    go, against the team's ``team_goal_distance``)."""
    goal = game.pos(state, game.entity("goal")).unsqueeze(-2)
    return -(game.agent_pos(state) - goal).norm(dim=-1)


def speed(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖v_i‖²: kinetic energy of agent i."""
    view = state.unflatten(-1, (len(game.entity_names), ENTITY_WIDTH))
    return -view[..., game.agent_index, 2:4].pow(2).sum(-1)


def package_goal_distance(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖p_package − p_goal‖ for every agent (transport's shared objective)."""
    gap = (game.pos(state, game.entity("package 0")) - game.pos(state, game.entity("goal"))).norm(
        dim=-1
    )
    return -gap.unsqueeze(-1).expand(*gap.shape, game.n_agents)


def package_distance(game: VmasGame, state: Tensor, actions: Tensor) -> Tensor:
    """−‖p_i − p_package‖: agent i's distance to the package (transport's shaping)."""
    package = game.pos(state, game.entity("package 0")).unsqueeze(-2)
    return -(game.agent_pos(state) - package).norm(dim=-1)


FEATURES: dict[str, FeatureFn] = {
    "goal_distance": goal_distance,
    "agent_collision": agent_collision,
    "agent_proximity": agent_proximity,
    "control_effort": control_effort,
    "team_goal_distance": team_goal_distance,
    "shared_goal_distance": shared_goal_distance,
    "speed": speed,
    "package_goal_distance": package_goal_distance,
    "package_distance": package_distance,
}


class VmasGame(MarkovGame):
    """A VMAS scenario (continuous, holonomic actions) with reward θ·features(s, a).

    ``features`` name entries of :data:`FEATURES` (θ has one weight ``w_<feature>`` each);
    ``weights`` are the true weights (synthetic data), ``learn`` the weights to recover (the
    others are held at their values: the normalisation, since θ is identified only up to
    scale). ``scenario_kwargs`` go to ``vmas.make_env``. ``reward_fn(game, s, a, θ) -> [..., n]``
    replaces the linear reward (Python use).
    """

    def __init__(
        self,
        scenario: str,
        *,
        features: Sequence[str],
        weights: Sequence[float],
        learn: Sequence[str] | None = None,
        weight_bounds: Sequence[float] = (0.0, 5.0),
        horizon: int = 20,
        discount: float = 1.0,
        grad_enabled: bool = True,
        initial_pool: int = 4096,
        seed: int = 0,
        scenario_kwargs: dict[str, Any] | None = None,
        reward_fn: Callable[..., Tensor] | None = None,
        proximity_scale: float | None = None,
    ) -> None:
        vmas = _import_vmas()
        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            raise ImitgameError(
                f"unknown VMAS reward feature(s) {unknown}; known: {list(FEATURES)}"
            )
        if len(weights) != len(features):
            raise ImitgameError(f"{len(weights)} weights for {len(features)} features {features}")
        if initial_pool < 1:
            raise ImitgameError(f"initial_pool must be >= 1, got {initial_pool}")
        self.scenario = str(scenario)
        self.scenario_kwargs = dict(scenario_kwargs or {})
        self.grad_enabled = bool(grad_enabled)
        self.differentiable = self.grad_enabled  # False: score-function estimator
        self.seed = int(seed)
        try:
            probe = _make_env(
                vmas,
                self.scenario,
                num_envs=int(initial_pool),
                device="cpu",
                continuous_actions=True,
                seed=self.seed,
                **self.scenario_kwargs,
            )
        except Exception as exc:  # an unknown scenario or bad kwargs: VMAS's own message
            raise ImitgameError(f"vmas.make_env({self.scenario!r}) failed: {exc}") from None
        world = probe.world
        sizes = {a.action_size for a in world.agents}
        if sizes != {world.dim_p}:
            raise ImitgameError(
                f"VMAS scenario {self.scenario!r}: the adapter needs holonomic agents with "
                f"{world.dim_p}-dim force actions, got action sizes {sorted(sizes)}"
            )
        self.entity_names = [e.name for e in world.entities]
        self.agent_index = [self.entity_names.index(a.name) for a in world.agents]
        u_range = torch.tensor([a.u_range for a in world.agents], dtype=torch.float64)
        self.feature_names = list(features)
        names = [f"w_{f}" for f in self.feature_names]
        learned = [f"w_{f}" for f in (learn if learn is not None else features)]
        bad = [name for name in learned if name not in names]
        if bad:
            raise ImitgameError(f"learn names {bad}, not among the features {list(features)}")
        super().__init__(
            n_agents=len(world.agents),
            action_dim=world.dim_p,
            action_low=-u_range.unsqueeze(-1).expand(-1, world.dim_p),
            action_high=u_range.unsqueeze(-1).expand(-1, world.dim_p),
            param_names=names,
            param_low=weight_bounds[0],
            param_high=weight_bounds[1],
            true_params=list(weights),
            horizon=horizon,
            discount=discount,
            state_dim=ENTITY_WIDTH * len(self.entity_names),
            obs_dim=ENTITY_WIDTH * len(self.entity_names),
            noise_dim=1,
            agent_names=[a.name for a in world.agents],
        )
        self.learned_params = learned
        self.reward_fn = reward_fn
        self.proximity_scale = None if proximity_scale is None else float(proximity_scale)
        dtype = torch.get_default_dtype()
        self.register_buffer("initial_pool", _read_state(world).to(dtype))
        self.register_buffer(
            "u_multiplier", torch.tensor([a.u_multiplier for a in world.agents], dtype=dtype)
        )
        radius = [getattr(a.shape, "radius", 0.0) for a in world.agents]
        self.register_buffer("agent_radius", torch.tensor(radius, dtype=dtype))
        goals = [getattr(getattr(a, "goal", None), "name", None) for a in world.agents]
        self.goal_index = [
            self.entity_names.index(g) if g in self.entity_names else -1 for g in goals
        ]
        self._worlds: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._worlds[(int(initial_pool), "cpu")] = probe

    # --- the state layout -----------------------------------------------------------------------
    def entity(self, name: str) -> int:
        if name not in self.entity_names:
            raise ImitgameError(f"{self.scenario} has no entity {name!r} ({self.entity_names})")
        return self.entity_names.index(name)

    def pos(self, state: Tensor, index: int | Sequence[int]) -> Tensor:
        """Positions ``[..., 2]`` of entity ``index`` (or ``[..., m, 2]`` of a list)."""
        view = state.unflatten(-1, (len(self.entity_names), ENTITY_WIDTH))
        if isinstance(index, int):
            return view[..., index, :2]
        if any(i < 0 for i in index):
            raise ImitgameError(f"a feature needs goals, but {self.scenario}'s agents have none")
        return view[..., list(index), :2]

    def agent_pos(self, state: Tensor) -> Tensor:
        """Agent positions ``[..., n, 2]``."""
        return self.pos(state, self.agent_index)

    # --- the game ---------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        """A state from the scenario's reset pool: index ⌊Φ(ε) · P⌋ ``[..., S]``."""
        pool = self.initial_pool
        index = (torch.special.ndtr(noise[..., 0]) * pool.shape[0]).long()
        return pool[index.clamp(0, pool.shape[0] - 1)]

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        """One VMAS ``world.step()`` from ``state`` under ``actions`` (see the module docstring)."""
        shape = torch.broadcast_shapes(state.shape[:-1], actions.shape[:-2])
        flat_state = state.expand(*shape, self.state_dim).reshape(-1, self.state_dim)
        flat_actions = actions.expand(*shape, self.n_agents, self.action_dim)
        flat_actions = flat_actions.reshape(-1, self.n_agents, self.action_dim)
        if not self.grad_enabled:
            flat_state, flat_actions = flat_state.detach(), flat_actions.detach()
        env = self._world(flat_state.shape[0])
        world = env.world
        _write_state(world, flat_state)
        u = torch.maximum(torch.minimum(flat_actions, self.action_high), self.action_low)
        u = u * self.u_multiplier.view(-1, 1)
        for i, agent in enumerate(world.agents):  # VMAS's API is per agent
            agent.action.u = u[:, i]
            env.scenario.env_process_action(agent)
        with _float32_default():
            env.scenario.pre_step()
            world.step()
            env.scenario.post_step()
        nxt = _read_state(world).to(dtype=state.dtype)
        return nxt.view(*shape, self.state_dim)

    def features(self, state: Tensor, actions: Tensor) -> Tensor:
        """Reward features ``[..., n, F]``."""
        cols = [FEATURES[f](self, state, actions) for f in self.feature_names]
        return torch.stack(torch.broadcast_tensors(*cols), dim=-1)

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        """r_i = Σ_f θ_f feature_f(s, a)_i ``[..., n]`` (or ``reward_fn``)."""
        if self.reward_fn is not None:
            return self.reward_fn(self, state, actions, theta)
        return (self.features(state, actions) * theta.unsqueeze(-2)).sum(-1)

    def observe(self, state: Tensor) -> Tensor:
        return state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1])

    def _world(self, n_envs: int) -> Any:
        """The cached VMAS environment with ``n_envs`` worlds on the game's device."""
        key = (int(n_envs), str(self.device))
        env = self._worlds.get(key)
        if env is None:
            vmas = _import_vmas()
            env = _make_env(
                vmas,
                self.scenario,
                num_envs=int(n_envs),
                device=self.device,
                continuous_actions=True,
                grad_enabled=self.grad_enabled,
                seed=self.seed,
                **self.scenario_kwargs,
            )
            with _float32_default():
                env.reset()
            self._worlds[key] = env
            while len(self._worlds) > 6:
                self._worlds.popitem(last=False)
        else:
            self._worlds.move_to_end(key)
        return env

    def cache_key(self) -> str:
        """What identifies this game's expert data (see :mod:`imitgame.problems.expert`)."""
        return repr(
            (
                "vmas",
                self.scenario,
                sorted(self.scenario_kwargs.items()),
                self.feature_names,
                self.horizon,
                self.discount,
                self.grad_enabled,
                self.proximity_scale,
                self.initial_pool.shape[0],
                self.seed,
            )
        )


class _float32_default:
    """VMAS builds its constants in torch's default dtype and mixes them with float32 ones: it
    runs with float32 as the default (imitgame's runs default to float64)."""

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)

    def __exit__(self, *exc: object) -> None:
        torch.set_default_dtype(self.previous)


def _make_env(vmas: Any, scenario: str, **kwargs: Any) -> Any:
    with _float32_default():
        return vmas.make_env(scenario, **kwargs)


def _read_state(world: Any) -> Tensor:
    """``[N, E·6]`` from the world's entities."""
    cols = []
    for e in world.entities:
        s = e.state
        cols += [s.pos, s.vel, s.rot, s.ang_vel]
    return torch.cat(cols, dim=-1)


def _write_state(world: Any, state: Tensor) -> None:
    """Set every entity's pos, vel, rot, ang_vel from ``state [N, E·6]``."""
    view = state.unflatten(-1, (len(world.entities), ENTITY_WIDTH))
    for j, e in enumerate(world.entities):
        e.state.pos = view[:, j, 0:2]
        e.state.vel = view[:, j, 2:4]
        e.state.rot = view[:, j, 4:5]
        e.state.ang_vel = view[:, j, 5:6]


__all__ = ["FEATURES", "VmasGame"]
