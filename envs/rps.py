"""Rock-paper-scissors with a parameterised payoff matrix (Ling, Fang & Kolter, IJCAI 2018).

Zero-sum, two players, actions (rock, paper, scissors). The row player's payoff matrix is

    M(θ) = [[ 0, −w_pr,  w_rs],
            [ w_pr,  0, −w_sp],
            [−w_rs,  w_sp,  0]],

w_pr = what paper wins against rock, w_rs = rock against scissors, w_sp = scissors against paper;
the column player gets −M(θ) (zero-sum). With unequal wins the logit QRE is not uniform, and its
logit conditions log σ_i(a) − log σ_i(a') = λ (q_i(a) − q_i(a')) are linear in θ. The game is
symmetric, so both players play the same σ and their conditions coincide: two equations, which
identify two wins for a known λ; the third (``scissors_beats_paper``) is known by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from imitgame.game.finite import Concept, FiniteGame

PARAMS = ("paper_beats_rock", "rock_beats_scissors", "scissors_beats_paper")


def rps_features() -> torch.Tensor:
    """``[3, 2, 3, 3]``: one payoff feature per win (row player M, column player −M)."""
    feats = torch.zeros(3, 2, 3, 3)
    wins = [(1, 0), (0, 2), (2, 1)]  # (winner, loser) for paper>rock, rock>scissors, scissors>paper
    for k, (win, lose) in enumerate(wins):
        feats[k, 0, win, lose], feats[k, 0, lose, win] = 1.0, -1.0
    feats[:, 1] = -feats[:, 0]  # zero-sum: the column player gets −M[a_row, a_col]
    return feats


class RockPaperScissors(FiniteGame):
    """Parameterised rock-paper-scissors; θ = (wins..., λ)."""

    def __init__(
        self,
        wins: Sequence[float] = (1.0, 2.0, 3.0),
        learn: Sequence[str] = PARAMS[:2],
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        win_bounds: Sequence[float] = (0.0, 10.0),
        lambda_bounds: Sequence[float] = (0.01, 100.0),
    ) -> None:
        super().__init__(
            base=torch.zeros(2, 3, 3),
            features=rps_features(),
            param_names=PARAMS,
            param_low=win_bounds[0],
            param_high=win_bounds[1],
            true_params=list(wins),
            learn=learn,
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            action_names=[["rock", "paper", "scissors"]] * 2,
            agent_names=["row", "column"],
        )
