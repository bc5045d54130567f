"""Inverse game solving for one-shot games: find θ under which observed play is a Nash equilibrium.

    min_θ max_ρ ψ(π†, ρ; θ)      (Algorithm 1; the stabilizer owns θ, π† is fixed)

:func:`build_inverse` wires the pieces (stabilizer owning the learned θ entries, the observed
profile π†, a learned or oracle destabilizer, the exploitability evaluator, the GDA trainer);
:func:`solve_inverse` runs it and scores the answer. K instances are one batch. Registered as
``algo.problem=inverse`` (the default for a :class:`StaticGame`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from imitgame.config import AlgoConfig, DataConfig
from imitgame.data.observed import ObservedPlay, load_observed, simulate_observed
from imitgame.game.base import StaticGame
from imitgame.game.strategies import ActionProfile
from imitgame.problems.base import (
    ProblemDefaults,
    ProblemSpec,
    initial_theta,
    learn_mask,
    make_results,
    register_problem,
    relative_error,
    resolve_auto,
    synthetic_theta,
)
from imitgame.problems.bootstrap import with_bootstrap
from imitgame.problems.identifiability import Identifiability, check_identifiability
from imitgame.results import Results
from imitgame.solver.destabilizer import BestResponseOracle, LearnedDeviation
from imitgame.solver.exploitability import make_evaluator
from imitgame.solver.forward import solve_static_equilibrium
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA, EvalRecord


@dataclass
class InverseProblem(ProblemDefaults):
    """A wired inverse problem: run ``trainer``; ``evaluate(stabilizer) -> [K]`` exploitability."""

    game: StaticGame
    observed: ObservedPlay
    trainer: GDA
    evaluate: Callable[[Stabilizer], Tensor]
    learn_index: Tensor
    identifiability: Identifiability

    @property
    def theta_true(self) -> Tensor | None:
        return self.observed.theta_true

    def results(self) -> Results:
        result = score(self)
        return make_results(
            self,
            "inverse",
            theta_hat=result.theta_hat,
            exploitability=result.exploitability,
            exploitability_exact=self.game.has_best_response,
            stopped=result.converged,
            identified=result.identified,
            identifiability_rank=self.identifiability.rank,
        )


@dataclass
class InverseResult:
    """Per instance: ``theta_hat [K, p]``, ``exploitability [K]``, ``relative_error [K]`` (None
    without a true θ), ``identified [K]``, ``converged [K]``; ``iterations`` run."""

    theta_hat: Tensor
    exploitability: Tensor
    relative_error: Tensor | None
    identified: Tensor
    converged: Tensor
    iterations: int


def observed_play(game: StaticGame, data: DataConfig, seed: int) -> ObservedPlay:
    """The observed play a run inverts: loaded from ``data.path``, or the equilibrium under the
    synthetic truth (closed form, or the forward solver) on the game's device."""
    if data.source == "file":
        observed = load_observed(data.path, game)
    else:
        generator = torch.Generator().manual_seed(seed)
        theta = synthetic_theta(game, data, generator)
        observed = simulate_observed(
            game,
            theta,
            noise_std=data.noise_std,
            generator=generator,
            repeats=data.observations,
            solver=lambda g, th, st: solve_static_equilibrium(g, th, st)[0],
        )
    return observed.to(game.device, game.dtype).validate(game)


