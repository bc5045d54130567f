"""Inverse multiagent RL on Markov games (the paper's Algorithm 2), in the one GDA trainer.

    min_θ max_ρ ψ(π†, ρ; θ), ψ estimated from sampled trajectories

The stabilizer owns the learned θ entries and the observed joint policy π† (fixed); the
destabilizer owns one deviation policy per agent (a policy network, trained by policy gradient).
π† is either queryable (a synthetic run's equilibrium policy: the game's closed form
``equilibrium_policy(θ)`` or the Markov forward solver) or fitted first by behaviour cloning from
a trajectory file (``data=file``). Registered as ``algo.problem=markov_inverse`` (the default for a
:class:`MarkovGame` that is not one-shot).

After training, the exploitability of π† under θ̂ is measured by a *separately trained* best
response (a fresh deviation ascending the same objective) and, where the game has one, by its
closed-form ``best_response_policy`` (:mod:`imitgame.game.hooks`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from imitgame.config import DataConfig, MarkovConfig
from imitgame.data.trajectories import fit_behavior_policy, load_trajectories
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame
from imitgame.game.hooks import attribute, provides
from imitgame.game.policies import make_policy
from imitgame.game.strategies import Strategy
from imitgame.problems.base import (
    ProblemDefaults,
    ProblemSpec,
    initial_theta,
    learn_mask,
    make_results,
    register_problem,
    relative_error,
    synthetic_theta,
)
from imitgame.results import Results
from imitgame.solver.destabilizer import LearnedDeviation
from imitgame.solver.exploitability import (
    ascent_exploitability,
    exact_exploitability,
    trained_best_response,
)
from imitgame.solver.forward import solve_markov_equilibrium
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.rollout import episode_generator
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA, EvalRecord


@dataclass
class MarkovInverseProblem(ProblemDefaults):
    """A wired Markov inverse problem."""

    game: MarkovGame
    config: MarkovConfig
    objective: MinMaxObjective
    trainer: GDA
    learn_index: Tensor
    theta_true: Tensor | None
    observed: Strategy
    seed: int
    bc_loss: float | None = None
    forward_exploitability: float | None = None
    identifiability: Any = None

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        """TensorBoard extras: policy losses and the variance of the θ-gradient estimator."""
        out: dict[str, float] = {}
        stab = self.trainer.stabilizer
        grads = []
        for _ in range(self.config.variance_batches):
            terms = self.objective(stab)
            if stab.learns_theta:
                (g,) = torch.autograd.grad(terms.loss, [stab.theta_learned], allow_unused=True)
                if g is not None:
                    grads.append(g.detach())
            out["loss/deviation"] = -float(
                terms.regret.detach().mean()
            )  # the destabilizer's loss −ψ
        if len(grads) > 1:
            stacked = torch.stack(grads)
            out["metrics/theta_grad_variance"] = float(stacked.var(0).sum())
            out["metrics/theta_grad_norm"] = float(stacked.mean(0).norm())
        if self.bc_loss is not None:
            out["loss/behavior_cloning"] = self.bc_loss
        return out

    def results(self) -> Results:
        result = score_markov(self)
        closed = result.exploitability_closed_form
        extras = {
            "exploitability_best_response": float(result.exploitability_best_response.mean()),
            "exploitability_closed_form": None if closed is None else float(closed.mean()),
            **result.extras,
        }
        return make_results(
            self,
            "markov_inverse",
            theta_hat=result.theta_hat,
            exploitability=result.exploitability,
            exploitability_exact=closed is not None,
            stopped=result.converged,
            extras=extras,
        )

    def summary_lines(self, results: Results) -> list[str]:
        """The separately trained best response's figure, where the headline one is the
        closed form's (otherwise it is the headline figure, printed once)."""
        if not results.exploitability_exact:
            return []
        learned = results.extras["exploitability_best_response"]
        return [f"  exploitability  {learned:.3e} (separately trained best response)"]


@dataclass
class MarkovResult:
    """As the static ``InverseResult``, plus the separately trained best response."""

    theta_hat: Tensor
    exploitability: Tensor
    exploitability_best_response: Tensor
    exploitability_closed_form: Tensor | None
    relative_error: Tensor | None
    converged: Tensor
    iterations: int
    extras: dict[str, Any] = field(default_factory=dict)


def observed_policy(
    game: MarkovGame, theta: Tensor, config: MarkovConfig, seed: int
) -> tuple[Strategy, float | None]:
    """The queryable equilibrium policy under ``theta [K, p]``: closed form or forward solver
    (then also the forward solution's exploitability by a separately trained best response)."""
    if provides(game, "equilibrium_policy"):
        return game.equilibrium_policy(theta), None
    policy, exploit = solve_markov_equilibrium(game, theta, config, seed=seed)
    return policy, float(exploit.mean())


