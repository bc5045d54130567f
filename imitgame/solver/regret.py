"""The one regret estimator: ψ(π, ρ; θ) = Σ_i [u_i(ρ_i, π_-i; θ) − u_i(π; θ)].

All n unilateral deviations and the undeviated profile are played as ``D = n + 1`` rows of one
batched rollout (row i < n: agent i plays ρ_i, the others π; row n: everyone plays π), with common
random numbers across rows. One-shot games are the horizon-1 case, so forward solving, inverse
learning and simulacral learning all differentiate this same function.

Gradient estimators:

* ``pathwise`` — differentiate the returns through rewards, actions and transitions
  (reparameterised actions through a differentiable game);
* ``score`` — REINFORCE: Σ_t ∇log π(a_t|o_t) (G_t − b) with a baseline b, plus the
  pathwise derivative of rewards w.r.t. θ (for discrete actions or non-differentiable transitions).
* ``zeroth_order`` — deviations by the score function as above; θ's gradient by two-point
  Gaussian smoothing, ĝ = mean_j [ψ(θ + σu_j) − ψ(θ − σu_j)] / (2σ) · u_j with u_j ~ N(0, I),
  ψ(θ ± σu_j) recomputed on the same sampled play (rewards only: θ must not enter the
  transitions), for rewards that are not differentiable (or not linear) in θ.
  ``baseline="batch_mean"`` uses the leave-one-out mean of G_t over the other B − 1 environments
  (unbiased: b does not depend on the environment's own action); ``"fitted"`` a learned linear
  value baseline b(o_t) = [1, o_t]·w, cross-fitted: w is fitted by ridge least squares on the other
  half of the environments (unbiased for the same reason); ``"none"`` uses b = 0.

``entropy_weight`` τ > 0 scores the entropy-regularised game r̃_i = r_i − τ log π_i(a_i|o_i) (the
logit / quantal-response equilibrium of dynamic discrete choice), which needs log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from imitgame.game.base import MarkovGame
from imitgame.game.strategies import ActionSample, Strategy
from imitgame.solver.rollout import rollout, sample_episode_noise

Estimator = Literal["pathwise", "score", "zeroth_order"]
Baseline = Literal["batch_mean", "fitted", "none"]


@dataclass
class RegretEstimate:
    """ψ per instance ``regret [K]``; per-agent gains ``gains [K, n]``; ``surrogate`` is a scalar
    whose gradient estimates ∇ Σ_k ψ_k (equal to ``regret.sum()`` for the pathwise estimator)."""

    regret: Tensor
    gains: Tensor
    surrogate: Tensor


class DeviationRows(Strategy):
    """The ``D = n + 1`` row profile: row i < n lets agent i play ρ_i, row n plays π throughout."""

    def __init__(self, profile: Strategy, deviation: Strategy, n_agents: int) -> None:
        super().__init__()
        self.profile = profile
        self.deviation = deviation
        self.n_agents = n_agents

    def row_mask(self, obs: Tensor) -> Tensor:
        """Boolean ``[D, 1, ..., 1, n]`` with row i selecting agent i's deviation."""
        n = self.n_agents
        eye = torch.eye(n + 1, n, dtype=torch.bool, device=obs.device)
        return eye.view(n + 1, *([1] * (obs.dim() - 3)), n)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        base = self.profile.act(obs, t)
        dev = self.deviation.act(obs, t)
        mask = self.row_mask(obs)
        actions = torch.where(mask.unsqueeze(-1), dev.actions, base.actions)
        log_prob = None
        if base.log_prob is not None or dev.log_prob is not None:
            zeros = torch.zeros_like(actions[..., 0])
            base_lp = base.log_prob if base.log_prob is not None else zeros
            dev_lp = dev.log_prob if dev.log_prob is not None else zeros
            log_prob = torch.where(mask, dev_lp, base_lp)
        return ActionSample(actions, log_prob)


