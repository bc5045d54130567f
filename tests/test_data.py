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


def _one_line(path, game, message):
    """load_observed raises ONE ImitgameError line matching ``message`` (a regex)."""
    with pytest.raises(ImitgameError, match=message) as info:
        load_observed(path, game)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("header", "unknown"),
    [
        ("firm_0,firm_1,firm_2,firm_3", "['firm_3']"),
        ("instance,firm_0,firm_1,firm_2,context_0", "['context_0']"),  # the game has no context
        ("price,firm_0,firm_1,firm_2,note", "['price', 'note']"),
    ],
)
def test_csv_unknown_columns_are_named(tmp_path, header, unknown):
    path = tmp_path / "obs.csv"
    values = ",".join(["1"] * len(header.split(",")))
    path.write_text(f"{header}\n{values}\n")
    message = _one_line(path, Cournot(n_firms=3), "unknown column")
    assert unknown in message
    assert "expected columns firm_0, firm_1, firm_2 and optionally instance" in message


def test_csv_context_columns_beyond_context_dim_are_unknown(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("firm_0,firm_1,context_0,context_1\n30,26,1,5\n")
    message = _one_line(path, Cournot(n_firms=2, demand_shifters=[1.0]), "unknown column")
    assert "['context_1']" in message and "firm_0, firm_1, context_0" in message


def test_csv_misnamed_column_reports_missing_and_unknown(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("firm_0, firm_1,firm_2\n1,2,3\n")
    message = _one_line(path, Cournot(n_firms=3), "missing action column")
    assert "['firm_1']" in message and "unknown column(s) [' firm_1']" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("firm_0,firm_1,firm_2\n", r"^obs\.csv holds no observations \(header only\)$"),
        ("", r"^obs\.csv is empty"),
        ("\n\n", r"^obs\.csv is empty"),
        ("firm_0,firm_1,firm_2\n0,1,2,3\n", "more fields than the header's 3 column"),
        ("instance,firm_0,firm_1,firm_2\n0,1,2,3\n,1,2,3\n", "'instance' is blank in 1 row"),
    ],
)
def test_csv_without_usable_rows(tmp_path, content, message):
    path = tmp_path / "obs.csv"
    path.write_text(content)
    _one_line(path, Cournot(n_firms=3), message)


def test_npz_without_observations(tmp_path):
    game = Cournot(n_firms=3)
    for shape in [(0, 3, 1), (2, 0, 3, 1)]:
        np.savez(tmp_path / "zero.npz", actions=np.zeros(shape))
        message = _one_line(tmp_path / "zero.npz", game, "^zero.npz holds no observations")
        assert f"actions have shape {list(shape)}" in message
    (tmp_path / "empty.npz").write_bytes(b"")
    _one_line(tmp_path / "empty.npz", game, r"^empty\.npz is empty")
    np.save(tmp_path / "single.npy", np.ones((3, 1)))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    _one_line(tmp_path / "single.npz", game, "not an .npz archive")


@pytest.mark.parametrize("shape", [(3, 4), (4, 3, 2), (1, 3, 4, 3, 1), (3,)])
def test_npz_actions_shape_is_reported_as_stored(tmp_path, shape):
    path = tmp_path / "obs.npz"
    np.savez(path, actions=np.ones(shape))
    message = _one_line(path, Cournot(n_firms=3), "actions have shape")
    assert (
        f"actions have shape {list(shape)}, expected [K, B, n, d], [B, n, d] or [n, d]" in message
    )
    assert "n = 3, d = 1" in message


def test_npz_non_numeric_actions(tmp_path):
    path = tmp_path / "obs.npz"
    np.savez(path, actions=np.array([["a"], ["b"], ["c"]]))
    _one_line(path, Cournot(n_firms=3), "actions must be numeric")


