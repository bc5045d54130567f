"""The entry point as a user runs it (subprocesses), and its run logic in-process (faster)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from imitgame.errors import DivergenceError, ImitgameError
from imitgame.run import runner as app
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
FAST = ["progress=false", "algo.eval_every=50"]


def train(*args: str, cwd: Path = ROOT, wait: bool = True):
    command = [sys.executable, str(ROOT / "train.py"), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def run_in_process(run_dir: Path, *overrides: str) -> dict:
    return app.run(compose_config(*overrides), run_dir)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("default") / "run"
    proc = train("env=cournot", f"hydra.run.dir={run_dir}", "progress=false")
    return proc, run_dir


def test_default_cournot_run_writes_everything(default_run):
    proc, run_dir = default_run
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    for key in ("theta_hat", "theta_true", "exploitability", "relative_error", "wall_seconds"):
        assert key in results
    assert results["relative_error"] <= 1e-3
    assert results["exploitability"] < 1e-6
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoint.pt").is_file()
    assert (run_dir / "convergence.png").stat().st_size > 10_000
    assert "relative error" in proc.stdout and "exploitability" in proc.stdout


def test_tensorboard_has_the_documented_scalars(default_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run_dir = default_run
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    expected = {
        "metrics/exploitability",
        "metrics/regret",
        "metrics/relative_error",
        "params/c_0",
        "params/c_2",
        "lr/theta",
        "loss/objective",
    }
    assert expected <= set(acc.Tags()["scalars"])
    assert acc.Tags()["tensors"]  # the config as text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env=nosuchgame"], "Could not find 'env/nosuchgame'"),
        (["env=cournot", "env.nonsense=1"], "env.nonsense"),
        (["env=cournot", "algo.lr_theta=fast"], "algo.lr_theta"),
        (["env=cournot", "data=file", "data.path=/no/such/file.npz"], "not found"),
    ],
)
def test_bad_input_is_one_line_from_the_command_line(args, message):
    proc = train(*args, "progress=false")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env.n_firms=three"], "bad value for env.n_firms"),
        (["env.cost_bounds=[5,1]"], "empty or inverted"),
        (["env.costs=[500,1,1]"], "outside the parameter bounds"),
        (["algo.method=newton"], "algo.method"),
        (["algo.iterations=0"], "algo.iterations"),
        (["device=tpu"], "device"),
        (["dtype=float16"], "dtype"),
        (["threads=0"], "threads"),
        (["algo.theta_init=[1,2]"], "theta_init"),
        (["algo.theta_init=game"], "theta_init='game': a list of values or null here"),
        (["data.instances=0"], "data.instances"),
        (["env._target_=builtins.dict"], "not an imitgame"),
        (["env._target_=no.such.Game"], "cannot be imported"),
    ],
)
def test_bad_input_raises_one_line_error(tmp_path, args, message):
    with pytest.raises(ImitgameError, match=message) as info:
        run_in_process(tmp_path / "run", "env=cournot", *args, *FAST)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("firm_0,firm_1,firm_2\n1,2,nan\n", "NaN"), ("firm_0,firm_1\n1,2\n", "missing action")],
)
def test_bad_data_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ImitgameError, match=message):
        run_in_process(tmp_path / "run", "env=cournot", "data=file", f"data.path={path}", *FAST)


def test_file_data_run(tmp_path):
    from envs.cournot import Cournot

    game = Cournot(n_firms=2).double()
    actions = game.equilibrium(game.true_params)[None, None].numpy()
    np.savez(tmp_path / "obs.npz", actions=actions)
    results = run_in_process(
        tmp_path / "run",
        "env=cournot",
        "env.n_firms=2",
        "data=file",
        f"data.path={tmp_path / 'obs.npz'}",
        *FAST,
    )
    assert results["theta_true"] is None and results["relative_error"] is None
    assert np.allclose(results["theta_hat"][:2], [10.0, 20.0], rtol=1e-4)


def test_nan_stops_the_run_and_keeps_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError, match="non-finite") as info:
        run_in_process(
            run_dir,
            "env=cournot",
            "env._target_=tests.support.ExplodingCournot",
            "env.costs=[40,42,44]",
            *FAST,
        )
    assert str(run_dir / "checkpoint.pt") in str(info.value)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert torch.isfinite(state["trainer"]["stabilizer"]["theta_learned"]).all()


LONG = [
    "env=cournot",
    "algo.iterations=1200",
    "algo.tol_exploitability=null",
    "algo.tol_step=null",
    "algo.checkpoint_every=100",
    *FAST,
]


def interrupt_and_resume(args: list[str], tmp_path: Path, how: int = signal.SIGINT) -> dict:
    """Start a run, stop it with ``how`` once its first checkpoint exists, resume it; returns
    the resumed run's results (and checks the exit codes on the way)."""
    run_dir = tmp_path / "interrupted"
    proc = train(*args, f"hydra.run.dir={run_dir}", wait=False)
    deadline = time.time() + 120
    while not (run_dir / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL), stderr
    assert not (run_dir / "results.json").exists()
    resumed = train(f"resume={run_dir}", "progress=false", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize(
    "how",
    # the hard kill is the slower case (it redoes the iterations after the last checkpoint)
    [signal.SIGINT, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)],
)
def test_resume_after_interruption_matches_uninterrupted(tmp_path, how):
    reference = run_in_process(tmp_path / "reference", *LONG)
    got = interrupt_and_resume(LONG, tmp_path, how)
    assert got["theta_hat"] == reference["theta_hat"]
    assert got["iterations"] == reference["iterations"] == 1200


