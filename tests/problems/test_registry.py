"""The problem registry: the shipped kinds, the default by game kind, and a fourth kind added by
a module and one registry entry alone — the runner is not touched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from envs.cournot import Cournot
from envs.fish_war import FishWar
from imitgame.config import AlgoConfig, DataConfig
from imitgame.errors import ImitgameError
from imitgame.game.base import StaticGame
from imitgame.game.strategies import ActionProfile
from imitgame.problems import PROBLEMS, ProblemDefaults, ProblemSpec, problem_spec, register_problem
from imitgame.problems.base import make_results, synthetic_theta
from imitgame.problems.inverse import static_trainer
from imitgame.results import Results
from imitgame.run import runner
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA
from tests.conftest import compose_config


def test_the_three_shipped_kinds_are_registered():
    assert {"inverse", "markov_inverse", "simulacral"} <= set(PROBLEMS)
    for name, spec in PROBLEMS.items():
        assert spec.name == name and issubclass(spec.config, AlgoConfig)


def test_default_problem_follows_the_game_kind(float64):
    assert problem_spec(None, Cournot()).name == "inverse"
    assert problem_spec(None, FishWar()).name == "markov_inverse"


def test_unknown_or_mismatched_problem_is_one_line(float64):
    with pytest.raises(ImitgameError, match="algo.problem='nope' is not one of"):
        problem_spec("nope", Cournot())
    with pytest.raises(ImitgameError, match="needs a StaticGame"):
        problem_spec("simulacral", FishWar())


# --- a fourth problem kind: forward solving (θ known, the stabilizer owns the profile) ----------
@dataclass
class ForwardProblem(ProblemDefaults):
    game: StaticGame
    trainer: GDA
    evaluate: Any
    learn_index: torch.Tensor
    theta_true: torch.Tensor | None = None

    def results(self) -> Results:
        answer = self.trainer.answer
        return make_results(
            self,
            "forward_test",
            theta_hat=answer.theta().detach(),
            exploitability=self.evaluate(answer),
            exploitability_exact=self.game.has_best_response,
            stopped=~self.trainer.active,
            extras={"equilibrium": answer.profile().actions.detach().flatten().tolist()},
        )


def build_forward(game: StaticGame, algo: AlgoConfig, data: DataConfig, seed: int):
    theta = synthetic_theta(game, data, torch.Generator().manual_seed(seed))
    k = theta.shape[0]
    start = game.action_low.expand(k, 1, game.n_agents, game.action_dim) + 1.0
    profile = ActionProfile(start, game.action_low, game.action_high)
    nothing = torch.zeros(game.param_dim, dtype=torch.bool)
    stabilizer = Stabilizer(theta, nothing, game.param_low, game.param_high, profile)
    _, evaluate, trainer = static_trainer(game, stabilizer, algo, deviation_init=start, state0=None)
    return ForwardProblem(game, trainer, evaluate, nothing.nonzero().flatten(), theta)


@pytest.fixture
def forward_kind():
    spec = ProblemSpec("forward_test", AlgoConfig, build_forward, StaticGame, "forward solving")
    register_problem(spec)
    yield spec
    del PROBLEMS["forward_test"]


def test_a_new_problem_kind_runs_through_the_unchanged_runner(forward_kind, tmp_path, float64):
    cfg = compose_config(
        "env=cournot",
        "algo.problem=forward_test",
        "algo.destabilizer=best_response",
        "algo.lr_profile=0.5",
        "progress=false",
    )
    results = runner.run(cfg, tmp_path / "run", env_name="cournot")
    game = Cournot().double()
    exact = game.equilibrium(game.true_params[None]).flatten()
    assert torch.allclose(torch.tensor(results["equilibrium"]), exact, atol=1e-5)
    assert results["exploitability"] < 1e-8
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["equilibrium"] == results["equilibrium"]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_problem_module_is_imported_by_name(float64):
    spec = problem_spec("imitgame.problems.simulacral:simulacral", Cournot())
    assert spec.name == "simulacral"
    with pytest.raises(ImitgameError, match="cannot import 'no_such_module'"):
        problem_spec("no_such_module:x", Cournot())
