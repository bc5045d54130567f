"""Dynamic Cournot: compliance and the linear-quadratic MPE."""

import torch

from envs.dynamic_cournot import DynamicCournot
from imitgame.solver.regret import estimate_regret
from imitgame.testing import check_game


def test_check_game() -> None:
    assert "gradcheck(regret)" in check_game(DynamicCournot(horizon=3)).checks


def test_last_period_is_the_static_game_with_adjustment_costs() -> None:
    # at t = T − 1: q_i = (d − c_i − b q_j + 2κ q_prev,i) / (2b + 2κ), solved jointly
    game = DynamicCournot(horizon=3, slope=1.0, adjustment_cost=0.5).double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    x = torch.tensor([90.0, 20.0, 35.0], dtype=torch.float64)
    q = pi.gain[0, -1] @ x + pi.offset[0, -1]
    c = theta[0, :2]
    foc = x[0] - c - q.sum() - q - 2 * 0.5 * (q - x[1:])
    assert torch.allclose(foc, torch.zeros(2, dtype=torch.float64), atol=1e-9)


def test_mpe_is_its_own_best_response_and_costs_move_exploitability() -> None:
    game = DynamicCournot(horizon=4).double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    br = game.best_response_policy(pi, theta)
    assert torch.allclose(br.gain, pi.gain, atol=1e-10)
    assert torch.allclose(br.offset, pi.offset, atol=1e-8)
    wrong = theta.clone()
    wrong[0, 0] += 1.0
    br_wrong = game.best_response_policy(pi, wrong)
    gen = torch.Generator().manual_seed(0)
    phi = estimate_regret(game, wrong, pi, br_wrong, batch_shape=(1, 32), generator=gen).regret
    assert phi.item() > 0.1