@pytest.mark.slow  # 64 s; the static and simulacral resume tests stay in the fast suite
def test_markov_resume_matches_uninterrupted(tmp_path):
    """Stochastic GDA: the rollout generator is checkpointed too, so the shocks after resuming
    are the ones the uninterrupted run drew."""
    args = ["env=fish_war", "algo.iterations=120", "algo.checkpoint_every=20", "progress=false"]
    reference = run_in_process(tmp_path / "reference", *args)
    got = interrupt_and_resume(args, tmp_path)
    assert got["theta_hat"] == reference["theta_hat"]


def test_simulacral_resume_matches_uninterrupted(tmp_path):
    """Simulacral learning goes through the same run flow: interrupted and resumed, θ̂ and the
    dual-ascent multiplier λ (checkpointed) come out as in one uninterrupted run."""
    args = [
        "env=electricity",
        "algo=simulacral",
        "env.data_path=null",
        "env.per_hour_slopes=false",
        "env.synthetic_hours=100",
        "algo.iterations=400",
        "algo.eval_every=20",
        "algo.checkpoint_every=20",
        "algo.lambda_update=dual",
        "progress=false",
    ]
    reference = run_in_process(tmp_path / "reference", *args)
    assert reference["regret_weight"] > 0.01  # λ moved under dual ascent
    got = interrupt_and_resume(args, tmp_path)
    assert got["theta_hat"] == reference["theta_hat"]
    assert got["regret_weight"] == reference["regret_weight"]
    for name in ("model.pt", "convergence.png"):
        assert (tmp_path / "interrupted" / name).is_file()


def test_resume_follows_the_saved_run_not_the_command_line(tmp_path):
    """An inverse run of a game whose tuning file selects simulacral learning resumes as what it
    was: the route is read from the run's saved config, not from a fresh composition."""
    args = ["env=electricity", "~tuning@algo", "env.data_path=null", "env.per_hour_slopes=false"]
    args += ["env.synthetic_hours=50", "algo.iterations=20", "algo.eval_every=10", "progress=false"]
    first = run_in_process(tmp_path, *args)
    assert first.get("problem") != "simulacral"
    resumed = run_in_process(tmp_path / "ignored", "env=electricity", f"resume={tmp_path}")
    assert resumed.get("problem") != "simulacral"
    assert resumed["theta_hat"] == first["theta_hat"]


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(ImitgameError, match="no checkpoint.pt"):
        run_in_process(tmp_path, "env=cournot", f"resume={tmp_path}")


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_multirun_sweeps_do_not_collide(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    proc = train(
        "--multirun",
        "env=cournot",
        "env.n_firms=2,3",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep}",
        "algo.iterations=100",
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr
    results = sorted(sweep.glob("*/results.json"))
    assert len(results) == 2
    firms = sorted(len(json.loads(p.read_text())["learned_params"]) for p in results)
    assert firms == [2, 3]


def test_resume_refuses_options_it_would_ignore(tmp_path):
    proc = train(f"resume={tmp_path}", "algo.iterations=5")
    assert proc.returncode == 2
    assert "would be ignored: algo.iterations=5" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
