import pytest
import torch

from envs.cournot import Cournot
from imitgame.errors import ImitgameError
from imitgame.solver.forward import solve_static_equilibrium
from imitgame.testing import check_game
from tests.support import IsoelasticCournot

pytestmark = pytest.mark.usefixtures("float64")


def test_closed_form_matches_textbook_formula():
    game = Cournot(n_firms=4, costs=[10, 12, 17, 20], intercept=120, slope=2)
    theta = game.true_params
    q = game.equilibrium(theta)[..., 0]
    c = torch.tensor([10.0, 12, 17, 20])
    expected = (120 - 5 * c + c.sum()) / (5 * 2)
    assert torch.allclose(q, expected, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_firms": 2},
        {"n_firms": 3, "quadratic_costs": [0.5, 1.0, 2.0]},
        {"n_firms": 5, "demand_shifters": [0.8, 1.3]},
    ],
)
def test_closed_form_equals_forward_solver(kwargs):
    game = Cournot(**kwargs)
    theta = game.true_params[None]
    contexts = game.observed_contexts()
    state0 = None if contexts is None else contexts[None]
    closed = (
        game.equilibrium(theta[:, None])
        if state0 is None
        else game.equilibrium(theta[:, None], context=state0)
    )
    solved, exploit = solve_static_equilibrium(game, theta, state0, use_oracle=False)
    assert torch.allclose(solved, closed.expand_as(solved), rtol=1e-5, atol=1e-5)
    assert exploit.item() < 1e-6


def test_equilibrium_shuts_down_unprofitable_firms():
    game = Cournot(n_firms=3, costs=[10, 20, 90], intercept=100)
    q = game.equilibrium(game.true_params)[..., 0]
    assert q[2] == 0
    # the remaining duopoly: q_i = (a - 2 c_i + c_j) / (3 b)
    assert torch.allclose(q[:2], torch.tensor([(100 - 20 + 20) / 3, (100 - 40 + 10) / 3]))
    br = game.best_response(q[..., None], game.true_params)[..., 0]
    assert torch.allclose(br, q)


def test_best_response_maximises_own_payoff():
    game = Cournot(n_firms=3)
    theta = game.true_params
    q = torch.tensor([[5.0], [30.0], [12.0]])
    br = game.best_response(q, theta)
    grid = torch.linspace(0, 100, 2001)
    for i in range(3):
        profiles = q.expand(len(grid), 3, 1).clone()
        profiles[:, i, 0] = grid
        best = game.payoffs(profiles, theta)[:, i].max()
        deviated = q.clone()
        deviated[i] = br[i]
        assert game.payoffs(deviated, theta)[i] >= best - 1e-9


def test_check_game_passes_for_variants():
    assert "gradcheck(regret)" in check_game(Cournot()).checks
    report = check_game(Cournot(n_firms=2, quadratic_costs=1.0, demand_shifters=[1.0, 2.0]))
    assert "equilibrium has zero exploitability" in report.checks


def test_theta_layout_and_learned_blocks():
    game = Cournot(n_firms=2, quadratic_costs=0.5, learn=["costs", "intercept"])
    assert game.param_names == ["c_0", "c_1", "d_0", "d_1", "a", "b"]
    assert game.learned_params == ["c_0", "c_1", "a"]
    common = Cournot(n_firms=2, common_cost=True, costs=4.0)
    assert common.param_names == ["c", "a", "b"]
    assert torch.allclose(common.marginal_costs(common.true_params), torch.tensor([4.0, 4.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learn": ["prices"]}, "unknown block"),
        ({"costs": [1.0, 2.0]}, "costs has 2 entries"),
        ({"cost_bounds": [5.0, 1.0]}, "empty or inverted"),
        ({"costs": 500.0}, "outside the parameter bounds"),
        ({"demand_shifters": [1.0, -1.0]}, "positive"),
        ({"learn": ["quadratic"]}, "quadratic_costs is not set"),
    ],
)
def test_bad_configuration_is_one_clear_error(kwargs, message):
    with pytest.raises(ImitgameError, match=message):
        Cournot(**kwargs)


def test_isoelastic_subclass_gets_forward_solver_and_check_game():
    """Overriding inverse_demand alone yields a working game: the closed forms switch off, the
    forward solver finds the analytic equilibrium P* = Σc / (N − 1/ε), s_i = ε (1 − c_i / P*)."""
    eps = 1.5
    game = IsoelasticCournot(elasticity=eps, n_firms=3, costs=[10, 12, 14], max_quantity=50.0)
    assert not game.has_equilibrium and not game.has_best_response
    check_game(game)
    theta = game.true_params[None]
    c = torch.tensor([10.0, 12.0, 14.0])
    price = c.sum() / (3 - 1 / eps)
    shares = eps * (1 - c / price)
    total = (100.0 / price) ** eps
    init = torch.full((1, 1, 3, 1), 1.0)
    solved, exploit = solve_static_equilibrium(game, theta, use_oracle=False, init=init)
    assert torch.allclose(solved[0, 0, :, 0], shares * total, rtol=2e-3)
    assert exploit.item() < 1e-4
