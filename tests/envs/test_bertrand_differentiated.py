import pytest
import torch

from envs.bertrand_differentiated import BertrandDifferentiated, lambert_w
from imitgame.errors import ImitgameError
from imitgame.problems.identifiability import check_identifiability
from imitgame.testing import check_game


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("demand", ["linear", "logit"])
def test_check_game(demand):
    check_game(BertrandDifferentiated(n_firms=3, demand=demand, intercepts=[2.0, 2.5, 3.0]))


def test_lambert_w():
    x = torch.tensor([0.0, 0.5, 1.0, 10.0, 1e6])
    w = lambert_w(x)
    assert torch.allclose(w * w.exp(), x, rtol=1e-12, atol=1e-14)


def own_price_derivative(game, prices, theta):
    """∂u_i/∂p_i ``[N, 1]``: the diagonal of the payoff Jacobian."""
    jac = torch.autograd.functional.jacobian(lambda p: game.payoffs(p, theta), prices)
    return torch.diagonal(jac[..., 0], dim1=0, dim2=1).unsqueeze(-1)


@pytest.mark.parametrize("demand", ["linear", "logit"])
def test_equilibrium_satisfies_first_order_conditions(demand):
    game = BertrandDifferentiated(
        n_firms=4, demand=demand, costs=[1.0, 1.5, 2.0, 3.0], intercepts=[3.0, 2.0, 4.0, 2.5]
    )
    theta = game.true_params
    eq = game.equilibrium(theta)
    assert torch.allclose(own_price_derivative(game, eq, theta), torch.zeros(4, 1), atol=1e-9)
    assert torch.allclose(game.best_response(eq, theta), eq, atol=1e-10)


def test_linear_closed_form():
    game = BertrandDifferentiated(
        n_firms=2, costs=[1.0, 2.0], intercepts=[10.0, 12.0], own_slope=2.0, cross_slope=1.0
    )
    # 4 p0 − p1 = 10 + 2, 4 p1 − p0 = 12 + 4  =>  p0 = 64/15, p1 = 76/15
    eq = game.equilibrium(game.true_params)[..., 0]
    assert torch.allclose(eq, torch.tensor([64 / 15, 76 / 15]))


def test_identifiability_costs_vs_demand():
    game = BertrandDifferentiated(n_firms=3, learn=["costs"])
    theta = game.true_params[None]
    eq = game.equilibrium(theta)[:, None]
    state = game.default_context().expand(1, 1, 1)
    idx = torch.arange(3)
    assert bool(check_identifiability(game, eq, theta, idx, state).identified.all())
    both = torch.arange(8)  # costs, intercepts, slopes from one market: not identified
    assert not bool(check_identifiability(game, eq, theta, both, state).identified.any())


def test_bad_input():
    with pytest.raises(ImitgameError, match="own_slope"):
        BertrandDifferentiated(n_firms=5, own_slope=1.0, cross_slope=1.0)
    with pytest.raises(ImitgameError, match="demand"):
        BertrandDifferentiated(demand="probit")
