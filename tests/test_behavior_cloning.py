"""Trajectory datasets: loading with one-line errors, and behaviour cloning."""

import numpy as np
import pytest
import torch

from envs.entry_game import EntryGame
from envs.fish_war import FishWar
from envs.lq_stock import LQStock
from imitgame.config import MarkovConfig
from imitgame.data.trajectories import (
    TrajectoryData,
    fit_behavior_policy,
    load_trajectories,
    save_trajectories,
)
from imitgame.errors import ImitgameError
from imitgame.problems.markov import build_markov_inverse
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
    policy, fit = fit_behavior_policy(game, data, 1, hidden=[16], max_steps=400, lr=0.02)
    k = game.mpe_fraction(game.true_params)
    error = (policy.act(data.observations[None], 0).actions - k).abs()
    assert error.mean() < 0.005 * k
    assert error.max() < 0.05 * k
    assert fit.train_loss < 1e-4 and fit.holdout_loss < 1e-4


def test_behavior_cloning_of_a_discrete_policy(tmp_path) -> None:
    torch.manual_seed(0)
    game = EntryGame(horizon=2).double()
    theta = game.true_params[None]
    eq = game.equilibrium_policy(theta)
    traj = sample_trajectories(game, theta, eq, (1, 4000), generator=torch.Generator())
    path = tmp_path / "entry.npz"
    save_trajectories(path, traj)
    data = load_trajectories(path, game)
    policy, _ = fit_behavior_policy(game, data, 1, hidden=[16], max_steps=300, lr=0.02)
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


def _one_line(path, message, n_instances=None) -> str:
    with pytest.raises(ImitgameError, match=message) as err:
        load_trajectories(path, FishWar(), n_instances)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_round_trip_with_one_theta_per_instance(tmp_path) -> None:
    game = FishWar(horizon=3).double()
    theta = torch.tensor([[0.6, 0.95], [0.5, 0.9]], dtype=torch.float64)  # [K, p]
    traj = sample_trajectories(
        game, theta, game.equilibrium_policy(theta), (2, 4), generator=torch.Generator()
    )
    path = tmp_path / "fish.npz"
    save_trajectories(path, traj, theta)
    data = load_trajectories(path, game, n_instances=2)
    assert torch.equal(data.theta_true, theta)
    assert torch.equal(data.observations, traj.observations.reshape(-1, 2, 2))
    assert torch.equal(data.actions, traj.actions.reshape(-1, 2, 1))
    with pytest.raises(ImitgameError, match=r"expected \[p\] or \[K, p\] = \[2\] or \[3, 2\]"):
        load_trajectories(path, game, n_instances=3)


@pytest.mark.parametrize("theta", [[0.6, 0.95], [[0.6, 0.95]], [[0.6, 0.95], [0.5, 0.9]]])
def test_theta_as_p_or_k_by_p(tmp_path, theta) -> None:
    path = tmp_path / "fish.npz"
    np.savez(
        path, observations=np.zeros((4, 2, 2)), actions=np.full((4, 2, 1), 0.2), theta_true=theta
    )
    data = load_trajectories(path, FishWar())
    assert torch.equal(data.theta_true, torch.tensor(theta, dtype=torch.float64))


@pytest.mark.parametrize(
    ("theta", "message"),
    [
        (np.ones(3), r"theta_true has shape \[3\] \(3 values\); expected \[p\] or \[K, p\]"),
        (np.full((2, 3), 0.6), r"theta_true has shape \[2, 3\] \(6 values\)"),
        (np.full((2, 2, 1), 0.6), r"theta_true has shape \[2, 2, 1\]"),
        (np.array([0.6, np.nan]), "theta_true contains 1 NaN/inf value"),
        (np.array([0.6, 1.5]), r"outside the parameter bounds: beta=1.5 not in \[0.5, 0.99\]"),
    ],
)
def test_bad_theta_raises_one_line_errors(tmp_path, theta, message) -> None:
    path = tmp_path / "bad.npz"
    np.savez(
        path, observations=np.zeros((4, 2, 2)), actions=np.full((4, 2, 1), 0.2), theta_true=theta
    )
    text = _one_line(path, message)
    if "shape" in message:
        assert "= [2] or [K, 2] for FishWar (params alpha, beta)" in text


def test_shape_errors_name_expected_and_received_shapes(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, observations=np.zeros((4, 3, 2)), actions=np.zeros((4, 3, 1)))
    text = _one_line(path, "observations have shape")
    assert "observations have shape [4, 3, 2], expected [..., 2, 2] ([..., n, obs_dim]" in text
    np.savez(path, observations=np.zeros((5, 4, 2, 2)), actions=np.zeros((5, 3, 2, 1)))
    text = _one_line(path, "actions have shape")
    assert "actions have shape [5, 3, 2, 1], expected [5, 4, 2, 1]" in text
    assert "observations' leading shape [5, 4]" in text


