"""A 2-player, 3-action pure coordination game with several equilibria.

Both players earn v_a when they choose the same action a and 0 otherwise: every diagonal profile
is a pure Nash equilibrium (three of them) and there are mixed ones besides. θ = (v_A, v_B) are
learned; v_C is known (the payoff entry fixed for normalisation). The logit QRE on the principal
branch is unique for the default λ; its logit conditions log σ(a) − log σ(C) = λ (v_a σ(a) − v_C
σ(C)) identify v_A and v_B (both players' conditions coincide: the play is symmetric).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from imitgame.game.finite import Concept, FiniteGame

PARAMS = ("value_a", "value_b")


class Coordination(FiniteGame):
    """Pure coordination on actions (A, B, C); θ = (v_A, v_B, λ)."""

    def __init__(
        self,
        values: Sequence[float] = (3.0, 2.0),
        value_c: float = 1.0,
        learn: Sequence[str] = PARAMS,
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        value_bounds: Sequence[float] = (0.0, 10.0),
        lambda_bounds: Sequence[float] = (0.01, 100.0),
    ) -> None:
        base = torch.zeros(2, 3, 3)
        base[:, 2, 2] = value_c
        feats = torch.zeros(2, 2, 3, 3)
        feats[0, :, 0, 0] = 1.0
        feats[1, :, 1, 1] = 1.0
        super().__init__(
            base=base,
            features=feats,
            param_names=PARAMS,
            param_low=value_bounds[0],
            param_high=value_bounds[1],
            true_params=list(values),
            learn=learn,
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            action_names=[["A", "B", "C"]] * 2,
        )
