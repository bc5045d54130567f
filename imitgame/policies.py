"""Policy networks: joint strategies for Markov games (and context-dependent one-shot play).

Every (instance, agent) pair has its own network; all of them run as one batched einsum.
Observations are laid out ``[..., K, B, n, obs_dim]`` (an optional deviation-row dim in front),
weights ``[K, n, in, out]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from imitgame.strategies import ActionSample, Strategy


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
