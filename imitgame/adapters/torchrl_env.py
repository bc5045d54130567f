"""An imitgame game as a TorchRL environment, so TorchRL / BenchMARL algorithms train on it.

:class:`TorchRLGameEnv` wraps any :class:`~imitgame.MarkovGame` (a :class:`~imitgame.StaticGame`
is its horizon-1 case) as a batched ``torchrl.envs.EnvBase`` under fixed parameters θ. The keys
follow TorchRL's multi-agent convention (that of its VMAS wrapper and of BenchMARL): every agent
sits in one group ``"agents"`` of a nested tensordict, ``B`` = the env's ``batch_size``:

* ``("agents", "observation")`` ``[*B, n, obs_dim]`` -- ``game.observe(state)``;
* ``("agents", "action")`` ``[*B, n, action_dim]`` bounded by the game's action box
  (``Categorical`` ``[*B, n]`` where the game has ``n_discrete_actions``, or ``OneHot``
  ``[*B, n, n_discrete_actions]`` with ``categorical_actions=False``);
* ``("agents", "reward")`` ``[*B, n, 1]`` -- ``game.reward(state, action, θ)``;
* ``"state"`` ``[*B, state_dim]`` (the global state, for centralised critics) and ``"period"``
  ``[*B, 1]`` (the period t, what a time-dependent :class:`~imitgame.Strategy` reads);
* ``"done"``, ``"terminated"``, ``"truncated"`` ``[*B, 1]``. The game ends at its horizon T: its
  return is Σ_{t<T} γ^t r_t (a game such as the fish war puts its continuation value into the
  last reward), so period T is *terminal* (no bootstrapping) and ``truncated`` stays False.

Randomness: each reset draws the whole episode's shocks with ``game.sample_noise`` from the env's
own generator (``env.set_seed(s)``) in the order of
:func:`imitgame.solver.rollout.sample_episode_noise`, so an env seeded like
:func:`~imitgame.solver.rollout.episode_generator` reproduces imitgame's own rollouts exactly. The
discount γ of the game is ``env.discount`` (TorchRL losses take γ as their own argument). Actions
outside the box are projected onto it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.hooks import attribute, provides
from imitgame.game.strategies import ActionProfile, ActionSample, Strategy

try:
    from tensordict import TensorDict, TensorDictBase
    from tensordict.nn import TensorDictModuleBase
    from torchrl.data import Bounded, Categorical, Composite, OneHot, Unbounded
    from torchrl.envs import EnvBase
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImitgameError(
        "the TorchRL adapter needs torchrl and tensordict: pip install 'imitgame[sim]'"
    ) from None

GROUP = "agents"


class TorchRLGameEnv(EnvBase):
    """A :class:`~imitgame.MarkovGame` under fixed θ as a batched TorchRL environment.

    Args:
        game: the game (its device and dtype are the env's).
        theta: ``[p]`` or ``[*batch_size, p]`` (one θ per environment); None: ``game.true_params``.
        batch_size: the environments stepped together, e.g. ``(1024,)``.
        device: where the env lives (default: the game's device); the game is moved there.
        seed: seeds the env's shock generator (``set_seed`` re-seeds it).
        categorical_actions: discrete games only: integer actions (True) or one-hot (False).
    """

    def __init__(
        self,
        game: MarkovGame,
        theta: Tensor | Sequence[float] | None = None,
        *,
        batch_size: Sequence[int] | int = (1,),
        device: torch.device | str | None = None,
        seed: int = 0,
        categorical_actions: bool = True,
    ) -> None:
        if not isinstance(game, MarkovGame):
            raise ImitgameError(
                f"TorchRLGameEnv wraps an imitgame MarkovGame or StaticGame, not {type(game)}"
            )
        batch = torch.Size([batch_size] if isinstance(batch_size, int) else batch_size)
        if any(b < 1 for b in batch):
            raise ImitgameError(f"batch_size {list(batch)} must have positive entries")
        device = torch.device(device) if device is not None else game.device
        super().__init__(device=device, batch_size=batch)
        self.game = game.to(device)
        self.discount = game.discount
        self.horizon = game.horizon
        self.categorical_actions = bool(categorical_actions)
        self.group_map = {GROUP: list(game.possible_agents)}
        self.register_buffer("theta", self._check_theta(theta))
        self._generator = torch.Generator(device=self.game.device).manual_seed(int(seed))
        self._make_specs()
        # the running episodes: state [*B, s], period [*B], shocks [*B, T, noise_dim]
        self._state: Tensor | None = None
        self._period: Tensor | None = None
        self._shocks: Tensor | None = None

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path, *, instance: int = 0, **kwargs: Any) -> TorchRLGameEnv:
        """The game a finished run was fitted in (its ``config.yaml``) under its θ̂ (instance
        ``instance`` of ``results.json``); ``kwargs`` go to the constructor."""
        from omegaconf import OmegaConf

        from imitgame.results import load_run
        from imitgame.run.runner import CONFIG, build_game

        run_dir = Path(run_dir)
        if not (run_dir / CONFIG).is_file():
            raise ImitgameError(f"{run_dir}: no {CONFIG} (is it a finished run folder?)")
        results = load_run(run_dir)
        if not 0 <= instance < results.instances:
            raise ImitgameError(
                f"instance {instance} is out of range: the run has {results.instances} instance(s)"
            )
        cfg = OmegaConf.load(run_dir / CONFIG)
        game = build_game(cfg.env)
        if list(game.param_names) != list(results.param_names):
            raise ImitgameError(
                f"{run_dir}: its env config builds a game with parameters {game.param_names}, "
                f"results.json has {results.param_names}"
            )
        return cls(game, results.theta_hat[instance], **kwargs)

    def _check_theta(self, theta: Tensor | Sequence[float] | None) -> Tensor:
        game = self.game
        if theta is None:
            if game.true_params is None:
                raise ImitgameError(f"{type(game).__name__} has no true_params: pass theta=...")
            theta = game.true_params
        theta = torch.as_tensor(theta, dtype=game.dtype).to(game.device).detach().clone()
        if theta.dim() == 0 or theta.shape[-1] != game.param_dim:
            raise ImitgameError(
                f"theta has shape {list(theta.shape)}; the game has {game.param_dim} parameters "
                f"{game.param_names}"
            )
        if theta.dim() > 1 and theta.shape[:-1] != self.batch_size:
            raise ImitgameError(
                f"theta of shape {list(theta.shape)} is neither [p] nor [*batch_size, p] with "
                f"batch_size {list(self.batch_size)}"
            )
        if not bool(torch.isfinite(theta).all()):
            raise ImitgameError("theta contains NaN/inf")
        outside = (theta < game.param_low) | (theta > game.param_high)
        if bool(outside.any()):
            names = sorted({game.param_names[i] for i in outside.nonzero()[:, -1].tolist()})
            raise ImitgameError(f"theta lies outside the parameter bounds Θ in {names}")
        return theta

    def _make_specs(self) -> None:
        game, batch, dev = self.game, self.batch_size, self.game.device
        n, dtype = game.n_agents, game.dtype
        per_agent = (*batch, n)
        if game.n_discrete_actions is None:
            low = game.action_low.expand(*per_agent, game.action_dim)
            high = game.action_high.expand(*per_agent, game.action_dim)
            action = Bounded(low, high, low.shape, device=dev, dtype=dtype)
        elif self.categorical_actions:
            shape = per_agent if game.action_dim == 1 else (*per_agent, game.action_dim)
            action = Categorical(game.n_discrete_actions, shape, device=dev, dtype=torch.long)
        elif game.action_dim == 1:
            k = game.n_discrete_actions
            action = OneHot(k, (*per_agent, k), device=dev, dtype=torch.long)
        else:
            raise ImitgameError("one-hot actions need action_dim 1: use categorical_actions=True")
        self.action_spec = Composite(
            {GROUP: Composite(action=action, shape=per_agent)}, shape=batch, device=dev
        )
        self.observation_spec = Composite(
            {
                GROUP: Composite(
                    observation=Unbounded((*per_agent, game.obs_dim), device=dev, dtype=dtype),
                    shape=per_agent,
                ),
                "state": Unbounded((*batch, game.state_dim), device=dev, dtype=dtype),
                "period": Bounded(0, game.horizon, (*batch, 1), device=dev, dtype=torch.long),
            },
            shape=batch,
            device=dev,
        )
        self.reward_spec = Composite(
            {
                GROUP: Composite(
                    reward=Unbounded((*per_agent, 1), device=dev, dtype=dtype), shape=per_agent
                )
            },
            shape=batch,
            device=dev,
        )
        flag = Categorical(2, (*batch, 1), device=dev, dtype=torch.bool)
        self.done_spec = Composite(
            done=flag.clone(),
            terminated=flag.clone(),
            truncated=flag.clone(),
            shape=batch,
            device=dev,
        )

    # --- TorchRL's hooks ----------------------------------------------------------------------
    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self._generator.manual_seed(int(seed))

    def to(self, device: Any) -> TorchRLGameEnv:
        """Move the env, its game and θ; the shock generator is re-seeded on the new device from
        a draw of the old one (so a moved env stays reproducible under its seed)."""
        target = torch.device(device)
        if target == self.device:
            return self
        seed = int(torch.randint(2**62, (), generator=self._generator, device=self.game.device))
        super().to(target)
        self._generator = torch.Generator(device=self.game.device).manual_seed(seed)
        for name in ("_state", "_period", "_shocks"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(target))
        return self

    def _episode_start(self) -> tuple[Tensor, Tensor]:
        """Initial states ``[*B, s]`` and the episode's shocks ``[*B, T, noise_dim]``, drawn as
        :func:`~imitgame.solver.rollout.sample_episode_noise` draws them."""
        game, batch = self.game, tuple(self.batch_size)
        initial = game.sample_noise(batch, self._generator)
        steps = game.sample_noise((game.horizon, *batch), self._generator)
        state = game.initial_state(self.theta, initial).expand(*batch, game.state_dim)
        return state, steps.movedim(0, -2)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        state, shocks = self._episode_start()
        period = torch.zeros(self.batch_size, dtype=torch.long, device=state.device)
        mask = None
        has_mask = tensordict is not None and "_reset" in tensordict.keys()  # noqa: SIM118
        if has_mask and self._state is not None:
            mask = tensordict.get("_reset").reshape(self.batch_size)
        if mask is None or bool(mask.all()):
            self._state, self._period, self._shocks = state, period, shocks
        else:  # partial reset: only the flagged environments start a new episode
            self._state = torch.where(mask[..., None], state, self._state)
            self._period = torch.where(mask, period, self._period)
            self._shocks = torch.where(mask[..., None, None], shocks, self._shocks)
        return self._output(reward=None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        game = self.game
        actions = self._read_action(tensordict.get((GROUP, "action")))
        t = self._period.clamp(max=game.horizon - 1)
        index = t[..., None, None].expand(*t.shape, 1, game.noise_dim)
        noise = self._shocks.gather(-2, index).squeeze(-2)  # [*B, noise_dim]
        reward = game.reward(self._state, actions, self.theta)
        self._state = game.transition(self._state, actions, self.theta, noise)
        self._period = self._period + 1
        return self._output(reward=reward)

    # --- helpers ------------------------------------------------------------------------------
    def _read_action(self, action: Tensor) -> Tensor:
        """TorchRL actions -> the game's ``[*B, n, d]`` float actions inside the box."""
        game = self.game
        if game.n_discrete_actions is None:
            return game.project_actions(action.to(game.dtype))
        if not self.categorical_actions:
            action = action.argmax(-1)
        if game.action_dim == 1:
            action = action.unsqueeze(-1)
        return action.clamp(0, game.n_discrete_actions - 1).to(game.dtype)

    def _output(self, reward: Tensor | None) -> TensorDictBase:
        game = self.game
        terminated = (self._period >= game.horizon)[..., None]
        # contiguous: the game may return expanded views (one obs shared by all agents), which
        # TorchRL transforms that write in place could not write to
        agents: dict[str, Tensor] = {"observation": game.observe(self._state).contiguous()}
        if reward is not None:
            agents["reward"] = reward.unsqueeze(-1).contiguous()
        return TensorDict(
            {
                GROUP: TensorDict(agents, batch_size=(*self.batch_size, game.n_agents)),
                "state": self._state.contiguous(),
                "period": self._period[..., None],
                "done": terminated.clone(),
                "terminated": terminated,
                "truncated": torch.zeros_like(terminated),
            },
            batch_size=self.batch_size,
            device=self.device,
        )


class StrategyActor(TensorDictModuleBase):
    """An imitgame :class:`~imitgame.Strategy` as a TorchRL policy for :class:`TorchRLGameEnv`.

    Reads ``("agents", "observation")`` ``[*B, n, obs_dim]`` and ``"period"`` ``[*B, 1]``, calls
    ``strategy.act(obs[None], t)`` (one instance, K = 1) for each period present in the batch and
    writes ``("agents", "action")`` in the env's action format (and ``("agents",
    "action_log_prob")`` ``[*B, n]`` for a stochastic strategy).
    """

    def __init__(self, strategy: Strategy, env: TorchRLGameEnv) -> None:
        super().__init__()
        self.strategy = strategy
        self.n_discrete_actions = env.game.n_discrete_actions
        self.categorical_actions = env.categorical_actions
        self.action_dim = env.game.action_dim
        self.in_keys = [(GROUP, "observation"), "period"]
        self.out_keys = [(GROUP, "action")]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs = tensordict.get((GROUP, "observation"))
        period = tensordict.get("period")[..., 0]
        actions, log_prob = None, None
        # a time-varying policy takes t as a Python int: one call per period present (≤ T calls)
        for t in period.unique().tolist():
            sample = self.strategy.act(obs.unsqueeze(0), int(t))
            act = sample.actions.squeeze(0).expand(*obs.shape[:-1], self.action_dim)
            here = (period == t)[..., None, None]
            actions = act if actions is None else torch.where(here, act, actions)
            if sample.log_prob is not None:
                lp = sample.log_prob.squeeze(0)
                log_prob = lp if log_prob is None else torch.where(here[..., 0], lp, log_prob)
        if self.n_discrete_actions is not None:
            actions = actions.round().long()
            if self.action_dim == 1:
                actions = actions.squeeze(-1)
            if not self.categorical_actions:
                actions = nn.functional.one_hot(actions, self.n_discrete_actions)
        tensordict.set((GROUP, "action"), actions)
        if log_prob is not None:
            tensordict.set((GROUP, "action_log_prob"), log_prob)
        return tensordict


def equilibrium_actor(env: TorchRLGameEnv) -> StrategyActor:
    """The game's closed-form equilibrium under the env's θ as a TorchRL policy: the Markov
    perfect equilibrium (``equilibrium_policy``) or a one-shot game's ``equilibrium``."""
    game, theta = env.game, env.theta
    if theta.dim() > 1:
        raise ImitgameError("equilibrium_actor needs one θ for the whole batch (theta [p])")
    if provides(game, "equilibrium_policy"):
        return StrategyActor(game.equilibrium_policy(theta[None]), env)
    if isinstance(game, StaticGame) and game.has_equilibrium:
        context = game.default_context()
        actions = game.equilibrium_in(context, theta)[None, None]  # [1, 1, n, d]
        profile = ActionProfile(actions, game.action_low, game.action_high, learnable=False)
        return StrategyActor(profile, env)
    raise ImitgameError(f"{type(game).__name__} declares no closed-form equilibrium")


class PolicyStrategy(Strategy):
    """The other way round: a TorchRL policy for a :class:`TorchRLGameEnv` as an imitgame
    :class:`~imitgame.Strategy`, so that imitgame's regret and exploitability estimators evaluate
    it (:func:`policy_exploitability`).

    ``act(obs [..., n, obs_dim], t)`` runs ``policy`` on ``("agents", "observation")`` and
    ``"period"`` in TorchRL's deterministic exploration mode (a TanhNormal's mode, a categorical's
    arg max) and returns its ``("agents", "action")`` as the game's ``[..., n, d]`` actions. The
    policy must accept any leading batch shape (TorchRL's ``MultiAgentMLP`` does). Gradients flow
    through it to its inputs (the pathwise estimator differentiates through the profile's reaction
    to a deviation); its parameters stay frozen here.
    """

    def __init__(self, policy: nn.Module, env: TorchRLGameEnv) -> None:
        super().__init__()
        self.policy = policy
        self.n_discrete_actions = env.game.n_discrete_actions
        self.categorical_actions = env.categorical_actions
        self.action_dim = env.game.action_dim

    def act(self, obs: Tensor, t: int) -> ActionSample:
        from torchrl.envs.utils import ExplorationType, set_exploration_type

        batch = obs.shape[:-2]
        period = torch.full((*batch, 1), t, dtype=torch.long, device=obs.device)
        td = TensorDict(
            {GROUP: TensorDict({"observation": obs}, batch_size=obs.shape[:-1]), "period": period},
            batch_size=batch,
        )
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            action = self.policy(td).get((GROUP, "action"))
        if self.n_discrete_actions is None:
            return ActionSample(action.to(obs.dtype))
        if not self.categorical_actions:
            action = action.argmax(-1)
        if self.action_dim == 1:
            action = action.unsqueeze(-1)
        return ActionSample(action.to(obs.dtype))


def policy_exploitability(
    env: TorchRLGameEnv,
    policy: nn.Module,
    *,
    config: Any = None,
    seed: int = 0,
) -> float:
    """Exploitability φ(π; θ) = Σ_i max_ρ_i [u_i(ρ_i, π_-i) − u_i(π)] of a TorchRL joint policy
    in the env's game under the env's θ, by imitgame's own estimator: a best-response deviation
    per agent trained from scratch (``config``: a :class:`~imitgame.config.MarkovConfig`, whose
    ``policy``, ``hidden``, ``best_response_steps``, ``best_response_lr``, ``eval_environments``
    and ``estimator`` it uses), scored on fresh shocks. A lower bound on the exact φ; ≈ 0 at a
    Nash equilibrium. Continuous-action games (the pathwise estimator)."""
    from imitgame.config import MarkovConfig
    from imitgame.solver.destabilizer import LearnedDeviation
    from imitgame.solver.exploitability import trained_best_response
    from imitgame.solver.objective import MinMaxObjective
    from imitgame.solver.rollout import episode_generator
    from imitgame.solver.stabilizer import Stabilizer

    game = env.game
    if game.n_discrete_actions is not None:
        raise ImitgameError("policy_exploitability: continuous-action games only")
    if env.theta.dim() > 1:
        raise ImitgameError("policy_exploitability needs one θ for the whole batch (theta [p])")
    config = config or MarkovConfig()
    # a frozen copy: the residual deviation wraps the profile, whose weights must not train
    profile = copy.deepcopy(policy if isinstance(policy, Strategy) else PolicyStrategy(policy, env))
    for p in profile.parameters():
        p.requires_grad_(False)
    theta = env.theta[None]  # one instance: [1, p]
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool, device=game.device)
    stabilizer = Stabilizer(theta, no_theta, game.param_low, game.param_high, profile)
    objective = MinMaxObjective(
        game,
        stabilizer,
        LearnedDeviation(profile),  # replaced by the fresh deviation below
        batch_shape=(1, config.eval_environments),
        estimator=config.estimator,
        baseline=config.baseline,
        entropy_weight=float(attribute(game, "entropy_weight")),
        generator=episode_generator(game, seed),
    )
    exploit, _ = trained_best_response(
        objective,
        stabilizer,
        **config.best_response_options(),
        seed=seed,
    )
    return float(exploit[0])
