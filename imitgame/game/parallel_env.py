"""The PettingZoo ``ParallelEnv`` face of a :class:`imitgame.MarkovGame`.

One unbatched episode at a time, with dicts of NumPy arrays keyed by agent name, driven by the
same tensor functions the batched trainer uses. θ defaults to the game's ``true_params``; pass
``options={"theta": [...]}`` to play under other parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv


class ParallelEnvFace(ParallelEnv):
    """Mixin that implements ``reset``/``step`` on top of the game's tensor functions."""

    def _init_parallel_env(self, agent_names: list[str]) -> None:
        self.possible_agents = list(agent_names)
        self.agents: list[str] = []
        low = self.action_low.detach().cpu().numpy().astype(np.float32)
        high = self.action_high.detach().cpu().numpy().astype(np.float32)
        self.observation_spaces = {
            name: spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32)
            for name in agent_names
        }
        if self.n_discrete_actions is not None:
            self.action_spaces = {
                name: spaces.Discrete(self.n_discrete_actions) for name in agent_names
            }
        else:
            self.action_spaces = {
                name: spaces.Box(low[i], high[i], dtype=np.float32)
                for i, name in enumerate(agent_names)
            }
        self._env_generator = torch.Generator(device="cpu")
        self._env_state: torch.Tensor | None = None
        self._env_theta: torch.Tensor | None = None
        self._env_t = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _env_noise(self) -> torch.Tensor:
        noise = torch.randn(self.noise_dim, generator=self._env_generator, dtype=self.dtype)
        return noise.to(self.device)

    def _obs_dict(self) -> dict[str, np.ndarray]:
        with torch.no_grad():
            obs = self.observe(self._env_state).detach().cpu().numpy().astype(np.float32)
        return {name: obs[i] for i, name in enumerate(self.possible_agents)}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._env_generator.manual_seed(int(seed))
        options = options or {}
        theta = options.get("theta", self.true_params)
        if theta is None:
            raise ValueError("the game has no true_params: pass options={'theta': ...} to reset")
        self._env_theta = torch.as_tensor(theta, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            state = self.initial_state(self._env_theta, self._env_noise())
            if "context" in options:
                state = torch.as_tensor(options["context"], dtype=self.dtype, device=self.device)
        self._env_state = state
        self._env_t = 0
        self.agents = list(self.possible_agents)
        return self._obs_dict(), {name: {} for name in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._env_state is None or not self.agents:
            raise RuntimeError("call reset() before step()")
        columns = []
        for name in self.possible_agents:
            action = np.asarray(actions[name], dtype=np.float64).reshape(-1)
            columns.append(action)
        joint = torch.as_tensor(np.stack(columns), dtype=self.dtype, device=self.device)
        with torch.no_grad():
            reward = self.reward(self._env_state, joint, self._env_theta).cpu().numpy()
            self._env_state = self.transition(
                self._env_state, joint, self._env_theta, self._env_noise()
            )
        self._env_t += 1
        truncated = self._env_t >= self.horizon
        names = list(self.agents)
        obs = self._obs_dict()
        rewards = {name: float(reward[i]) for i, name in enumerate(self.possible_agents)}
        terminations = dict.fromkeys(names, False)
        truncations = dict.fromkeys(names, truncated)
        infos = {name: {} for name in names}
        if truncated:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        if self._env_state is None:
            raise RuntimeError("call reset() before state()")
        return self._env_state.detach().cpu().numpy().astype(np.float32)

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None