def estimate_regret(
    game: MarkovGame,
    theta: Tensor,
    profile: Strategy,
    deviation: Strategy,
    *,
    batch_shape: Sequence[int],
    state0: Tensor | None = None,
    generator: torch.Generator | None = None,
    estimator: Estimator = "pathwise",
    baseline: Baseline = "batch_mean",
    entropy_weight: float = 0.0,
    smoothing_sigma: float = 0.05,
    smoothing_samples: int = 8,
    positive_gains: bool = False,
) -> RegretEstimate:
    """Estimate ψ(π, ρ; θ) for K instances at once.

    ``theta [K, p]``; ``batch_shape = (K, B)`` with B environments (Markov games) or observations
    (one-shot games) per instance; ``state0 [K, B, state_dim]`` fixes initial states (observed
    contexts). Returns are averaged over B. ``positive_gains``: θ's gradient comes from
    Σ_i max(gain_i, 0) (an agent can always fall back to π_i, so max_ρ ψ_i ≥ 0 and a deviation
    that loses carries no information on θ); ``regret`` is still the plain Σ_i gain_i.
    """
    n = game.n_agents
    n_rows = n + 1
    k, b = batch_shape
    theta_b = theta.view(k, 1, theta.shape[-1])
    zeroth = estimator == "zeroth_order"
    if zeroth:
        theta_b = theta_b.detach()  # θ's gradient comes from smoothing, never through rewards
    initial_noise, step_noise = sample_episode_noise(game, (k, b), generator)
    rows = DeviationRows(profile, deviation, n)
    traj = rollout(
        game,
        theta_b,
        rows,
        initial_noise=initial_noise,
        step_noise=step_noise,
        state0=state0,
        batch_shape=(n_rows, k, b),
    )
    rewards = traj.rewards
    if entropy_weight:
        if traj.log_probs is None:
            raise ValueError("entropy_weight > 0 needs stochastic strategies with log-probs")
        rewards = rewards - entropy_weight * traj.log_probs
    discounted = traj.discounts * rewards  # [T, D, K, B, n]
    returns = discounted.sum(0)  # [D, K, B, n]
    deviating = torch.diagonal(returns[:n], dim1=0, dim2=-1)  # [K, B, n]
    gains = (deviating - returns[n]).mean(1)  # [K, n]
    regret = gains.sum(-1)
    surrogate = gains.clamp(min=0).sum() if positive_gains else regret.sum()
    if zeroth:
        surrogate = surrogate + _smoothed_theta_term(
            game, theta, traj, entropy_weight, smoothing_sigma, smoothing_samples, generator
        )
    if estimator in ("score", "zeroth_order") and traj.log_probs is not None:
        # weight[row, i] = +1 for agent i's own deviation row, -1 for the undeviated row
        weight = torch.cat(
            [torch.eye(n, device=returns.device), -torch.ones(1, n, device=returns.device)]
        ).to(returns.dtype)
        to_go = discounted.detach().flip(0).cumsum(0).flip(0)  # [T, D, K, B, n]
        if baseline == "batch_mean" and b > 1:
            loo = (to_go.sum(dim=3, keepdim=True) - to_go) / (b - 1)
            advantage = to_go - loo
        elif baseline == "fitted" and b > 3:
            advantage = to_go - _cross_fitted_baseline(traj.observations.detach(), to_go)
        elif baseline in ("batch_mean", "fitted", "none"):
            advantage = to_go
        else:
            raise ValueError(f"unknown baseline {baseline!r}")
        signed = (advantage * weight.view(1, n_rows, 1, 1, n)).sum(-1)  # [T, D, K, B]
        joint_log_prob = traj.log_probs.sum(-1)  # [T, D, K, B]
        surrogate = surrogate + (signed * joint_log_prob).mean(3).sum()
    elif estimator not in ("pathwise", "score", "zeroth_order"):
        raise ValueError(f"unknown gradient estimator {estimator!r}")
    return RegretEstimate(regret=regret, gains=gains, surrogate=surrogate)


