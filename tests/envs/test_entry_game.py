"""Entry game: compliance and the logit Markov perfect equilibrium."""

import torch

from envs.entry_game import EntryGame
from imitgame.testing import check_game


def test_check_game() -> None:
    assert "batching" in check_game(EntryGame(horizon=3)).checks


def test_last_period_choice_probabilities_are_logit_best_responses() -> None:
    game = EntryGame(horizon=2).double()
    theta = game.true_params[None]
    probs = game.equilibrium_policy(theta).table[0, -1].exp()[..., 1]  # [S, n]
    states = game._states()
    w, z = states[:, :2], states[:, 2:]
    rev, comp, fixed, entry = theta[0]
    rival = probs.flip(-1)
    margin = rev * (1 + z) - comp * rival - fixed - entry * (1 - w)
    assert torch.allclose(probs, torch.sigmoid(margin / game.entropy_weight), atol=1e-9)


def test_equilibrium_is_its_own_soft_best_response() -> None:
    game = EntryGame(horizon=4).double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    br = game.best_response_policy(pi, theta)
    assert torch.allclose(br.table, pi.table, atol=1e-8)
    wrong = theta.clone()
    wrong[0, 1] = 1.0
    assert (game.best_response_policy(pi, wrong).table - pi.table).abs().max() > 0.05
