"""Inverse game solving for one-shot games: find θ under which observed play is a Nash equilibrium.

:func:`build_inverse` wires the pieces (stabilizer owning the learned θ entries, the observed
profile π†, a learned or oracle destabilizer, the exploitability evaluator, the GDA trainer);
:func:`solve_inverse` runs it and scores the answer. K instances are one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from imitgame.config import AlgoConfig
from imitgame.data.observed import ObservedPlay
from imitgame.errors import ImitgameError, check_finite
from imitgame.game.base import StaticGame
from imitgame.game.strategies import ActionProfile
from imitgame.problems.identifiability import Identifiability, check_identifiability
from imitgame.solver.destabilizer import BestResponseOracle, LearnedDeviation
from imitgame.solver.exploitability import make_evaluator
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA, EvalRecord


@dataclass
class InverseProblem:
    """A wired inverse problem: run ``trainer``; ``evaluate(stabilizer) -> [K]`` exploitability."""

    game: StaticGame
    observed: ObservedPlay
    trainer: GDA
    evaluate: object
    learn_index: Tensor
    identifiability: Identifiability


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


def learn_mask(game: StaticGame) -> Tensor:
    return torch.tensor([n in game.learned_params for n in game.param_names], device=game.device)


def initial_theta(game: StaticGame, observed: ObservedPlay, init: object, mask: Tensor) -> Tensor:
    """Known entries from the data, learned ones from ``init`` (None: the centre of Θ)."""
    theta = observed.theta_known.clone()
    if init is None:
        start = 0.5 * (game.param_low + game.param_high)
    else:
        values = torch.as_tensor(list(init), dtype=theta.dtype, device=theta.device)
        n_learned = int(mask.sum())
        if values.numel() not in (1, n_learned):
            raise ImitgameError(
                f"algo.theta_init has {values.numel()} values for {n_learned} learned entries"
            )
        start = theta[0].clone()
        start[mask] = values
        if bool(((start < game.param_low) | (start > game.param_high)).any()):
            raise ImitgameError("algo.theta_init lies outside the parameter bounds")
    theta[:, mask] = start.to(theta)[mask]
    check_finite("initial parameters", theta)
    return theta


def relative_error(theta_hat: Tensor, theta_true: Tensor, index: Tensor) -> Tensor:
    """‖θ̂_L − θ_L‖ / ‖θ_L‖ over the learned entries L, per instance ``[K]``."""
    diff = (theta_hat[:, index] - theta_true[:, index]).norm(dim=-1)
    return diff / theta_true[:, index].norm(dim=-1).clamp(min=1e-12)


def static_trainer(
    game: StaticGame,
    stabilizer: Stabilizer,
    algo: AlgoConfig,
    *,
    deviation_init: Tensor,
    state0: Tensor | None,
) -> tuple[MinMaxObjective, Callable[[Stabilizer], Tensor], GDA]:
    """The destabilizer (exact oracle or learned deviations from ``deviation_init [K, B, n, d]``),
    objective, exploitability evaluator and GDA trainer around a one-shot game's stabilizer."""
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
    theta0 = initial_theta(game, observed, algo.theta_init, mask)
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
) -> InverseResult:
    """Build, run to convergence (or ``algo.iterations``), and score an inverse problem."""
    problem = build_inverse(game, observed, algo)
    for record in problem.trainer.iterate(progress=progress):
        if records is not None:
            records.append(record)
    return score(problem)
