"""Any PettingZoo ``ParallelEnv`` as a black-box imitgame :class:`~imitgame.game.base.MarkovGame`.

Nothing of the simulator is differentiated or even looked inside: copies of the environment are
driven through ``reset(seed=...)`` and ``step(actions)`` only, and the reward is re-defined as
r_i = θ · φ_i(o, a) (or any ``reward_fn(φ, θ)``), with reward features φ computed from the
agents' observations and actions by a user function. Hence:

* deviations are trained by the score-function estimator (``algo.estimator=score``; Gaussian or
  categorical policies), θ's gradient comes from the features alone (no simulator derivative);
  ``algo.estimator=zeroth_order`` estimates θ's gradient by two-point Gaussian smoothing for
  rewards that are not linear in θ (:mod:`imitgame.solver.regret`);
* **state** ``[..., 2 + n·obs_dim]`` = (episode seed, step t, the joint observation). At t = 0
  the copies are reset with the episode's seed (the n + 1 deviation rows of one episode carry the
  same seed: identical initial states and simulator shocks); later the state must be the one the
  adapter returned last (a black box cannot be *set* to a state), so ``transition`` continues the
  batch it stepped last and raises an :class:`ImitgameError` for any other state;
* the copies are stepped in one process, one after another (measured against worker processes
  in ``benchmarks/adapters.py``); a copy whose agents are done keeps its last observation.
Seeds make rollouts reproducible: the episode seeds come from the game's noise, which the
rollout draws from its seeded generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame

SEED_RANGE = 2**31 - 1
# (obs [..., n, o], actions [..., n, d]) -> [..., n, F]
FeatureFn = Callable[[Tensor, Tensor], Tensor]


def import_object(path: str | Callable[..., Any], what: str) -> Any:
    """``module.attr`` (or ``module:attr``) imported, or the object itself."""
    if callable(path):
        return path
    module, _, name = str(path).replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        hint = " (pip install 'imitgame[sim]')" if module.startswith(("mpe2", "vmas")) else ""
        raise ImitgameError(f"{what} {path!r} cannot be imported: {err}{hint}") from None


class PettingZooGame(MarkovGame):
    """A PettingZoo ``ParallelEnv`` (``env``: a dotted path to its factory, called with
    ``env_kwargs``) whose reward is Σ_f θ_f φ_f(o, a) with ``features`` (a dotted path to a
    function ``(obs [..., n, o], actions [..., n, d]) -> [..., n, F]``) named ``feature_names``.
    ``weights`` are the true weights (synthetic data), ``learn`` the ones recovered (the others
    fix the scale); ``reward_fn(φ [..., n, F], θ [..., p]) -> [..., n]`` replaces the linear
    reward (a dotted path). ``workers`` > 0 steps the copies in that many worker processes
    (0: in this process, one copy after another)."""

    differentiable = False  # no simulator derivative: the score-function estimator

    def __init__(
        self,
        env: str,
        *,
        features: str,
        feature_names: Sequence[str],
        weights: Sequence[float],
        learn: Sequence[str] | None = None,
        weight_bounds: Sequence[float] = (0.0, 5.0),
        horizon: int = 10,
        discount: float = 1.0,
        env_kwargs: dict[str, Any] | None = None,
        reward_fn: str | None = None,
        seed: int = 0,
        workers: int = 0,
    ) -> None:
        self.env_factory = import_object(env, "env")
        self.env_kwargs = dict(env_kwargs or {})
        self.env_name = str(env)
        self.feature_fn: FeatureFn = import_object(features, "features")
        self.reward_transform = None if reward_fn is None else import_object(reward_fn, "reward_fn")
        self.seed = int(seed)
        probe = self._make()
        agents = list(probe.possible_agents)
        obs_spaces = [probe.observation_space(a) for a in agents]
        act_spaces = [probe.action_space(a) for a in agents]
        obs_dims = {int(np.prod(s.shape)) for s in obs_spaces}
        if len(obs_dims) != 1:
            raise ImitgameError(f"{env}: agents' observations differ in size {sorted(obs_dims)}")
        first = act_spaces[0]
        if any(type(s) is not type(first) or s.shape != first.shape for s in act_spaces):
            raise ImitgameError(f"{env}: agents' action spaces differ; the adapter needs one kind")
        discrete = hasattr(first, "n")
        if discrete:
            m = int(first.n)
            action_dim, low, high, n_discrete = 1, 0.0, float(m - 1), m
        elif len(first.shape) == 1:
            action_dim = int(first.shape[0])
            low = torch.as_tensor(np.stack([s.low for s in act_spaces]), dtype=torch.float64)
            high = torch.as_tensor(np.stack([s.high for s in act_spaces]), dtype=torch.float64)
            n_discrete = None
        else:
            raise ImitgameError(f"{env}: action space {first} is neither Discrete nor a 1-d Box")
        names = [f"w_{f}" for f in feature_names]
        learned = [f"w_{f}" for f in (learn if learn is not None else feature_names)]
        bad = [x for x in learned if x not in names]
        if bad:
            raise ImitgameError(f"learn names {bad}, not among the features {list(feature_names)}")
        self.agent_ids = agents
        self.env_obs_dim = obs_dims.pop()
        super().__init__(
            n_agents=len(agents),
            action_dim=action_dim,
            action_low=low,
            action_high=high,
            param_names=names,
            param_low=weight_bounds[0],
            param_high=weight_bounds[1],
            true_params=list(weights),
            horizon=horizon,
            discount=discount,
            state_dim=2 + len(agents) * self.env_obs_dim,
            obs_dim=self.env_obs_dim,
            noise_dim=1,
            n_discrete_actions=n_discrete,
            agent_names=agents,
        )
        self.learned_params = learned
        self.feature_names = list(feature_names)
        spec = (
            env if isinstance(env, str) else None,
            self.env_kwargs,
            agents,
            self.env_obs_dim,
            n_discrete is not None,
        )
        if workers > 0:
            if spec[0] is None:
                raise ImitgameError("workers > 0 needs env as a dotted path (it is imported there)")
            self._pool: Any = _WorkerCopies(spec, int(workers))
        else:
            self._pool = _Copies(self._make, agents, self.env_obs_dim, n_discrete is not None)
            self._pool.envs.append(probe)
        self._last: Tensor | None = None

    def _make(self) -> Any:
        try:
            return self.env_factory(**self.env_kwargs)
        except Exception as exc:  # the simulator's own message, on one line
            raise ImitgameError(f"{self.env_name}(**{self.env_kwargs}) failed: {exc}") from None

    # --- the game ---------------------------------------------------------------------------------
    def initial_state(self, theta: Tensor, noise: Tensor) -> Tensor:
        """(seed, 0, o_0) ``[..., S]``: the seed ⌊Φ(ε) · 2³¹⌋, o_0 from ``reset(seed)``."""
        seeds = (torch.special.ndtr(noise[..., 0].double()) * SEED_RANGE).long()
        flat = seeds.reshape(-1)
        obs = self._reset(flat.tolist())
        state = torch.cat(
            [
                flat.to(self.dtype).unsqueeze(-1),
                torch.zeros(flat.shape[0], 1, dtype=self.dtype),
                obs.to(self.dtype),
            ],
            dim=-1,
        ).to(self.device)
        return state.view(*seeds.shape, self.state_dim)

    def transition(self, state: Tensor, actions: Tensor, theta: Tensor, noise: Tensor) -> Tensor:
        """One ``step`` of every copy (see the module docstring for which states it accepts)."""
        shape = torch.broadcast_shapes(state.shape[:-1], actions.shape[:-2])
        flat = state.detach().expand(*shape, self.state_dim).reshape(-1, self.state_dim)
        acts = actions.detach().expand(*shape, self.n_agents, self.action_dim)
        acts = acts.reshape(-1, self.n_agents, self.action_dim).cpu().numpy()
        n_envs = flat.shape[0]
        if bool((flat[:, 1] == 0).all()):
            self._reset(flat[:, 0].long().tolist())
        elif (
            self._last is None
            or self._last.shape != flat.shape
            or not torch.equal(self._last, flat)
        ):
            raise ImitgameError(
                "PettingZooGame.transition continues only the batch of episodes it stepped last: "
                "a black-box simulator cannot be set to an arbitrary state"
            )
        obs = self._step(acts, n_envs)
        out = torch.cat(
            [flat[:, :1], flat[:, 1:2] + 1, obs.to(device=flat.device, dtype=flat.dtype)], dim=-1
        )
        self._last = out
        return out.view(*shape, self.state_dim)

    def observe(self, state: Tensor) -> Tensor:
        return state[..., 2:].unflatten(-1, (self.n_agents, self.env_obs_dim))

    def features(self, state: Tensor, actions: Tensor) -> Tensor:
        """Reward features ``[..., n, F]`` from the observations and actions."""
        return self.feature_fn(self.observe(state), actions)

    def reward(self, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
        """r_i = Σ_f θ_f φ_f ``[..., n]`` (or ``reward_fn(φ, θ)``)."""
        phi = self.features(state, actions)
        if self.reward_transform is not None:
            return self.reward_transform(phi, theta.unsqueeze(-2))
        return (phi * theta.unsqueeze(-2)).sum(-1)

    # --- the copies -------------------------------------------------------------------------------
    def _reset(self, seeds: list[int]) -> Tensor:
        obs = self._pool.reset(seeds)
        return torch.from_numpy(obs.reshape(len(seeds), -1))

    def _step(self, acts: np.ndarray, n_envs: int) -> Tensor:
        return torch.from_numpy(self._pool.step(acts).reshape(n_envs, -1))

    def cache_key(self) -> str:
        return repr(
            (
                "pettingzoo",
                self.env_name,
                sorted(self.env_kwargs.items()),
                self.feature_names,
                getattr(self.feature_fn, "__qualname__", str(self.feature_fn)),
                _source_digest(self.feature_fn),  # an edited feature module is a new game
                self.horizon,
                self.discount,
                self.seed,
            )
        )


def _source_digest(fn: Callable[..., Any]) -> str:
    """A digest of the source of ``fn``'s module (its constants included); "" without source."""
    try:
        module = inspect.getmodule(fn)
        text = inspect.getsource(module if module is not None else fn)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Copies:
    """Environment copies stepped one after another in this process."""

    def __init__(
        self, make: Callable[[], Any], agent_ids: list[str], obs_dim: int, discrete: bool
    ) -> None:
        self.make, self.agent_ids, self.obs_dim, self.discrete = make, agent_ids, obs_dim, discrete
        self.envs: list[Any] = []
        self.obs = np.zeros((0, len(agent_ids), obs_dim))

    def joint(self, obs: dict[str, Any], previous: np.ndarray | None) -> np.ndarray:
        rows = []
        for j, name in enumerate(self.agent_ids):
            if name in obs:
                rows.append(np.asarray(obs[name], dtype=np.float64).reshape(-1))
            else:  # the agent is done: keep its last observation
                rows.append(previous[j] if previous is not None else np.zeros(self.obs_dim))
        return np.stack(rows)

    def reset(self, seeds: list[int]) -> np.ndarray:
        """``[N, n, o]`` after ``reset(seed)`` of the first N copies."""
        while len(self.envs) < len(seeds):
            self.envs.append(self.make())
        obs = np.empty((len(seeds), len(self.agent_ids), self.obs_dim))
        for i, seed in enumerate(seeds):
            o, _ = self.envs[i].reset(seed=int(seed))
            obs[i] = self.joint(o, None)
        self.obs = obs
        return obs.copy()

    def step(self, acts: np.ndarray) -> np.ndarray:
        """``[N, n, o]`` after one ``step`` of the first N copies under ``acts [N, n, d]``."""
        obs = self.obs
        for i in range(acts.shape[0]):
            env = self.envs[i]
            live = env.agents
            if not live:
                continue
            joint = {
                name: (
                    int(round(float(acts[i, j, 0])))
                    if self.discrete
                    else acts[i, j].astype(np.float32)
                )
                for j, name in enumerate(self.agent_ids)
                if name in live
            }
            o, *_ = env.step(joint)
            obs[i] = self.joint(o, obs[i])
        return obs[: acts.shape[0]].copy()


