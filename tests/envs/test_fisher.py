import numpy as np
import pytest
import torch

from envs.fisher import Fisher, eisenberg_gale
from imitgame.config import GDAConfig
from imitgame.errors import ImitgameError
from imitgame.game.strategies import ActionProfile
from imitgame.problems.identifiability import check_identifiability
from imitgame.solver.exploitability import exact_exploitability
from imitgame.solver.forward import solve_static_equilibrium
from imitgame.solver.stabilizer import Stabilizer
from imitgame.testing import check_game

UTILITIES = ["linear", "cobb_douglas", "leontief", "ces"]
VALUES = [[0.7, 0.3], [0.3, 0.7], [0.5, 0.5]]
BUDGETS = [1.0, 1.0, 1.5]  # symmetric: every good is scarce under every utility


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def market(utility: str, **kwargs) -> Fisher:
    return Fisher(utility=utility, budgets=BUDGETS, valuations=VALUES, **kwargs)


@pytest.mark.parametrize("utility", UTILITIES)
def test_check_game(utility):
    check_game(market(utility))


def test_cobb_douglas_closed_form_matches_cvxpy():
    game = market("cobb_douglas")
    eq = game.equilibrium(game.true_params)
    bundles, prices = eisenberg_gale(
        "cobb_douglas", np.array(BUDGETS), np.array(VALUES), np.ones(2)
    )
    assert np.allclose(eq[3].numpy(), prices, atol=1e-6)
    assert np.allclose(eq[:3].numpy(), bundles, atol=1e-6)
    # p_j = Σ_i B_i v_ij / s_j
    assert torch.allclose(eq[3], torch.tensor([0.7 + 0.3 + 0.75, 0.3 + 0.7 + 0.75]))


@pytest.mark.parametrize("utility", UTILITIES)
def test_equilibrium_clears_and_spends_budgets(utility):
    game = market(utility)
    eq = game.equilibrium(game.true_params)
    bundles, prices = eq[:3], eq[3]
    assert torch.allclose(bundles.sum(0), torch.ones(2), atol=1e-6)
    assert torch.allclose((bundles * prices).sum(-1), torch.tensor(BUDGETS), atol=1e-6)
    # each buyer's bundle is a utility-maximising demand at p*
    budgets, values = game.unpack(game.true_params)
    log_u = game.log_utility(bundles, values)
    best = game.log_utility(game.demand(prices, game.true_params), values)
    # cvxpy (Clarabel) returns duals to ~1e-6 on these problems: the bound on the comparison
    assert torch.allclose(log_u, best, atol=1e-5)


def test_exploitability_is_the_lagrangian_duality_gap():
    """φ(X, p) = max_X' L(X', p) − min_p' L(X, p) for L = Σ B_i log u_i − p·(Σx − s)."""
    game = market("cobb_douglas")
    theta = game.true_params
    gen = torch.Generator().manual_seed(0)
    bundles = 0.2 + torch.rand(3, 2, generator=gen)
    prices = 0.5 + torch.rand(2, generator=gen)
    actions = torch.cat([bundles, prices[None]])[None, None]
    budgets, values = game.unpack(theta)

    def lagrangian(x, p):
        return (budgets * game.log_utility(x, values)).sum() - (p * (x.sum(0) - 1.0)).sum()

    best_x = game.demand(prices, theta)
    excess = bundles.sum(0) - 1.0
    worst_p = torch.where(excess > 0, game.action_high[3], game.action_low[3])
    gap = lagrangian(best_x, prices) - lagrangian(bundles, worst_p)
    profile = ActionProfile(actions, game.action_low, game.action_high, learnable=False)
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool)
    stab = Stabilizer(theta[None], no_theta, game.param_low, game.param_high, profile)
    phi = exact_exploitability(game, theta[None], stab, None)
    assert torch.allclose(phi, gap[None], rtol=1e-10)


@pytest.mark.parametrize("utility", ["cobb_douglas", "linear"])
def test_cvxpy_matches_the_forward_solver(utility):
    """The EG program (cvxpy) and the framework's GDA forward solver find the same market."""
    game = Fisher(
        n_buyers=2,
        n_goods=2,
        utility=utility,
        budgets=[1.0, 2.0],
        valuations=[[0.7, 0.3], [0.2, 0.8]],
        price_bounds=(0.1, 10.0),
    )
    theta = game.true_params[None]
    eq = game.equilibrium(theta)
    config = GDAConfig(
        iterations=1500,
        lr_profile=0.05,
        schedule="cosine",
        lr_final_fraction=1e-4,
        eval_every=100,
        tol_exploitability=1e-9,
        tol_step=None,
    )
    solved, exploit = solve_static_equilibrium(game, theta, config=config)
    assert exploit.item() < 1e-4
    assert torch.allclose(solved[0, 0], eq[0], atol=5e-3)


def test_identifiability():
    """Budgets identified; linear valuations not; Cobb-Douglas valuations up to each row's scale."""
    state = torch.ones(1, 1, 1)
    for utility, learn, deficit in [
        ("linear", ["budgets"], 0),
        ("cobb_douglas", ["budgets"], 0),
        ("leontief", ["budgets"], 0),
        ("cobb_douglas", ["budgets", "valuations"], 3),
    ]:
        game = market(utility, learn=learn)
        theta = game.true_params[None]
        eq = game.equilibrium(theta)[:, None]
        idx = torch.tensor([game.param_names.index(p) for p in game.learned_params])
        ident = check_identifiability(game, eq, theta, idx, state)
        assert int(ident.rank) == len(idx) - deficit, (utility, learn)
    game = market("linear", learn=["budgets", "valuations"])
    theta = game.true_params[None]
    eq = game.equilibrium(theta)[:, None]
    ident = check_identifiability(game, eq, theta, torch.arange(9), state)
    assert not bool(ident.identified)


def test_bad_input():
    with pytest.raises(ImitgameError, match="utility"):
        Fisher(utility="quadratic")
    with pytest.raises(ImitgameError, match="learn"):
        Fisher(learn=["supplies"])
    with pytest.raises(ImitgameError, match="rho"):
        Fisher(utility="ces", rho=1.0)
    with pytest.raises(ImitgameError, match="price_bounds"):
        Fisher(price_bounds=(0.0, 1.0))