def test_files_without_observations(tmp_path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _one_line(path, "^empty.npz is empty .holds no observations.$")
    for steps in [(0,), (0, 5), (3, 0)]:
        np.savez(path, observations=np.zeros((*steps, 2, 2)), actions=np.zeros((*steps, 2, 1)))
        _one_line(path, "^empty.npz holds no observations")


def test_save_rejects_what_load_cannot_read(tmp_path) -> None:
    game = FishWar(horizon=2).double()
    theta = game.true_params[None]
    traj = sample_trajectories(game, theta, game.equilibrium_policy(theta), (1, 2))
    with pytest.raises(ImitgameError, match="written as .npz"):
        save_trajectories(tmp_path / "fish.csv", traj)
    with pytest.raises(ImitgameError, match=r"theta_true has shape \[1, 1, 2\]"):
        save_trajectories(tmp_path / "fish.npz", traj, theta[None])


def _lq_data(episodes: int, seed: int = 0) -> tuple[LQStock, TrajectoryData]:
    """Trajectories of the LQ stock game's time-varying equilibrium, flattened."""
    game = LQStock().double()
    theta = game.true_params[None]
    traj = sample_trajectories(
        game,
        theta,
        game.equilibrium_policy(theta),
        (1, episodes),
        generator=torch.Generator().manual_seed(seed),
    )
    data = TrajectoryData(traj.observations.reshape(-1, 2, 2), traj.actions.reshape(-1, 2, 1))
    return game, data


def test_behavior_cloning_stops_on_its_held_out_error() -> None:
    """The fit holds out 10 % of the observations, reports both errors, and stops by itself:
    at its tolerance, or on a plateau (after two tenfold learning-rate drops) — well before the
    step cap, with the best held-out parameters kept."""
    torch.manual_seed(0)
    game, data = _lq_data(32)
    policy, fit = fit_behavior_policy(
        game, data, 1, hidden=[16, 16], max_steps=20000, check_every=50, tolerance=1e-5
    )
    assert fit.stopped and fit.steps < 20000 and fit.steps % 50 == 0
    assert fit.holdout_loss is not None and fit.holdout_loss <= 1e-5
    width = game.action_high - game.action_low
    pred = policy.act(data.observations[None], 0).actions[0]
    assert float((((pred - data.actions) / width) ** 2).mean()) < 2e-5
    # a plateau ends the fit too: an unreachable tolerance, a network too small to get there
    _, plateau = fit_behavior_policy(
        game, data, 1, hidden=[], max_steps=20000, check_every=20, patience=2, tolerance=0.0
    )
    assert plateau.stopped and plateau.steps < 20000
    assert set(plateau.extras()) == {
        "behavior_cloning_loss",
        "behavior_cloning_holdout_loss",
        "behavior_cloning_steps",
        "behavior_cloning_stopped_early",
    }


def test_behavior_cloning_has_its_own_network_and_reports_its_fit(tmp_path) -> None:
    """algo.hidden sizes the deviations; algo.bc_hidden the cloned observed policy."""
    torch.manual_seed(0)
    game, data = _lq_data(16)
    path = tmp_path / "lq.npz"
    np.savez(path, observations=data.observations.numpy(), actions=data.actions.numpy())
    config = MarkovConfig(iterations=1, environments=8, hidden=[], bc_hidden=[8, 4], bc_steps=200)
    theta = game.true_params[None].clone()
    problem = build_markov_inverse(
        game, config, theta_true=None, theta_known=theta, dataset=str(path)
    )
    cloned = problem.observed.inner.net.weights
    assert [tuple(w.shape[-2:]) for w in cloned] == [(2, 8), (8, 4), (4, 1)]
    fit = problem.bc_fit
    assert fit is not None and fit.steps <= 200 and fit.holdout_loss is not None
    assert problem.bc_loss == fit.train_loss


def test_gaussian_behavior_cloning_recovers_mean_and_std() -> None:
    """algo.bc_policy=gaussian: a Gaussian policy fitted by likelihood reproduces the data's
    action distribution (mean network and std), not only its mode."""
    from imitgame.game.policies import GaussianPolicy

    torch.manual_seed(0)
    game = FishWar().double()
    low, high = game.action_low, game.action_high
    truth = GaussianPolicy(1, 2, 2, 1, low, high, hidden=[]).double()
    with torch.no_grad():
        truth.log_std.copy_(torch.tensor([[[0.2], [0.5]]]).log())
        obs = torch.randn(1, 4000, 2, 2, dtype=torch.float64)
        actions = truth.act(obs, 0).actions
    data = TrajectoryData(obs[0], actions[0])
    policy, fit = fit_behavior_policy(
        game, data, 1, hidden=[], max_steps=3000, lr=0.05, kind="gaussian"
    )
    inner = policy.inner
    assert isinstance(inner, GaussianPolicy)
    assert torch.allclose(inner.log_std.exp(), truth.log_std.exp(), rtol=0.05)
    assert torch.allclose(inner.net(obs[:, :50]), truth.net(obs[:, :50]), atol=0.05)
    assert fit.holdout_loss is not None and fit.holdout_loss < 0  # a density: NLL below 0
    with pytest.raises(ImitgameError, match="deterministic or gaussian"):
        fit_behavior_policy(game, data, 1, hidden=[], max_steps=1, kind="beta")
