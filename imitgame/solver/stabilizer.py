"""The stabilizer: the minimising player of min_{θ, π} max_ρ L(θ, π) + λ ψ(π, ρ; θ).

One class covers the three problems by what it owns:

* inverse (Alg. 1/2) — learned θ entries, observed (fixed) profile π†;
* forward solving — no learned θ entries, a learnable profile π;
* simulacral (Alg. 3) — learned θ entries, a learnable profile π, and an observation loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from imitgame.errors import ImitgameError
from imitgame.game.strategies import Strategy

ObservationLoss = Callable[["Stabilizer"], Tensor]


class Stabilizer(nn.Module):
    """Owns θ ``[K, p]`` (its ``learn_mask`` entries are an ``nn.Parameter``, the rest fixed) and
    a joint profile π (a :class:`Strategy`; learnable if it has trainable parameters).

    θ is projected onto the box ``[low, high]`` after every step.
    """

    def __init__(
        self,
        theta_init: Tensor,
        learn_mask: Tensor,
        low: Tensor,
        high: Tensor,
        profile: Strategy,
        observation_loss: ObservationLoss | None = None,
    ) -> None:
        super().__init__()
        if theta_init.dim() != 2:
            raise ImitgameError(f"theta must be [instances, params], got {list(theta_init.shape)}")
        learn_mask = learn_mask.to(torch.bool).to(theta_init.device)
        index = learn_mask.nonzero().flatten()
        self.register_buffer("theta_fixed", theta_init.detach().clone())
        self.register_buffer("learn_index", index)
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())
        self.theta_learned = nn.Parameter(theta_init[:, index].detach().clone())
        self.profile_strategy = profile
        self._observation_loss = observation_loss
        self._theta_memo: tuple[tuple, Tensor, Tensor, int] | None = None
        self.project()

    @property
    def n_instances(self) -> int:
        return self.theta_fixed.shape[0]

    @property
    def learns_theta(self) -> bool:
        return self.learn_index.numel() > 0

    def theta(self) -> Tensor:
        """The full parameter vector ``[K, p]`` (differentiable in the learned entries).

        The learned entries are read through a clamp onto Θ: after every step they lie inside it
        anyway (the identity, gradient included), but a line search's trial point outside Θ is
        evaluated at its projection, with no gradient pushing further out — the game is never
        called outside its parameter box.

        Until θ's entries change, every call returns the same tensor (a new one once a backward
        pass has run through it, which frees its graph): the terms of one evaluation then share
        one θ, and a game may reuse what it computed from it (the tensor's identity says where
        its gradient flows)."""
        key = (
            self.theta_learned.data_ptr(), self.theta_learned._version,
            self.theta_fixed.data_ptr(), self.theta_fixed._version,
            self.low._version, self.high._version, torch.is_grad_enabled(),
        )  # fmt: skip
        memo = self._theta_memo
        # the values compared too: a write through ``.data`` leaves the version as it was
        if (
            memo is not None
            and memo[0] == key
            and memo[2]._version == memo[3]  # nobody wrote into the θ handed out
            and torch.equal(memo[1], self.theta_learned)
        ):
            return memo[2]
        idx = self.learn_index
        learned = self.theta_learned.clamp(self.low[idx], self.high[idx])
        theta = self.theta_fixed.index_copy(1, idx, learned)
        if theta.requires_grad:

            def forget(grad: Tensor) -> None:
                if self._theta_memo is not None and self._theta_memo[2] is theta:
                    self._theta_memo = None

            theta.register_hook(forget)
        self._theta_memo = (key, self.theta_learned.detach().clone(), theta, theta._version)
        return theta

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_theta_memo": None}  # a copy builds its own θ

    def profile(self) -> Strategy:
        """π as played under the current θ (a profile derived from θ is evaluated here)."""
        strategy = self.profile_strategy
        return strategy.under(self.theta()) if strategy.derived_from_theta else strategy

    def observation_loss(self) -> Tensor | None:
        """Per-instance observation fit ``[K]`` (simulacral learning), or None."""
        return None if self._observation_loss is None else self._observation_loss(self)

    def theta_parameters(self) -> list[nn.Parameter]:
        return [self.theta_learned] if self.learns_theta else []

    def profile_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.profile_strategy.parameters() if p.requires_grad]

    @torch.no_grad()
    def project(self) -> None:
        if self.learns_theta:
            low = self.low[self.learn_index]
            high = self.high[self.learn_index]
            self.theta_learned.copy_(torch.maximum(torch.minimum(self.theta_learned, high), low))
        self.profile_strategy.project()