def build_markov_inverse(
    game: MarkovGame,
    config: MarkovConfig,
    *,
    theta_true: Tensor | None,
    theta_known: Tensor,
    dataset: str | None = None,
    seed: int = 0,
) -> MarkovInverseProblem:
    """Wire observed policy (queried or behaviour-cloned), stabilizer, destabilizer, trainer.

    ``theta_known [K, p]`` gives the entries that are not learned (and the synthetic truth's
    layout); ``dataset`` is a trajectory file (.npz) to clone the observed policy from.
    """
    theta_known = theta_known.to(device=game.device, dtype=game.dtype)
    k = theta_known.shape[0]
    bc_loss, forward_exploitability = None, None
    if dataset is not None:
        data = load_trajectories(dataset, game, n_instances=k)
        if data.theta_true is not None and theta_true is None:
            theta_true = data.theta_true.to(theta_known).expand(k, game.param_dim)
        policy, bc_loss = fit_behavior_policy(
            game, data, k, hidden=config.hidden, steps=config.bc_steps, lr=config.bc_lr
        )
    else:
        if theta_true is None:
            raise ImitgameError("a synthetic Markov run needs true parameters")
        policy, forward_exploitability = observed_policy(
            game, theta_true.to(theta_known), config, seed
        )
    policy = policy.to(device=game.device, dtype=game.dtype)
    if game.n_discrete_actions is not None and config.estimator == "pathwise":
        # discrete actions have no pathwise derivative: the score function is the only choice
        config = copy.copy(config)
        config.estimator = "score"
    mask = learn_mask(game)
    theta0 = initial_theta(game, theta_known, config.theta_init, mask)
    stabilizer = Stabilizer(theta0, mask, game.param_low, game.param_high, policy)
    deviation = make_policy(
        game, k, config.policy, config.hidden, profile=policy, estimator=config.estimator
    ).to(device=game.device, dtype=game.dtype)
    objective = MinMaxObjective(
        game,
        stabilizer,
        LearnedDeviation(deviation),
        batch_shape=(k, config.environments),
        estimator=config.estimator,
        regret_weight=config.regret_weight,
        baseline=config.baseline,
        entropy_weight=float(attribute(game, "entropy_weight")),
        generator=episode_generator(game, seed),
    )

    def evaluate(stab: Stabilizer) -> Tensor:
        # running estimate: a short warm-started ascent of a copy of the current deviations
        return ascent_exploitability(
            objective, stab, steps=config.eval_steps, lr=config.lr_deviation
        ).clamp(min=0)

    gda_config = config
    if config.lr_theta_units == "box":
        # scale-free θ steps: Adam moves each entry by about lr, so scale lr by Θ's width
        width = (game.param_high - game.param_low)[mask].mean().item()
        gda_config = copy.copy(config)
        gda_config.lr_theta = config.lr_theta * width
    trainer = GDA(objective, gda_config, evaluate=evaluate)
    return MarkovInverseProblem(
        game=game,
        config=config,
        objective=objective,
        trainer=trainer,
        learn_index=mask.nonzero().flatten().to(game.device),
        theta_true=None if theta_true is None else theta_true.to(theta_known),
        observed=policy,
        seed=seed,
        bc_loss=bc_loss,
        forward_exploitability=forward_exploitability,
    )


def score_markov(problem: MarkovInverseProblem) -> MarkovResult:
    """θ̂, exploitability of π† under θ̂ (trained best response; closed form where available)."""
    answer = problem.trainer.answer
    theta_hat = answer.theta().detach()
    config, seed = problem.config, problem.seed + 7
    learned = trained_best_response(
        problem.objective,
        answer,
        policy=config.policy,
        hidden=config.hidden,
        steps=config.best_response_steps,
        lr=config.best_response_lr,
        environments=config.eval_environments,
        seed=seed,
    )
    closed = exact_exploitability(
        problem.game,
        answer.theta().detach(),
        answer,
        batch_shape=(answer.n_instances, config.eval_environments),
        generator=episode_generator(problem.game, seed),
        entropy_weight=problem.objective.entropy_weight,
    )
    rel = None
    if problem.theta_true is not None:
        rel = relative_error(theta_hat, problem.theta_true, problem.learn_index)
    extras: dict[str, Any] = {}
    if problem.bc_loss is not None:
        extras["behavior_cloning_loss"] = problem.bc_loss
    if problem.forward_exploitability is not None:
        extras["forward_solver_exploitability"] = problem.forward_exploitability
    return MarkovResult(
        theta_hat=theta_hat,
        exploitability=closed if closed is not None else learned,
        exploitability_best_response=learned,
        exploitability_closed_form=closed,
        relative_error=rel,
        converged=~problem.trainer.active,
        iterations=problem.trainer.step_count,
        extras=extras,
    )


def build(
    game: MarkovGame, algo: MarkovConfig, data: DataConfig, seed: int
) -> MarkovInverseProblem:
    """The registry's builder: a trajectory file (θ's known entries from the env config), or the
    queryable equilibrium policy under the synthetic truth."""
    if data.source == "file":
        known = game.true_params
        if known is None:
            raise ImitgameError(f"{type(game).__name__} has no configured parameters")
        theta_known = known.detach().expand(data.instances, game.param_dim).clone()
        return build_markov_inverse(
            game, algo, theta_true=None, theta_known=theta_known, dataset=str(data.path), seed=seed
        )
    theta = synthetic_theta(game, data, torch.Generator().manual_seed(seed))
    theta = theta.to(device=game.device, dtype=game.dtype)
    return build_markov_inverse(game, algo, theta_true=theta, theta_known=theta, seed=seed)


SPEC = register_problem(
    ProblemSpec(
        name="markov_inverse",
        config=MarkovConfig,
        build=build,
        game_type=MarkovGame,
        description="θ under which an observed joint policy of a Markov game is an equilibrium",
    )
)
