"""LQ stock game: compliance, the time-varying linear MPE against a hand-solved case, exact best
responses."""

import torch

from envs.lq_stock import LinearStockPolicy, LQStock
from imitgame.solver.regret import estimate_regret
from imitgame.solver.rollout import sample_trajectories
from imitgame.testing import check_game


def test_check_game() -> None:
    report = check_game(LQStock())
    assert "equilibrium_policy has zero exploitability (sampled, by best_response_policy)" in (
        report.checks
    )


def test_two_period_equilibrium_by_hand() -> None:
    """T = 2: the last period is myopic (e_i = b_i); in the first, V_1 = −d s²/2 gives
    e_i = b_i − δ d (ρ s + e_0 + e_1), i.e. Σe = (Σb − 2δdρ s) / (1 + 2δd)."""
    game = LQStock(horizon=2, benefits=[3.0, 5.0], damage=0.2, persistence=0.7, discount=0.9)
    game = game.double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    b, d, rho, delta = torch.tensor([3.0, 5.0], dtype=torch.float64), 0.2, 0.7, 0.9
    assert torch.allclose(pi.gain[0, 1], torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(pi.offset[0, 1], b)
    s = torch.tensor(4.0, dtype=torch.float64)
    total = (b.sum() - 2 * delta * d * rho * s) / (1 + 2 * delta * d)
    expected = b - delta * d * (rho * s + total)
    obs = torch.stack([s, torch.tensor(0.0, dtype=torch.float64)]).expand(1, 1, 2, 2)
    assert torch.allclose(pi.act(obs, 0).actions[0, 0, :, 0], expected)


def test_equilibrium_depends_on_t_and_stays_inside_the_box() -> None:
    game = LQStock().double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    gain = pi.gain[0, :, 0]  # [T]
    assert gain[-1] == 0 and gain[0] < -0.05  # myopic last period, stock-averse earlier
    assert (pi.offset[0, 1:] - pi.offset[0, :-1] > 0).all()  # emissions rise toward T
    traj = sample_trajectories(
        game, theta, pi, (1, 4096), generator=torch.Generator().manual_seed(0)
    )
    assert traj.observations[..., 1].unique().numel() == game.horizon  # t / T is observed
    # the linear policy is exact only where it is not clipped
    low, high = game.action_low[0, 0], game.action_high[0, 0]
    assert bool(((traj.actions > low + 0.05) & (traj.actions < high)).all())


def test_best_responses_are_exact() -> None:
    game = LQStock().double()
    theta = game.true_params[None]
    pi = game.equilibrium_policy(theta)
    br = game.best_response_policy(pi, theta)
    assert torch.allclose(br.gain, pi.gain, atol=1e-12)
    assert torch.allclose(br.offset, pi.offset, atol=1e-12)
    wrong = theta.clone()
    wrong[0, 0] = 7.0  # player 0 values emissions more than the observed play reveals
    br = game.best_response_policy(pi, wrong)
    gen = torch.Generator().manual_seed(0)
    phi = estimate_regret(game, wrong, pi, br, batch_shape=(1, 256), generator=gen).regret
    assert phi.item() > 0.5
    for shift in (-0.2, 0.2):  # perturbing the best response loses
        other = LinearStockPolicy(br.gain, br.offset + shift, game.action_low, game.action_high)
        gen = torch.Generator().manual_seed(0)
        worse = estimate_regret(game, wrong, pi, other, batch_shape=(1, 256), generator=gen)
        assert worse.regret.item() < phi.item()