def _worker_main(conn: Any, spec: tuple[str, dict[str, Any], list[str], int, bool]) -> None:
    """A worker process: its slice of the copies, reset and stepped on request."""
    path, kwargs, agent_ids, obs_dim, discrete = spec
    factory = import_object(path, "env")
    copies = _Copies(lambda: factory(**kwargs), agent_ids, obs_dim, discrete)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        kind, payload = msg
        conn.send(copies.reset(payload) if kind == "reset" else copies.step(payload))


class _WorkerCopies:
    """The copies split into contiguous slices over ``workers`` processes (spawned), stepped in
    parallel: the same seeds give the same observations as :class:`_Copies`."""

    def __init__(self, spec: tuple[Any, ...], workers: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        self.workers = workers
        for _ in range(workers):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(there, spec), daemon=True)
            self.conns.append(here)
            self.procs.append(proc)
        self.started = False

    def _start(self) -> None:
        if not self.started:
            for proc in self.procs:
                proc.start()
            self.started = True

    def _split(self, n: int) -> list[slice]:
        bounds = np.linspace(0, n, self.workers + 1).round().astype(int)
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def _call(self, kind: str, items: Any, n: int) -> np.ndarray:
        self._start()
        parts = self._split(n)
        for conn, part in zip(self.conns, parts):
            conn.send((kind, items[part]))
        return np.concatenate([conn.recv() for conn in self.conns])

    def reset(self, seeds: list[int]) -> np.ndarray:
        return self._call("reset", seeds, len(seeds))

    def step(self, acts: np.ndarray) -> np.ndarray:
        return self._call("step", acts, acts.shape[0])

    def __del__(self) -> None:
        if getattr(self, "started", False):
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.send(None)


__all__ = ["PettingZooGame", "import_object"]
