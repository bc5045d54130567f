"""The entry point runs Markov games end to end (tiny budgets)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from envs.fish_war import FishWar
from imitgame.config import AlgoConfig, MarkovConfig, SimulacralConfig, typed
from imitgame.data.trajectories import save_trajectories
from imitgame.problems import problem_spec
from imitgame.run.runner import build_game
from imitgame.solver.rollout import sample_trajectories
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "algo=sgda",
    "algo.iterations=10",
    "algo.environments=16",
    "algo.eval_every=5",
    "algo.eval_steps=2",
    "algo.best_response_steps=5",
    "algo.eval_environments=32",
    "algo.bound_environments=256",
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


def _algo(*overrides: str):
    """The typed ``algo`` a run of ``python train.py *overrides`` uses."""
    cfg = compose_config(*overrides)
    spec = problem_spec(cfg.algo.get("problem"), build_game(cfg.env))
    return typed(spec.config, cfg.algo, "algo")


def test_a_new_markov_game_gets_the_markov_problems_defaults() -> None:
    """A game without a configs/tuning file runs stochastic GDA by default, not one-shot GDA."""
    assert not (ROOT / "configs" / "tuning" / "lq_stock.yaml").exists()
    algo = _algo("env=lq_stock")
    assert algo == MarkovConfig() == _algo("env=lq_stock", "algo=sgda")
    assert (algo.iterations, algo.lr_theta, algo.averaging) == (300, 0.004, "uniform")
    # every option is still overridden the usual way, and an explicit choice wins
    algo = _algo("env=lq_stock", "algo.iterations=7", "algo.bc_hidden=[8]", "algo.lr_theta=0")
    assert (algo.iterations, algo.bc_hidden, algo.lr_theta) == (7, [8], 0.0)
    assert _algo("env=lq_stock", "algo=gda").lr_theta == 0.5
    for env in ("fish_war", "dynamic_cournot", "entry_game"):  # the shipped ones: the same
        assert _algo(f"env={env}") == MarkovConfig()


def test_the_default_algo_lists_every_option() -> None:
    """configs/algo/auto.yaml sets nothing (???) but names every option, so that
    algo.KEY=VALUE overrides work for every problem kind."""
    auto = OmegaConf.load(ROOT / "configs" / "algo" / "auto.yaml")
    from imitgame.problems import PROBLEMS

    schemas = {AlgoConfig, MarkovConfig, SimulacralConfig} | {s.config for s in PROBLEMS.values()}
    options = {f for schema in schemas for f in schema.__dataclass_fields__}
    assert set(auto) == options
    assert all(OmegaConf.is_missing(auto, key) for key in options - {"problem"})


def test_a_one_shot_game_gets_the_one_shot_defaults() -> None:
    assert _algo("env=cournot") == _algo("env=cournot", "algo=gda")


@pytest.mark.slow
def test_fish_war_recovers_the_same_theta_as_before(tmp_path) -> None:
    """The shipped default run: θ̂ as before the Markov defaults moved into MarkovConfig."""
    proc = subprocess.run(
        [sys.executable, "train.py", "env=fish_war", "progress=false", "threads=1"]
        + [f"hydra.run.dir={tmp_path}/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["theta_hat"][0] == pytest.approx(0.5999945729792211, abs=1e-9)
    assert results["exploitability_upper_95"] <= results["exploitability_tolerance"]
    assert results["converged_instances"] == 1


@pytest.mark.slow
def test_readme_lq_stock_walkthrough(tmp_path) -> None:
    """README "A new Markov game": export 512 equilibrium episodes, fit them with the defaults."""
    data = tmp_path / "lq.npz"
    export = subprocess.run(
        [sys.executable, "scripts/export_observed.py", "--out", str(data)]
        + ["--episodes", "512", "env=lq_stock"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, "train.py", "env=lq_stock", "data=file", f"data.path={data}"]
        + ["progress=false", "threads=1", f"hydra.run.dir={tmp_path}/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["relative_error"] < 0.03
    assert results["behavior_cloning_holdout_loss"] <= 1e-6
    assert results["behavior_cloning_steps"] < 20000
    # the closed-form best response answers linear profiles only, not the cloned network
    assert results["exploitability_source"] == "trained_best_response"
    assert results["exploitability_upper_95"] <= results["exploitability_tolerance"]
    assert results["converged_instances"] == 1
