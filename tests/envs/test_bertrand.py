import pytest
import torch

from envs.bertrand import Bertrand
from imitgame.config import AlgoConfig
from imitgame.data.observed import simulate_observed
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionProfile
from imitgame.problems.inverse import solve_inverse
from imitgame.solver.regret import estimate_regret
from imitgame.testing import check_game


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_check_game():
    check_game(Bertrand(n_firms=3, cost=5.0, intercept=50.0, slope=2.0))


def test_equilibrium_is_marginal_cost():
    game = Bertrand(n_firms=3, cost=7.0)
    assert torch.allclose(game.equilibrium(game.true_params)[..., 0], torch.full((3,), 7.0))


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([12.0, 15.0], [15.0, 12.0]),  # undercut the rival (to within δ)
        ([80.0, 90.0], [55.0, 55.0]),  # rival above the monopoly price (a/b + c)/2 = 55
        ([5.0, 20.0], [20.0, 200.0]),  # rival below cost: stay out (any price above it)
        ([10.0, 10.0], [10.0, 10.0]),  # at cost: nothing beats zero profit
    ],
)
def test_best_response_cases(prices, expected):
    game = Bertrand(cost=10.0, intercept=100.0, slope=1.0)
    p = torch.tensor(prices)[None, :, None]
    response = game.best_response(p, game.true_params[None])[0, :, 0]
    assert torch.allclose(response, torch.tensor(expected), rtol=1e-5)


def test_regret_is_v_shaped_in_cost():
    """At observed p = c*, ψ(ĉ) = |ĉ − c*| D(c*) up to the undercut δ (2 firms)."""
    game = Bertrand(cost=10.0, intercept=100.0, slope=1.0)
    c_hat = torch.tensor([6.0, 9.0, 10.0, 11.0, 14.0])
    theta = torch.stack([c_hat, torch.full_like(c_hat, 100.0), torch.ones_like(c_hat)], -1)
    observed = game.equilibrium(game.true_params).expand(5, 1, 2, 1)
    response = game.best_response(observed, theta[:, None])
    rows = [
        ActionProfile(x, game.action_low, game.action_high, learnable=False)
        for x in (observed, response)
    ]
    regret = estimate_regret(game, theta, *rows, batch_shape=(5, 1)).regret
    assert torch.allclose(regret, (c_hat - 10.0).abs() * 90.0, rtol=1e-4)


def test_bad_input():
    with pytest.raises(ImitgameError, match="n_firms"):
        Bertrand(n_firms=1)
    with pytest.raises(ImitgameError, match="learn"):
        Bertrand(learn=["margin"])


def test_smoothed_shares_approach_the_hard_split():
    hard = Bertrand()
    soft = Bertrand(temperature=1e-3)
    p = torch.tensor([[20.0], [20.5], [30.0]])
    game3 = Bertrand(n_firms=3)
    soft3 = Bertrand(n_firms=3, temperature=1e-3)
    theta = hard.true_params
    assert torch.allclose(game3.payoffs(p, theta), soft3.payoffs(p, theta), atol=1e-6)
    with pytest.raises(NotImplementedError):
        soft.best_response(p[:2], theta)


def test_identifiability_needs_positive_sales():
    """p* = c identifies c only where the market sells something at p*: a − b c > 0."""
    game = Bertrand(cost_bounds=(2.0, 100.0), max_price=1e4)
    theta = torch.tensor([[10.0, 100.0, 1.0], [10.0, 5.0, 1.0]])  # the second sells nothing
    observed = simulate_observed(game, theta)
    algo = AlgoConfig(
        iterations=300,
        lr_theta=2.0,
        schedule="cosine",
        lr_final_fraction=1e-4,
        destabilizer="best_response",
        tol_exploitability=1e-8,
        tol_step=None,
        theta_init=[3.0],
    )
    result = solve_inverse(game, observed, algo)
    assert result.identified.tolist() == [True, False]
    assert result.relative_error[0] < 1e-3
    # the unidentified instance: any ĉ ≥ a/b = 5 rationalises the data
    assert result.theta_hat[1, 0] >= 5.0 - 1e-6
    assert result.exploitability[1] <= 1e-8
