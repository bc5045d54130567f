"""Trajectory datasets: loading with one-line errors, and behaviour cloning."""

import numpy as np
import pytest
import torch

from envs.entry_game import EntryGame
from envs.fish_war import FishWar
from imitgame.data.trajectories import fit_behavior_policy, load_trajectories, save_trajectories
from imitgame.errors import ImitgameError
from imitgame.solver.rollout import sample_trajectories


def _fish_dataset(tmp_path, episodes: int = 32):
    game = FishWar().double()
    theta = game.true_params[None]
    traj = sample_trajectories(
        game,
        theta,
        game.equilibrium_policy(theta),
        (1, episodes),
        generator=torch.Generator().manual_seed(0),
    )
    path = tmp_path / "fish.npz"
    save_trajectories(path, traj, game.true_params)
    return game, path


def test_behavior_cloning_recovers_the_fish_war_policy(tmp_path) -> None:
    game, path = _fish_dataset(tmp_path)
    data = load_trajectories(path, game)
    assert data.observations.shape == (game.horizon * 32, 2, 2)
    assert torch.allclose(data.theta_true, game.true_params)
    policy, loss = fit_behavior_policy(game, data, 1, hidden=[16], steps=400, lr=0.02)
    k = game.mpe_fraction(game.true_params)
    error = (policy.act(data.observations[None], 0).actions - k).abs()
    assert error.mean() < 0.005 * k
    assert error.max() < 0.05 * k
    assert loss < 1e-4


def test_behavior_cloning_of_a_discrete_policy(tmp_path) -> None:
    torch.manual_seed(0)
    game = EntryGame(horizon=2).double()
    theta = game.true_params[None]
    eq = game.equilibrium_policy(theta)
    traj = sample_trajectories(game, theta, eq, (1, 4000), generator=torch.Generator())
    path = tmp_path / "entry.npz"
    save_trajectories(path, traj)
    data = load_trajectories(path, game)
    policy, _ = fit_behavior_policy(game, data, 1, hidden=[16], steps=300, lr=0.02)
    obs = traj.observations[:, 0, :50]
    fitted = policy.logits(obs[:, None]).exp()
    truth = eq.logits(obs[:, None]).exp()
    error = (fitted - truth).abs()  # frequency noise of ~4000 draws per state, rarer in some
    assert error.mean() < 0.02
    assert error.max() < 0.1


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"actions": np.zeros((4, 2, 1))}, "no ['observations']"),
        ({"observations": np.zeros((4, 3, 2)), "actions": np.zeros((4, 3, 1))}, "observations"),
        ({"observations": np.zeros((4, 2, 2)), "actions": np.zeros((5, 2, 1))}, "actions have"),
        ({"observations": np.full((4, 2, 2), np.nan), "actions": np.full((4, 2, 1), 0.2)}, "NaN"),
        ({"observations": np.zeros((4, 2, 2)), "actions": np.full((4, 2, 1), 0.9)}, "outside"),
    ],
)
def test_malformed_files_raise_one_line_errors(tmp_path, arrays, message) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ImitgameError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        load_trajectories(path, FishWar())
    assert "\n" not in str(err.value)


def test_missing_and_corrupt_files(tmp_path) -> None:
    with pytest.raises(ImitgameError, match="not found"):
        load_trajectories(tmp_path / "nope.npz", FishWar())
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ImitgameError, match="cannot read"):
        load_trajectories(bad, FishWar())
