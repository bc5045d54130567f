"""The n-player volunteer's dilemma with heterogeneous costs (n ≥ 3 by default).

Each player volunteers (action 1) or not (action 0). Everyone earns V when at least one player
volunteers; a volunteer pays its own cost c_i. θ = (c_0, ..., c_{n-1}) learned, V known (it fixes
the payoff scale). Player i's logit condition log σ_i(1) − log σ_i(0) = λ (V Π_{j≠i} σ_j(0) − c_i)
identifies its cost for a known λ.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from imitgame.errors import ImitgameError
from imitgame.game.finite import Concept, FiniteGame


class Volunteer(FiniteGame):
    """Volunteer's dilemma; θ = (costs..., λ)."""

    def __init__(
        self,
        costs: Sequence[float] = (0.5, 1.0, 1.5),
        value: float = 2.0,
        learn: Sequence[str] | None = None,
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        cost_bounds: Sequence[float] = (0.0, 10.0),
        lambda_bounds: Sequence[float] = (0.01, 100.0),
    ) -> None:
        n = len(costs)
        if n < 2:
            raise ImitgameError(f"the volunteer's dilemma needs at least 2 players, got {n}")
        base = torch.zeros(n, *([2] * n))
        feats = torch.zeros(n, n, *([2] * n))
        for profile in itertools.product((0, 1), repeat=n):  # construction only: 2ⁿ entries
            base[(slice(None), *profile)] = value * float(any(profile))
            for i in range(n):
                feats[(i, i, *profile)] = -float(profile[i])
        names = [f"cost_{i}" for i in range(n)]
        super().__init__(
            base=base,
            features=feats,
            param_names=names,
            param_low=cost_bounds[0],
            param_high=cost_bounds[1],
            true_params=list(costs),
            learn=names if learn is None else learn,
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            action_names=[["stay_out", "volunteer"]] * n,
        )
