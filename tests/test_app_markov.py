"""The entry point runs Markov games end to end (tiny budgets)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.fish_war import FishWar
from imitgame.data.trajectories import save_trajectories
from imitgame.solver.rollout import sample_trajectories

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "algo=sgda",
    "algo.iterations=10",
    "algo.environments=16",
    "algo.eval_every=5",
    "algo.eval_steps=2",
    "algo.best_response_steps=5",
    "algo.eval_environments=32",
    "algo.variance_batches=2",
    "algo.bc_steps=20",
    "progress=false",
    "device=cpu",
]


def _train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *overrides, *TINY, f"hydra.run.dir={tmp_path}/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_fish_war_run_writes_results(tmp_path) -> None:
    proc = _train(tmp_path, "env=fish_war", "env.horizon=4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    for key in ("theta_hat", "theta_true", "exploitability", "relative_error", "wall_seconds"):
        assert key in results
    assert results["exploitability_closed_form"] is not None
    assert results["learned_params"] == ["alpha"]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert (tmp_path / "run" / "convergence.png").is_file()
    assert list((tmp_path / "run" / "tb").iterdir())


@pytest.mark.slow
def test_trajectory_file_and_malformed_file(tmp_path) -> None:
    game = FishWar(horizon=4).double()
    theta = game.true_params[None]
    traj = sample_trajectories(game, theta, game.equilibrium_policy(theta), (1, 8))
    good = tmp_path / "traj.npz"
    save_trajectories(good, traj)
    proc = _train(tmp_path, "env=fish_war", "env.horizon=4", "data=file", f"data.path={good}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["theta_true"] is None and "behavior_cloning_loss" in results
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.zeros((3, 2, 2)))
    proc = _train(tmp_path, "env=fish_war", "data=file", f"data.path={bad}")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert lines and "actions" in lines[0], proc.stderr[-2000:]
