"""scripts/export_observed.py writes files that data=file loads: one-shot play and Markov
trajectories (a fish-war export used to crash with "no attribute 'observed_contexts'")."""

import subprocess
import sys

import numpy as np
import torch

from envs.fish_war import FishWar
from imitgame.data.trajectories import load_trajectories
from tests.conftest import ROOT


def export(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "export_observed.py"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_markov_game_exports_trajectories_that_load(tmp_path):
    out = tmp_path / "traj.npz"
    proc = export("--out", str(out), "--episodes", "16", "env=fish_war")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(out) as arrays:
        assert arrays["observations"].shape[:3] == (10, 1, 16)  # [T, K, episodes, ...]
    game = FishWar().double()
    data = load_trajectories(out, game)
    assert data.observations.shape[1:] == (game.n_agents, game.obs_dim)
    assert torch.allclose(data.theta_true.reshape(-1), game.true_params)


def test_a_markov_export_to_csv_is_one_line(tmp_path):
    proc = export("--out", str(tmp_path / "traj.csv"), "env=fish_war")
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0
    assert "npz" in proc.stderr


def test_a_one_shot_export_loads(tmp_path):
    out = tmp_path / "obs.csv"
    proc = export("--out", str(out), "env=cournot", "env.n_firms=4", "data.instances=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_text().splitlines()[0] == "instance,firm_0,firm_1,firm_2,firm_3"