def test_npz_actions_with_fewer_leading_dims_load_as_before(tmp_path):
    game = Cournot(n_firms=3)
    q = game.equilibrium(game.true_params).numpy()  # [3, 1]
    for actions in (q, np.stack([q, q])):
        np.savez(tmp_path / "obs.npz", actions=actions)
        loaded = load_observed(tmp_path / "obs.npz", game)
        assert loaded.actions.shape == (1, actions.size // 3, 3, 1)
        assert torch.equal(loaded.actions.reshape(actions.shape), torch.as_tensor(actions))


def test_theta_as_p_or_k_by_p(tmp_path):
    game = Cournot(n_firms=3)
    actions = np.broadcast_to(game.equilibrium(game.true_params).numpy(), (3, 2, 3, 1))
    theta = np.array([10.0, 15.0, 20.0, 100.0, 1.0])
    path = tmp_path / "obs.npz"
    np.savez(path, actions=actions, theta_true=theta, theta_known=theta)
    loaded = load_observed(path, game)
    assert loaded.theta_true.shape == (3, 5) and loaded.theta_known.shape == (3, 5)
    assert torch.equal(loaded.theta_true, torch.as_tensor(theta).expand(3, 5))
    per_instance = theta * np.array([[1.0], [1.1], [1.2]])
    np.savez(path, actions=actions, theta_true=per_instance, theta_known=theta[None])
    loaded = load_observed(path, game)
    assert torch.equal(loaded.theta_true, torch.as_tensor(per_instance))
    assert torch.equal(loaded.theta_known, torch.as_tensor(theta).expand(3, 5))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("theta_true", np.ones(4), r"theta_true has shape \[4\] \(4 values\); expected"),
        ("theta_true", np.full((2, 5), 10.0), r"theta_true has shape \[2, 5\] \(10 values\)"),
        ("theta_true", np.full((3, 5, 1), 10.0), r"theta_true has shape \[3, 5, 1\]"),
        ("theta_known", np.ones(7), r"theta_known has shape \[7\] \(7 values\)"),
        ("theta_true", np.array([10, 10, np.nan, 100, 1.0]), "theta_true contains 1 NaN/inf"),
        ("theta_known", np.array([10, np.inf, 10, 100, 1.0]), "theta_known contains 1 NaN/inf"),
        (
            "theta_true",
            np.array([150, 10, -1, 100, 1.0]),
            r"outside the parameter bounds: c_0=150 not in \[0, 100\], c_2=-1 not in",
        ),
        (
            "theta_true",
            np.array([[10, 10, 10, 100, 1.0], [10, 10, 10, 100, 0.0], [10, 10, 10, 100, 1.0]]),
            r"b=0 \(instance 1\) not in \[0.01, 100\]",
        ),
        ("theta_known", np.array([10, 10, 10, 100, 0.0]), r"theta_known lies outside .* b=0"),
    ],
)
def test_bad_theta_in_npz(tmp_path, name, value, message):
    path = tmp_path / "obs.npz"
    np.savez(path, actions=np.ones((3, 2, 3, 1)), **{name: value})
    text = _one_line(path, Cournot(n_firms=3), message)
    if "shape" in message:
        assert (
            "expected [p] or [K, p] = [5] or [3, 5] for Cournot (params c_0, c_1, c_2, a, b)"
            in text
        )


def test_theta_known_may_leave_learned_entries_outside_the_bounds(tmp_path):
    # only the entries that are not learned are used; the learned ones are placeholders
    path = tmp_path / "obs.npz"
    np.savez(path, actions=np.ones((1, 3, 1)), theta_known=np.array([-1.0, -1, -1, 100, 1]))
    loaded = load_observed(path, Cournot(n_firms=3))
    assert loaded.theta_known[0, :3].tolist() == [-1.0, -1.0, -1.0]


def test_npz_context_must_share_the_actions_leading_shape(tmp_path):
    game = Cournot(n_firms=2, demand_shifters=[1.0, 2.0])
    path = tmp_path / "obs.npz"
    np.savez(path, actions=np.ones((3, 2, 2, 1)), context=np.ones((2, 2, 1)))
    message = _one_line(path, game, "context has shape")
    assert "context has shape [2, 2, 1] but actions have shape [3, 2, 2, 1]" in message
    assert "expected [3, 2, 1]" in message
    np.savez(path, actions=np.ones((3, 2, 2, 1)), context=np.ones((3, 2, 2)))
    _one_line(path, game, r"context has shape \[3, 2, 2\] .* expected \[3, 2, 1\]")
    np.savez(path, actions=np.ones((2, 2, 1)), context=np.full((2, 1), 2.0))  # [B, n, d], [B, c]
    assert load_observed(path, game).context.tolist() == [[[2.0], [2.0]]]
    np.savez(path, actions=np.ones((1, 3, 1)), context=np.ones((1, 1)))
    _one_line(path, Cournot(n_firms=3), "has a 'context' array but Cournot takes no context")
