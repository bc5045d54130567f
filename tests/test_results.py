"""Results a user can trust: per-instance convergence, loud failure, the typed Results, and the
README's commands converging with their defaults."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
import torch

from envs.cournot import Cournot
from imitgame import AlgoConfig, Results, load_run, simulate_observed, solve_inverse
from imitgame.errors import NotConverged
from imitgame.run import runner
from tests.conftest import ROOT, compose_config

FAST = ["progress=false", "threads=1"]


def run(tmp_path: Path, *overrides: str) -> dict:
    return runner.run(compose_config(*overrides, *FAST), tmp_path / "run", env_name="cournot")


def readme_commands() -> list[list[str]]:
    """Every single-run ``python train.py env=…`` line of the README (sweeps, resume and file
    data aside: those need files or launchers)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    inline = re.findall(r"`(python train.py\s+env=[^`]*)`", text)
    for line in [*text.splitlines(), *inline]:
        line = " ".join(line.split("#")[0].split("&&")[-1].split())
        if not line.startswith("python train.py env=") or "my_" in line:
            continue
        if any(k in line for k in ("--multirun", "resume=", "data=file")):
            continue
        args = shlex.split(line)[2:]
        if args not in commands:
            commands.append(args)
    return commands


STATIC = {"cournot", "bertrand", "bertrand_differentiated", "fisher"}


def test_the_readme_shows_commands():
    envs = {args[0].split("=")[1] for args in readme_commands()}
    assert {"cournot", "fish_war", "electricity"} <= envs


@pytest.mark.parametrize(
    "args",
    [a for a in readme_commands() if a[0].split("=")[1] in STATIC],
    ids=lambda a: " ".join(a),
)
def test_readme_one_shot_commands_converge_with_their_defaults(args, tmp_path):
    results = runner.run(compose_config(*args, *FAST), tmp_path / "run", env_name="x")
    assert results["converged_instances"] == results["instances"], results["per_instance"][:3]
    noisy = any(a.startswith("data.noise_std=") for a in args)
    if results["identified"] and not noisy:
        assert results["max_relative_error"] < 1e-4
    for name, (low, high) in (results["intervals"] or {}).items():  # bootstrap: cover the truth
        true = results["theta_true"][results["param_names"].index(name)]
        assert low <= true <= high, (name, low, high, true)


#: README commands whose miss the README states (strict: the test fails once they start passing)
KNOWN_MISSES = {
    "env=mpe_simple_spread": "issue 11: the black-box mpe2 inversion reaches weights cosine 0.97 "
    "(seed 0; 0.98 on seed 1) with its defaults (target 0.95) but does not converge: the cloned "
    "expert's exploitability under θ̂ has a 95 % upper bound (1.27) above its tolerance (1.04) "
    "(README, 'Simulators we did not write')",
}


def known_miss(args: list[str]) -> object:
    reason = KNOWN_MISSES.get(" ".join(args))
    if reason is None:
        return args
    return pytest.param(args, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    # the README names these two beside env=fish_war ("also dynamic_cournot, entry_game")
    [known_miss(a) for a in readme_commands() if a[0].split("=")[1] not in STATIC]
    + [["env=dynamic_cournot"], ["env=entry_game"]],
    ids=lambda a: " ".join(a),
)
def test_readme_markov_and_simulacral_commands_run_with_their_defaults(args, tmp_path):
    results = runner.run(compose_config(*args, *FAST), tmp_path / "run", env_name="x")
    assert results["converged_instances"] in (None, results["instances"])
    if results.get("weights_cosine_similarity") is not None:
        # reward weights of a simulator we did not write (algo.problem=expert): identified up to
        # scale, scored after normalising (issue 11's targets: VMAS 0.99, black-box mpe2 0.95)
        floor = 0.95 if args[0] == "env=mpe_simple_spread" else 0.99
        assert results["weights_cosine_similarity"] >= floor
    elif results["theta_true"] is not None:
        assert results["relative_error"] < 0.05


