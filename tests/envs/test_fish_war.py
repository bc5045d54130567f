"""Fish war: compliance, the closed-form MPE and best responses."""

import torch

from envs.fish_war import ConstantFraction, FishWar
from imitgame.solver.regret import estimate_regret
from imitgame.testing import check_game


def test_check_game() -> None:
    assert "gradcheck(regret)" in check_game(FishWar()).checks


def test_mpe_is_a_fixed_point_of_best_responses_and_unexploitable() -> None:
    game = FishWar(n_players=3, alpha=0.5, beta=0.9).double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    k = (1 - 0.45) / (3 - 2 * 0.45)
    assert torch.allclose(pi.fraction, torch.full((1, 3), k, dtype=torch.float64))
    br = game.best_response_policy(pi, theta)
    assert torch.allclose(br.fraction, pi.fraction, atol=1e-12)
    gen = torch.Generator().manual_seed(0)
    for shift in (-0.02, 0.02):  # any constant deviation loses against the MPE
        dev = ConstantFraction(pi.fraction + shift)
        gains = estimate_regret(game, theta, pi, dev, batch_shape=(1, 64), generator=gen).gains
        assert bool((gains < 0).all())


def test_best_response_beats_the_mpe_of_another_alpha() -> None:
    game = FishWar().double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    wrong = theta.clone()
    wrong[0, 0] = 0.66
    br = game.best_response_policy(pi, wrong)
    gen = torch.Generator().manual_seed(0)
    phi = estimate_regret(game, wrong, pi, br, batch_shape=(1, 64), generator=gen).regret
    for shift in (-0.01, 0.01):
        other = ConstantFraction(br.fraction + shift)
        gen = torch.Generator().manual_seed(0)
        worse = estimate_regret(game, wrong, pi, other, batch_shape=(1, 64), generator=gen).regret
        assert bool((worse < phi).all())
    assert phi.item() > 0.01
