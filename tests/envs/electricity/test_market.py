"""The electricity market game: closed forms, corners, and a market built from the shipped data."""

import numpy as np
import pytest
import torch

from envs.electricity import CONTEXT_DIM, ElectricityMarket
from imitgame.errors import ImitgameError
from imitgame.problems.simulacral import equilibrium_regret
from imitgame.testing import check_game


@pytest.fixture
def game():
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            yield ElectricityMarket(per_hour_slopes=False, synthetic_hours=50)
        finally:
            torch.set_default_dtype(torch.float32)


def test_equilibrium_is_nash_and_best_response_is_best(game):
    theta = game.true_params[None]
    ctx = game.observed_contexts()[None]
    assert equilibrium_regret(game, theta, ctx).item() < 1e-9
    eq = game.equilibrium(theta[:, None], ctx)
    assert bool((eq > 0).all())  # interior: the closed form is exact
    # P* = (a + b r Σc) / (1 + n b r) with b = d = 1, c = (0, 1, 2)
    a = game.intercept(theta[:, None], ctx)
    assert torch.allclose(game.price(eq, theta[:, None], ctx), (a + 0.5 * 3) / 2.5)
    # a best response beats nearby deviations
    q = eq + 3.0
    br = game.best_response(q, theta[:, None], ctx)
    for shift in (-0.5, 0.5):
        dev = q.clone()
        dev[..., 0, :] = br[..., 0, :] + shift
        mixed = q.clone()
        mixed[..., 0, :] = br[..., 0, :]
        u_br = game.payoffs(mixed, theta[:, None], ctx)[..., 0]
        assert bool((u_br > game.payoffs(dev, theta[:, None], ctx)[..., 0]).all())


def test_equilibrium_with_priced_out_generators(game):
    """Low demand: generators whose cost the price does not cover offer nothing, and the result
    is still a Nash equilibrium (exact regret 0), where the interior formula is not."""
    theta = game.true_params.clone()
    ctx = game.observed_contexts()[:4]
    shift = torch.tensor([1.5, 3.0, 5.0, 0.5]) - game.intercept(theta, ctx)
    theta = theta.expand(4, -1).clone()
    theta[:, :24] += shift[:, None]  # every hour intercept moves, so a(x_k) = target_k
    a = game.intercept(theta[:, None], ctx[:, None])[:, 0]
    assert torch.allclose(a, torch.tensor([1.5, 3.0, 5.0, 0.5]))
    eq = game.equilibrium(theta[:, None], ctx[:, None])[:, 0, :, 0]  # [4, n]
    # c = (0, 1, 2), b = d = 1: P_k = (a + Σ_{j≤k} c_j / 2) / (1 + k / 2). a = 1.5: P_1 = 1 > 0
    # but P_2 = 1 does not cover c = 1, so only the first produces, q = (P − 0) / 2 = 0.5
    assert torch.allclose(eq[0], torch.tensor([0.5, 0.0, 0.0]))
    assert (eq > 0).sum(-1).tolist() == [1, 2, 3, 1]  # a = 3: P_3 = 1.8 < 2; a = 5: P_3 = 2.6
    assert equilibrium_regret(game, theta, ctx[:, None]).max().item() < 1e-12


def test_expanded_contexts_keep_their_batch_shape(game):
    """a(x) is computed once per context under an expanded batch (the regret estimator's deviation
    rows), and every output keeps the full broadcast shape."""
    theta = game.true_params
    ctx = game.observed_contexts()[:5]
    wide = ctx[None].expand(4, -1, -1)
    assert game.intercept(theta, wide).shape == (4, 5)
    eq = game.equilibrium(theta, wide)
    assert eq.shape == (4, 5, 3, 1)
    assert torch.equal(eq, game.equilibrium(theta, wide.clone()))
    assert game.best_response(eq, theta, wide).shape == (4, 5, 3, 1)


def test_check_game(game):
    check_game(game)


def test_data_backed_market_builds_contexts():
    game = ElectricityMarket(data_path="spain", train_start="2016-01-01", train_end="2016-01-31")
    ctx = game.observed_contexts()
    assert ctx.shape[1] == CONTEXT_DIM
    assert ctx.shape[0] == game.observed_outcomes().shape[0] == 24 * (31 - 7)
    assert torch.isfinite(ctx).all()


def test_recency_weights_discount_old_days():
    january = dict(data_path="spain", train_start="2016-01-01", train_end="2016-01-31")
    game = ElectricityMarket(**january, recency_days=10.0)
    weights = game.observation_weights()
    assert weights.shape == (24 * 24,)
    assert weights.mean().item() == pytest.approx(1.0)
    by_day = weights.view(24, 24)
    assert torch.allclose(by_day, by_day[:, :1].expand(-1, 24))  # one weight per day
    assert torch.allclose(by_day[:-1, 0] / by_day[1:, 0], torch.tensor(np.exp(-0.1)))
    assert ElectricityMarket(**january).observation_weights() is None
    with pytest.raises(ImitgameError, match="recency_days"):
        ElectricityMarket(recency_days=0.0)


def test_data_path_is_spain_a_path_or_a_one_line_error(tmp_path, monkeypatch):
    """``data_path``: ``spain`` (the shipped file, from any cwd), a user's CSV relative to the
    cwd, or a missing file reported in one line; null stays synthetic."""
    from envs.electricity.data import SPAIN
    from envs.electricity.forecast import read_raw, write_days

    monkeypatch.chdir(tmp_path)
    write_days(read_raw("spain"), "2016-01-01", "2016-01-31", tmp_path / "january.csv")
    window = dict(train_start="2016-01-01", train_end="2016-01-31")
    shipped = ElectricityMarket(data_path="spain", **window)
    own = ElectricityMarket(data_path="january.csv")
    assert torch.equal(shipped.observed_contexts(), own.observed_contexts())
    assert torch.equal(shipped.observed_outcomes(), own.observed_outcomes())
    assert ElectricityMarket(data_path=str(SPAIN), **window).observed_contexts().shape == (
        24 * 24,
        CONTEXT_DIM,
    )
    with pytest.raises(ImitgameError, match="not found: nowhere.csv") as info:
        ElectricityMarket(data_path="nowhere.csv")
    assert "\n" not in str(info.value)
    assert ElectricityMarket(data_path=None, synthetic_hours=10).observed_outcomes() is None
