"""The regret estimator ψ and exploitability φ against closed-form values."""

import pytest
import torch

from envs.cournot import Cournot
from imitgame import ActionProfile, Stabilizer, estimate_regret
from imitgame.solver.exploitability import exact_exploitability
from imitgame.solver.regret import DeviationRows
from tests.support import QuadraticGame

pytestmark = pytest.mark.usefixtures("float64")


def _profile(game, actions):
    return ActionProfile(actions, game.action_low, game.action_high, learnable=False)


def test_regret_equals_sum_of_unilateral_gains():
    game = Cournot(n_firms=3)
    theta = game.true_params[None]
    q = torch.tensor([20.0, 25.0, 10.0]).view(1, 1, 3, 1)
    rho = torch.tensor([22.0, 19.0, 18.0]).view(1, 1, 3, 1)
    est = estimate_regret(game, theta, _profile(game, q), _profile(game, rho), batch_shape=(1, 1))
    base = game.payoffs(q[0, 0], theta[0])
    gains = []
    for i in range(3):
        dev = q[0, 0].clone()
        dev[i] = rho[0, 0, i]
        gains.append(game.payoffs(dev, theta[0])[i] - base[i])
    assert torch.allclose(est.gains[0], torch.stack(gains))
    assert torch.allclose(est.regret[0], torch.stack(gains).sum())


def test_cournot_exploitability_closed_form():
    """u_i is quadratic in q_i with curvature −2b, so φ = Σ_i b (BR_i − q_i)², which at the
    true equilibrium q* under a wrong cost guess c is Σ_i (c_i* − c_i)² / (4b)."""
    game = Cournot(n_firms=3, slope=2.0)
    true = game.true_params
    q = game.equilibrium(true)[None, None]
    guess = true.clone()
    guess[:3] += torch.tensor([1.0, -2.0, 0.5])
    stab = Stabilizer(
        guess[None],
        torch.zeros(5, dtype=torch.bool),
        game.param_low,
        game.param_high,
        _profile(game, q),
    )
    phi = exact_exploitability(game, guess[None], stab, None)
    expected = ((true[:3] - guess[:3]) ** 2).sum() / (4 * 2.0)
    assert torch.allclose(phi[0], expected)


def test_regret_is_zero_at_equilibrium_and_positive_elsewhere():
    game = QuadraticGame()
    theta = game.true_params[None]
    # FOC: -2(a_i - θ_i) + 0.1 a_j = 0 -> a = solve([[2, -0.1], [-0.1, 2]], 2θ)
    eq = torch.linalg.solve(torch.tensor([[2.0, -0.1], [-0.1, 2.0]]), 2 * theta[0])
    actions = eq.view(1, 1, 2, 1)
    for rho in (torch.tensor([0.0, 0.0]), torch.tensor([3.0, -1.0])):
        est = estimate_regret(
            game,
            theta,
            _profile(game, actions),
            _profile(game, rho.view(1, 1, 2, 1)),
            batch_shape=(1, 1),
        )
        assert est.regret.item() <= 1e-12
        expected = -((rho - eq) ** 2).sum()  # u_i(ρ_i) − u_i(a*) = −(ρ_i − a_i*)² here
        assert torch.allclose(est.regret[0], expected)


def test_deviation_rows_mix_profiles():
    game = QuadraticGame()
    pi = _profile(game, torch.tensor([1.0, 2.0]).view(1, 1, 2, 1))
    rho = _profile(game, torch.tensor([-1.0, -2.0]).view(1, 1, 2, 1))
    rows = DeviationRows(pi, rho, 2)
    obs = torch.zeros(3, 1, 1, 2, 1)
    acts = rows.act(obs, 0).actions[:, 0, 0, :, 0]
    assert acts.tolist() == [[-1.0, 2.0], [1.0, -2.0], [1.0, 2.0]]


def test_regret_batches_over_instances_and_observations():
    game = Cournot(n_firms=2)
    k, b = 4, 3
    gen = torch.Generator().manual_seed(0)
    theta = game.true_params.expand(k, -1).clone()
    theta[:, :2] += torch.rand(k, 2, generator=gen) * 5
    q = torch.rand(k, b, 2, 1, generator=gen) * 40
    rho = torch.rand(k, b, 2, 1, generator=gen) * 40
    batched = estimate_regret(
        game, theta, _profile(game, q), _profile(game, rho), batch_shape=(k, b)
    )
    for i in range(k):
        single = estimate_regret(
            game,
            theta[i : i + 1],
            _profile(game, q[i : i + 1]),
            _profile(game, rho[i : i + 1]),
            batch_shape=(1, b),
        )
        assert torch.allclose(batched.regret[i], single.regret[0])
