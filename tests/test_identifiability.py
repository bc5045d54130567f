import pytest
import torch

from envs.cournot import Cournot
from imitgame.data.observed import simulate_observed
from imitgame.problems.identifiability import check_identifiability

pytestmark = pytest.mark.usefixtures("float64")


def _rank(game, learned):
    observed = simulate_observed(game, game.true_params[None])
    index = torch.tensor([game.param_names.index(n) for n in learned])
    k, b = observed.actions.shape[:2]
    state = observed.context
    if state is None:
        state = game.default_context().expand(k, b, game.state_dim)
    return check_identifiability(game, observed.actions, observed.theta_known, index, state)


@pytest.mark.parametrize(
    ("kwargs", "learned", "identified", "rank"),
    [
        ({"n_firms": 3}, ["c_0", "c_1", "c_2"], True, 3),
        ({"n_firms": 3}, ["c_0", "c_1", "c_2", "a"], False, 3),
        # a known shifter per market separates a from c, but the payoff scale stays free
        ({"n_firms": 3, "demand_shifters": [1.0, 2.0]}, ["c_0", "c_1", "c_2", "a"], True, 4),
        ({"n_firms": 3, "demand_shifters": [1.0, 2.0]}, ["c_0", "c_1", "c_2", "a", "b"], False, 4),
    ],
)
def test_first_order_rank(kwargs, learned, identified, rank):
    result = _rank(Cournot(**kwargs), learned)
    assert bool(result.identified[0]) is identified
    assert int(result.rank[0]) == rank


def test_firms_at_a_bound_are_left_out():
    game = Cournot(n_firms=3, costs=[10, 20, 95], intercept=100)  # firm 2 shut down
    result = _rank(game, ["c_0", "c_1", "c_2"])
    assert int(result.rank[0]) == 2 and not bool(result.identified[0])


def test_conditions_are_each_agents_own_payoff():
    """Intercept and slope from one market with unequal costs: a − c_i = b(Q + q_i) for three
    firms pins (a, b) — rank 2. (Differentiating the sum of all payoffs instead gives the rows
    (1, −2Q) for every firm: rank 1, a false 'not identified'.)"""
    from imitgame.problems.base import learn_mask

    game = Cournot(learn=["intercept", "slope"])
    theta = game.true_params[None]
    actions = game.equilibrium(theta[:, None, :])
    index = learn_mask(game).nonzero().flatten()
    state = game.default_context().expand(1, 1, -1)
    result = check_identifiability(game, actions, theta, index, state)
    assert result.rank.tolist() == [2] and bool(result.identified.all())