def test_the_markets_example_recovers_costs_and_demand(tmp_path):
    """The README example that used to end 2,000 iterations with a relative error of 1.57."""
    results = run(
        tmp_path, "env=cournot", "env.learn=[costs,intercept]", "env.demand_shifters=[0.8,1,1.4]"
    )
    assert results["relative_error"] < 1e-5 and results["converged_instances"] == 1


def test_a_run_that_does_not_converge_says_so(tmp_path, capsys):
    results = run(
        tmp_path,
        "env=cournot",
        "algo.iterations=5",
        "algo.optimizer=adam",
        "algo.destabilizer=learned",
        "data.instances=3",
        "data.param_spread=0.2",
    )
    out = capsys.readouterr().out
    assert results["converged_instances"] == 0
    assert "converged       0 of 3 instance(s)" in out and "WARNING: 3 of 3" in out
    assert "(instance 0)" in out  # several instances: the table says which one it shows
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [row["converged"] for row in saved["per_instance"]] == [False, False, False]
    assert len({row["c_0"] for row in saved["per_instance"]}) == 3


def test_strict_raises_when_an_instance_did_not_converge(tmp_path):
    with pytest.raises(NotConverged, match="1 of 1 instance"):
        run(tmp_path, "env=cournot", "algo.iterations=3", "algo.optimizer=adam", "strict=true")
    assert (tmp_path / "run" / "results.json").is_file()  # results are written all the same


def test_unidentified_and_unconverged_is_not_called_an_inverse_equilibrium(tmp_path, capsys):
    run(
        tmp_path,
        "env=cournot",
        "env.learn=[costs,intercept]",
        "algo.iterations=3",
        "algo.optimizer=adam",
    )
    out = capsys.readouterr().out
    assert "not identified" in out and "is not an inverse equilibrium either" in out


def test_wall_seconds_cover_the_whole_run(tmp_path):
    cfg = compose_config("env=cournot", *FAST)
    started = time.perf_counter()
    results = runner.run(cfg, tmp_path / "run")
    assert results["wall_seconds"] >= 0.9 * (time.perf_counter() - started)


@pytest.mark.usefixtures("float64")
def test_results_round_trip_and_frame(tmp_path):
    game = Cournot()
    theta = game.true_params.expand(60, -1) * (1 + 0.1 * torch.rand(60, game.param_dim))
    result = solve_inverse(
        game,
        simulate_observed(game, theta),
        AlgoConfig(destabilizer="auto", optimizer="auto", tol_exploitability=1e-10),
    )
    assert isinstance(result, Results) and result.param_names[:3] == ["c_0", "c_1", "c_2"]
    result.save(tmp_path)
    assert (tmp_path / "instances.csv").is_file()  # K = 60 > 50: per-instance rows beside
    back = load_run(tmp_path)
    assert torch.equal(back.theta_hat, result.theta_hat)
    assert torch.allclose(back.exploitability, result.exploitability)
    assert back.converged_instances == result.converged_instances
    frame = back.to_frame()
    assert list(frame.columns[:3]) == ["estimate", "true", "relative_error"]
    assert len(frame) == 60 * 3
    assert re.search(r"converged\s+\d+ of 60", back.summary())


def test_load_run_keeps_per_instance_identification(tmp_path):
    result = Results(
        problem="inverse",
        param_names=["a", "b"],
        learned_params=["a"],
        theta_hat=torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64),
        theta_true=None,
        exploitability=torch.tensor([0.0, 1.0], dtype=torch.float64),
        exploitability_exact=True,
        converged=torch.tensor([True, False]),
        identified=torch.tensor([True, False]),
        tol_exploitability=1e-10,
    )
    back = load_run(result.save(tmp_path))
    assert back.identified.tolist() == [True, False]
    assert back.converged.tolist() == [True, False]


def test_a_step_criterion_alone_still_tests_convergence(tmp_path):
    results = run(
        tmp_path,
        "env=cournot",
        "algo.tol_exploitability=null",
        "algo.optimizer=adam",
        "algo.iterations=20",
    )
    assert results["converged_instances"] == 0  # tested (tol_step), and not met: not "None"