def _psi_of(game: MarkovGame, theta_b: Tensor, traj: Any, entropy_weight: float) -> Tensor:
    """ψ ``[..., K]`` of recorded play ``traj`` with rewards recomputed under ``theta_b``
    (``[..., K, 1, p]``; leading dims are directions)."""
    n = game.n_agents
    lead = theta_b.dim() - 3
    states = traj.states.view(traj.states.shape[0], *([1] * lead), *traj.states.shape[1:])
    actions = traj.actions.view(traj.actions.shape[0], *([1] * lead), *traj.actions.shape[1:])
    rewards = game.reward(states, actions, theta_b.unsqueeze(lead))  # [T, ..., D, K, B, n]
    if entropy_weight:
        rewards = rewards - entropy_weight * traj.log_probs.view(
            traj.log_probs.shape[0], *([1] * lead), *traj.log_probs.shape[1:]
        )
    disc = traj.discounts.view(-1, *([1] * (rewards.dim() - 1)))
    returns = (disc * rewards).sum(0)  # [..., D, K, B, n]
    deviating = torch.diagonal(returns[..., :n, :, :, :], dim1=-4, dim2=-1)  # [..., K, B, n]
    return (deviating - returns[..., n, :, :, :]).mean(-2).sum(-1)


def _smoothed_theta_term(
    game: MarkovGame,
    theta: Tensor,
    traj: Any,
    entropy_weight: float,
    sigma: float,
    samples: int,
    generator: torch.Generator | None,
) -> Tensor:
    """A scalar whose θ-gradient is the two-point Gaussian-smoothing estimate of ∇_θ Σ_k ψ_k."""
    k, p = theta.shape
    u = torch.randn((samples, k, p), generator=generator, device=theta.device, dtype=theta.dtype)
    with torch.no_grad():
        base = theta.detach().view(1, k, 1, p)
        step = sigma * u.view(samples, k, 1, p)
        states = traj.states.detach()
        actions = traj.actions.detach()
        detached = type(traj)(
            states=states,
            observations=traj.observations,
            actions=actions,
            log_probs=None if traj.log_probs is None else traj.log_probs.detach(),
            rewards=traj.rewards,
            discount=traj.discount,
        )
        up = _psi_of(game, base + step, detached, entropy_weight)  # [M, K]
        down = _psi_of(game, base - step, detached, entropy_weight)
        grad = ((up - down) / (2 * sigma)).unsqueeze(-1).mul(u).mean(0)  # [K, p]
    return (grad * theta).sum()


def _cross_fitted_baseline(obs: Tensor, to_go: Tensor, ridge: float = 1e-3) -> Tensor:
    """Linear value baseline ``[T, D, K, B, n]`` from observations ``[T, D, K, B, n, f]``.

    For each (t, row, instance, agent), w minimises Σ_j (G_j − [1, o_j]·w)² + ridge·‖w‖² over one
    half of the B environments and predicts the other half (and vice versa).
    """
    feats = torch.cat([torch.ones_like(obs[..., :1]), obs], dim=-1)
    feats = feats.movedim(3, -2)  # [T, D, K, n, B, f]
    target = to_go.movedim(3, -1).unsqueeze(-1)  # [T, D, K, n, B, 1]
    b = feats.shape[-2]
    halves = torch.arange(b, device=obs.device) % 2 == 0
    eye = ridge * torch.eye(feats.shape[-1], device=obs.device, dtype=obs.dtype)
    pred = torch.empty_like(target)
    for fit, use in ((halves, ~halves), (~halves, halves)):
        x, y = feats[..., fit, :], target[..., fit, :]
        w = torch.linalg.solve(x.transpose(-1, -2) @ x + eye, x.transpose(-1, -2) @ y)
        pred[..., use, :] = feats[..., use, :] @ w
    return pred.squeeze(-1).movedim(-1, 3)
