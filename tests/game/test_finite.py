"""FiniteGame: multilinear payoffs, exact (soft) best responses, the logit QRE, concepts."""

import itertools

import pytest
import torch

from envs.coordination import Coordination
from envs.cournot import Cournot
from envs.entry_game import EntryGame
from envs.rps import RockPaperScissors
from envs.security_game import SecurityGame
from envs.volunteer import Volunteer
from imitgame.errors import ImitgameError
from imitgame.game.finite import (
    DiscretizedGame,
    FiniteGame,
    action_values,
    configure_equilibrium,
    expected_payoffs,
    logit_qre,
    simulate_counts,
)

GAMES = [RockPaperScissors, SecurityGame, Coordination, Volunteer]


def test_payoffs_match_brute_force_sums(float64) -> None:
    """u_i(σ) and q_i(a) against explicit sums over the 2·3·2 pure profiles of a random game."""
    gen = torch.Generator().manual_seed(0)
    payoff = torch.randn(3, 2, 3, 2, generator=gen)
    sigma = torch.zeros(3, 3)
    sizes = (2, 3, 2)
    for i, a in enumerate(sizes):
        sigma[i, :a] = torch.softmax(torch.randn(a, generator=gen), -1)
    padded = torch.zeros(3, 3, 3, 3)
    padded[:, :2, :3, :2] = payoff
    u = expected_payoffs(padded, sigma)
    q = action_values(padded, sigma)
    want_u = torch.zeros(3)
    want_q = torch.zeros(3, 3)
    for prof in itertools.product(*[range(a) for a in sizes]):
        prob = [sigma[j, prof[j]] for j in range(3)]
        want_u += payoff[(slice(None), *prof)] * prob[0] * prob[1] * prob[2]
        for i in range(3):
            others = torch.stack([prob[j] for j in range(3) if j != i]).prod()
            want_q[i, prof[i]] += payoff[(i, *prof)] * others
    assert torch.allclose(u, want_u, atol=1e-12)
    assert torch.allclose(q[0, :2], want_q[0, :2], atol=1e-12)
    assert torch.allclose(q[1], want_q[1], atol=1e-12)


@pytest.mark.parametrize("cls", GAMES)
def test_qre_is_the_logit_fixed_point(cls, float64) -> None:
    game = cls(qre_lambda=2.0)
    theta = game.true_params[None]
    sigma = game.equilibrium(theta)
    q = game.action_values(sigma, theta)
    fixed = torch.softmax(2.0 * q, -1)
    assert torch.allclose(sigma, fixed, atol=1e-10)
    assert torch.allclose(game.best_response(sigma, theta), sigma, atol=1e-10)
    assert torch.allclose(sigma.sum(-1), torch.ones(game.n_agents, dtype=sigma.dtype))


def test_qre_matches_pygambit(float64) -> None:
    pytest.importorskip("pygambit")
    from imitgame.game.gambit import gambit_qre

    for game in (Coordination(qre_lambda=1.5), Volunteer(qre_lambda=3.0)):
        theta = game.true_params
        ours = game.equilibrium(theta[None])[0]
        theirs = gambit_qre(game, theta, float(theta[-1]))
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_exploitability_is_the_closed_form_kl(float64) -> None:
    """ψ against the soft best response = Σ_i (1/λ) KL(σ_i ‖ softmax(λ q_i))."""
    game = SecurityGame(qre_lambda=2.0)
    theta = game.true_params[None]
    sigma = torch.tensor([[[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]], dtype=torch.float64)
    br = game.best_response(sigma, theta)
    rows = torch.stack([torch.stack([br[0, 0], sigma[0, 1]]), torch.stack([sigma[0, 0], br[0, 1]])])
    gains = torch.diagonal(game.payoffs(rows, theta), 0) - game.payoffs(sigma, theta)[0]
    kl = (sigma[0] * (sigma[0].log() - br[0].log())).sum(-1) / 2.0
    assert torch.allclose(gains, kl, atol=1e-12)
    assert bool((kl > 0).all())


def test_nash_best_response_is_a_pure_maximiser(float64) -> None:
    game = Coordination(equilibrium="nash")
    assert game.param_names == ["value_a", "value_b"]
    theta = game.true_params[None]
    sigma = torch.tensor([[[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]], dtype=torch.float64)
    br = game.best_response(sigma, theta)  # q = (0.6, 0.6, 0.5): a tie broken to A
    assert torch.equal(br[0, 0], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))


@pytest.mark.slow
def test_nash_equilibrium_of_coordination_has_zero_exploitability(float64) -> None:
    game = Coordination(equilibrium="nash")
    theta = game.true_params[None]
    sigma = game.equilibrium(theta)
    assert torch.allclose(sigma.sum(-1), torch.ones(1, 2, dtype=sigma.dtype))
    q = game.action_values(sigma, theta)
    own = (sigma * q.masked_fill(~game.action_mask, 0)).sum(-1)
    # the forward solver (GDA on the box view of the simplex) reaches an ε-equilibrium
    assert torch.allclose(own, q.amax(-1), atol=1e-3)


def test_set_equilibrium_adds_and_drops_lambda(float64) -> None:
    game = RockPaperScissors()
    assert game.param_names[-1] == "lambda" and game.param_dim == 4
    configure_equilibrium(game, "logit_qre", qre_lambda=3.0, learn_lambda=True)
    assert float(game.true_params[-1]) == 3.0 and "lambda" in game.learned_params
    configure_equilibrium(game, "nash")
    assert "lambda" not in game.param_names and game.param_dim == 3
    with pytest.raises(ImitgameError, match="λ bounds"):
        RockPaperScissors(qre_lambda=1000.0)
    with pytest.raises(ImitgameError, match="learn"):
        RockPaperScissors(learn=["nope"])
    with pytest.raises(ImitgameError, match="features"):
        FiniteGame(
            base=torch.zeros(2, 2, 2),
            features=torch.zeros(1, 2, 2, 3),
            param_names=["x"],
            param_low=0.0,
            param_high=1.0,
        )


def test_markov_logit_qre_sets_the_entropy_weight() -> None:
    game = EntryGame(horizon=2)
    configure_equilibrium(game, "logit_qre", qre_lambda=4.0)
    assert game.entropy_weight == 0.25
    configure_equilibrium(game, "nash")
    assert game.entropy_weight == 0.0
    with pytest.raises(ImitgameError, match="one-shot"):
        configure_equilibrium(game, "logit_qre", qre_lambda=1.0, learn_lambda=True)


def test_discretized_view_of_a_continuous_game(float64) -> None:
    inner = Cournot(n_firms=2)
    game = DiscretizedGame(inner, 5, qre_lambda=0.05)
    theta = game.true_params
    u = game.payoff_tensor(theta)  # [2, 5, 5]
    q = torch.stack(torch.meshgrid(game.grid_points[0], game.grid_points[1], indexing="ij"), -1)
    want = inner.payoffs(q[..., None], theta[: inner.param_dim]).movedim(-1, 0)
    assert torch.allclose(u, want)
    sigma = logit_qre(game, theta[None])
    assert torch.allclose(game.best_response(sigma, theta[None]), sigma, atol=1e-10)


def test_simulate_counts(float64) -> None:
    game = SecurityGame()
    theta = game.true_params.expand(3, -1)
    counts = simulate_counts(game, theta, 500, torch.Generator().manual_seed(1))
    assert counts.shape == (3, 2, 3)
    assert torch.equal(counts.sum(-1), torch.full((3, 2), 500.0, dtype=counts.dtype))
    with pytest.raises(ImitgameError, match="n_actions_per_player"):
        simulate_counts(game, theta, 0)
