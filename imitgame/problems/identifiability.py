"""First-order identifiability of θ from observed play of a one-shot game.

At an interior equilibrium each agent's first-order condition g_i(a; θ) = ∂u_i/∂a_i = 0 holds;
the inverse problem's solution set near θ is {θ : g(a†; θ) = 0}. If the Jacobian
J = ∂g(a†; θ)/∂θ_learned has rank below the number of learned entries, θ is not (locally)
identified by the data: many θ make a† an equilibrium, and success means exploitability ≈ 0,
not closeness to a particular θ. Actions at a bound are left out (their conditions are
inequalities).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from imitgame.game.base import StaticGame


@dataclass
class Identifiability:
    """Per instance: ``rank [K]`` of J, ``identified [K]`` (rank == number of learned entries)."""

    rank: Tensor
    identified: Tensor
    n_learned: int


def own_payoff_sum(game: StaticGame, state: Tensor, actions: Tensor, theta: Tensor) -> Tensor:
    """Σ_i u_i(a_i, a_-i) with the others' actions a_-i held fixed in agent i's term: its
    gradient in ``actions [..., n, d]`` is ∂u_i/∂a_i at entry i (not Σ_j ∂u_j/∂a_i, which
    differs wherever one agent's action moves another's payoff). The n terms are n rows of one
    batched call (row i: agent i's action live, the others detached)."""
    n = game.n_agents
    own = torch.eye(n, dtype=torch.bool, device=actions.device)[:, :, None]  # [n, n, 1]
    rows = torch.where(own, actions[..., None, :, :], actions.detach()[..., None, :, :])
    # games need not broadcast ranks: give state, rows and θ one explicit batch shape [..., n]
    batch = torch.broadcast_shapes(
        rows.shape[:-2], state.shape[:-1] + (1,), theta.shape[:-1] + (1,)
    )
    payoffs = game.payoffs_in(
        state[..., None, :].expand(*batch, state.shape[-1]),
        rows.expand(*batch, *rows.shape[-2:]),
        theta[..., None, :].expand(*batch, theta.shape[-1]),
    )  # [..., n, n]
    return torch.diagonal(payoffs, dim1=-2, dim2=-1).sum()


def check_identifiability(
    game: StaticGame,
    actions: Tensor,
    theta: Tensor,
    learn_index: Tensor,
    state: Tensor,
    *,
    rtol: float = 1e-6,
) -> Identifiability:
    """Rank test of the first-order-condition Jacobian at ``actions [K, B, n, d]``,
    ``theta [K, p]``, contexts ``state [K, B, s]``."""
    interior = (actions > game.action_low + 1e-9) & (actions < game.action_high - 1e-9)

    def conditions(theta_learned: Tensor, acts: Tensor, st: Tensor, th: Tensor, keep: Tensor):
        """g_i = ∂u_i/∂a_i of one observation ``[n·d]`` (each agent's own payoff)."""
        full = th.index_copy(0, learn_index, theta_learned)
        grad = torch.func.grad(lambda a: own_payoff_sum(game, st, a, full))(acts)
        return (grad * keep).flatten()

    # one observation at a time (its payoffs depend on its own actions alone): memory O(B), not
    # O(B²) as a Jacobian of all B observations' conditions at once would be
    per_obs = vmap(jacrev(conditions), in_dims=(None, 0, 0, None, 0))  # [B, n·d, L]
    jac = vmap(per_obs)(theta[:, learn_index], actions, state, theta, interior).flatten(1, 2)
    sv = torch.linalg.svdvals(jac)  # [K, min(rows, p_learned)]
    tol = rtol * sv.amax(-1, keepdim=True).clamp(min=1e-30)
    rank = (sv > tol).sum(-1)
    n_learned = int(learn_index.numel())
    return Identifiability(rank=rank, identified=rank == n_learned, n_learned=n_learned)
