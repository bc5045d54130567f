"""A security game (defender coverage vs attacker target; Ling, Fang & Kolter, IJCAI 2018).

The defender covers one of T targets (a mixed strategy = coverage probabilities c_t); the attacker
attacks one target. An attack on target t earns the attacker r_t when t is uncovered and −1 when
it is covered; the game is zero-sum (the defender gets 1 on a covered attack, −r_t otherwise).
θ = the attacker's rewards r_t (learned). Under logit QRE with a known λ both players' logit
conditions are linear in r: the attacker's involve the coverage, the defender's the attack
frequencies, 2(T − 1) equations that identify the T rewards (T ≥ 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from imitgame.errors import ImitgameError
from imitgame.game.finite import Concept, FiniteGame


def security_tensors(n_targets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Base ``[2, T, T]`` and features ``[T, 2, T, T]`` (axis 1: defender's covered target,
    axis 2: attacked target)."""
    eye = torch.eye(n_targets)
    base = torch.stack([eye, -eye])  # covered attack: defender +1, attacker −1
    feats = torch.zeros(n_targets, 2, n_targets, n_targets)
    for t in range(n_targets):
        uncovered = 1.0 - eye[:, t]  # defender's cover s != t
        feats[t, 1, :, t] = uncovered  # the attacker earns r_t on an uncovered attack on t
        feats[t, 0, :, t] = -uncovered  # the defender loses it
    return base, feats


class SecurityGame(FiniteGame):
    """Defender vs attacker over ``len(rewards)`` targets; θ = (r_1..r_T, λ)."""

    def __init__(
        self,
        rewards: Sequence[float] = (1.0, 2.0, 4.0),
        learn: Sequence[str] | None = None,
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        reward_bounds: Sequence[float] = (0.0, 10.0),
        lambda_bounds: Sequence[float] = (0.01, 100.0),
    ) -> None:
        t = len(rewards)
        if t < 2:
            raise ImitgameError(f"a security game needs at least 2 targets, got {t}")
        base, feats = security_tensors(t)
        names = [f"reward_{j}" for j in range(t)]
        super().__init__(
            base=base,
            features=feats,
            param_names=names,
            param_low=reward_bounds[0],
            param_high=reward_bounds[1],
            true_params=list(rewards),
            learn=names if learn is None else learn,
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            action_names=[[f"cover_{j}" for j in range(t)], [f"attack_{j}" for j in range(t)]],
            agent_names=["defender", "attacker"],
        )