def static_trainer(
    game: StaticGame,
    stabilizer: Stabilizer,
    algo: AlgoConfig,
    *,
    deviation_init: Tensor,
    state0: Tensor | None,
) -> tuple[MinMaxObjective, Callable[[Stabilizer], Tensor], GDA]:
    """The destabilizer (exact oracle or learned deviations from ``deviation_init [K, B, n, d]``),
    objective, exploitability evaluator and GDA trainer around a one-shot game's stabilizer
    (``auto`` choices of ``algo`` are made here: :func:`resolve_auto`)."""
    algo = resolve_auto(algo, game, owns_profile=bool(stabilizer.profile_parameters()))
    if algo.destabilizer == "best_response":
        destabilizer = BestResponseOracle(game, state0)
    else:
        destabilizer = LearnedDeviation(
            ActionProfile(deviation_init, game.action_low, game.action_high)
        )
    k, b = deviation_init.shape[:2]
    objective = MinMaxObjective(
        game,
        stabilizer,
        destabilizer,
        batch_shape=(k, b),
        state0=state0,
        estimator=algo.estimator,
        regret_weight=algo.regret_weight,
    )
    evaluate = make_evaluator(
        objective, exact=game.has_best_response, steps=algo.exploitability_steps
    )
    return objective, evaluate, GDA(objective, algo, evaluate=evaluate)


def build_inverse(game: StaticGame, observed: ObservedPlay, algo: AlgoConfig) -> InverseProblem:
    """Wire stabilizer, destabilizer, objective, evaluator and trainer for ``observed``."""
    observed.validate(game)
    mask = learn_mask(game)
    learn_index = mask.nonzero().flatten()
    theta0 = initial_theta(game, observed.theta_known, algo.theta_init, mask)
    k, b = observed.actions.shape[:2]
    state0 = observed.context
    contexts = state0 if state0 is not None else game.default_context().expand(k, b, game.state_dim)
    ident = check_identifiability(
        game, observed.actions, observed.theta_known, learn_index, contexts
    )
    profile = ActionProfile(observed.actions, game.action_low, game.action_high, learnable=False)
    stabilizer = Stabilizer(theta0, mask, game.param_low, game.param_high, profile)
    _, evaluate, trainer = static_trainer(
        game, stabilizer, algo, deviation_init=observed.actions, state0=state0
    )
    return InverseProblem(game, observed, trainer, evaluate, learn_index, ident)


def score(problem: InverseProblem) -> InverseResult:
    """Evaluate the trainer's answer: θ̂, exact (or ascent) exploitability, relative error."""
    answer = problem.trainer.answer
    theta_hat = answer.theta().detach()
    exploit = problem.evaluate(answer)
    rel = None
    if problem.observed.theta_true is not None:
        rel = relative_error(theta_hat, problem.observed.theta_true, problem.learn_index)
    return InverseResult(
        theta_hat=theta_hat,
        exploitability=exploit,
        relative_error=rel,
        identified=problem.identifiability.identified,
        converged=~problem.trainer.active,
        iterations=problem.trainer.step_count,
    )


def solve_inverse(
    game: StaticGame,
    observed: ObservedPlay,
    algo: AlgoConfig,
    *,
    progress: bool = False,
    records: list[EvalRecord] | None = None,
) -> Results:
    """Build, run to convergence (or ``algo.iterations``), and score an inverse problem: the
    typed :class:`~imitgame.results.Results` (``theta_hat [K, p]``, ``exploitability [K]``,
    ``converged [K]``, ``relative_error [K]``, ``summary()``, ``to_frame()``)."""
    problem = build_inverse(game, observed, algo)
    started = time.perf_counter()
    for record in problem.trainer.iterate(progress=progress):
        if records is not None:
            records.append(record)
    results = problem.results()
    results.wall_seconds = time.perf_counter() - started
    return results


def build(game: StaticGame, algo: AlgoConfig, data: DataConfig, seed: int) -> InverseProblem:
    """The registry's builder: observed play from ``data``, then :func:`build_inverse` (with
    ``data.bootstrap=R``: on the originals and R replicates each, one batch)."""
    return with_bootstrap(
        lambda obs: build_inverse(game, obs, algo), observed_play(game, data, seed), data, seed
    )


SPEC = register_problem(
    ProblemSpec(
        name="inverse",
        config=AlgoConfig,
        build=build,
        game_type=StaticGame,
        description="θ under which observed play of a one-shot game is a Nash equilibrium",
    )
)
