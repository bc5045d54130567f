"""Observed data: simulation, loading from .npz/.csv, and one-line errors for bad files."""

import numpy as np
import pytest
import torch

from envs.cournot import Cournot
from imitgame.data.observed import load_observed, simulate_observed
from imitgame.errors import ImitgameError

pytestmark = pytest.mark.usefixtures("float64")


def test_simulated_play_is_the_equilibrium_in_each_market():
    game = Cournot(n_firms=2, demand_shifters=[1.0, 2.0])
    observed = simulate_observed(game, game.true_params.expand(3, -1))
    assert observed.actions.shape == (3, 2, 2, 1)
    assert observed.context.shape == (3, 2, 1)
    # doubling the intercept from market 0 to 1: q_i = (2a − 2c_i + c_j) / 3b
    a, c = 100.0, torch.tensor([10.0, 20.0])
    expected = (2 * a - 2 * c + c.flip(0)) / 3
    assert torch.allclose(observed.actions[0, 1, :, 0], expected)


def test_npz_round_trip(tmp_path):
    game = Cournot(n_firms=3)
    observed = simulate_observed(game, game.true_params[None])
    path = tmp_path / "obs.npz"
    np.savez(path, actions=observed.actions.numpy(), theta_true=observed.theta_true.numpy())
    loaded = load_observed(path, game)
    assert torch.allclose(loaded.actions, observed.actions)
    assert torch.allclose(loaded.theta_true, observed.theta_true)
    assert torch.allclose(loaded.theta_known, game.true_params[None])


def test_csv_with_instances_and_context(tmp_path):
    game = Cournot(n_firms=2, demand_shifters=[1.0, 2.0])
    path = tmp_path / "obs.csv"
    path.write_text(
        "instance,firm_0,firm_1,context_0\n0,30,26,1\n1,31,25,1\n0,63,60,2\n1,64,59,2\n"
    )
    loaded = load_observed(path, game)
    assert loaded.actions.shape == (2, 2, 2, 1)
    assert loaded.actions[1, 1, :, 0].tolist() == [64.0, 59.0]
    assert loaded.context[0, :, 0].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "firm_0,firm_1\n1,nan\n", "NaN/inf"),
        ("b.csv", "firm_0,firm_1\n1,inf\n", "NaN/inf"),
        ("c.csv", "firm_0\n1\n", "missing action column"),
        ("d.csv", "firm_0,firm_1\n1,abc\n", "unparsable value 'abc'"),
        ("e.csv", "firm_0,firm_1\n-5,3\n", "outside the action bounds"),
        ("f.txt", "1,2\n", "unsupported data file type"),
        ("g.csv", "instance,firm_0,firm_1\n0,1,1\n0,1,1\n1,1,1\n", "unequal numbers of rows"),
    ],
)
def test_bad_csv_gives_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ImitgameError, match=message) as info:
        load_observed(path, Cournot(n_firms=2))
    assert "\n" not in str(info.value)


def test_bad_npz_shapes_and_missing_file(tmp_path):
    game = Cournot(n_firms=3)
    path = tmp_path / "wrong.npz"
    np.savez(path, actions=np.ones((1, 1, 2, 1)))
    with pytest.raises(ImitgameError, match=r"shape \[1, 1, 2, 1\], expected"):
        load_observed(path, game)
    np.savez(tmp_path / "noactions.npz", quantities=np.ones(3))
    with pytest.raises(ImitgameError, match="no 'actions' array"):
        load_observed(tmp_path / "noactions.npz", game)
    with pytest.raises(ImitgameError, match="not found"):
        load_observed(tmp_path / "missing.npz", game)


def test_context_required_when_game_has_one(tmp_path):
    game = Cournot(n_firms=2, demand_shifters=[1.0, 2.0])
    path = tmp_path / "noctx.npz"
    np.savez(path, actions=np.ones((1, 2, 2, 1)))
    with pytest.raises(ImitgameError, match="needs a context"):
        load_observed(path, game)
