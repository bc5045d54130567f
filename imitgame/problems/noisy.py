"""Inverse learning from noisy observed actions: θ and an equilibrium fitted jointly.

Observed actions are equilibrium play plus measurement error, a_b = π*(θ, x_b) + ε_b. The plain
inverse estimator (``algo.problem=inverse``) minimises the exploitability of the noisy actions
themselves, mean_b φ(a_b; θ); where θ multiplies the actions in the first-order conditions (a
demand slope, quadratic costs, log utilities) that is an errors-in-variables estimator and stays
biased however many observations there are. This problem is the consistent one: the simulacral
machinery (:mod:`imitgame.problems.simulacral`), with the observation map the actions themselves —
the stabilizer owns θ and a profile π, and

    min_{θ, π} max_ρ  L_obs(π) + λ ψ(π, ρ; θ),     L_obs = mean_b Σ_{i,j} ((π_{c(b)} − a_b) / s)²,

with s the mean observed |action| per instance and c(b) the cell of observation b. Observations
that share a context share one profile (a game without a context: one cell, π ``[K, 1, n, d]``),
so L_obs = ‖π − ā‖²/s² + const and the fitted π* matches the cell's sample mean ā → π*(θ₀):
the estimator is consistent at any λ > 0 (λ only sets the metric in which π*(θ) is fitted to ā;
small λ fits ψ(ā; θ), large λ fits ‖ā − π*(θ)‖²). Observations with their own contexts get one
profile each (π ``[K, B, n, d]``); then λ must be large (``lambda_update=dual``) for consistency.

λ = ``algo.regret_weight`` / (mean_i |u_i(ā; θ_init)|), so the two terms have comparable scales;
the step sizes ``lr_theta`` and ``lr_profile`` are relative to |θ_init| and s. Registered as
``algo.problem=noisy_inverse``; ``data.bootstrap=R`` adds R resampled replicates to the batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from imitgame.config import DataConfig, NoisyConfig
from imitgame.data.observed import ObservedPlay
from imitgame.errors import ImitgameError
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
)
from imitgame.problems.bootstrap import with_bootstrap
from imitgame.problems.identifiability import Identifiability, check_identifiability
from imitgame.problems.inverse import observed_play, static_trainer
from imitgame.results import Results
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA, EvalRecord


@dataclass
class NoisyProblem(ProblemDefaults):
    """A wired noisy-observation problem: ``observed`` ``[K, B, n, d]``, π ``[K, C, n, d]``."""

    game: StaticGame
    observed: ObservedPlay
    trainer: GDA
    objective: MinMaxObjective
    evaluate: Callable[[Stabilizer], Tensor]
    learn_index: Tensor
    identifiability: Identifiability
    config: NoisyConfig

    @property
    def theta_true(self) -> Tensor | None:
        return self.observed.theta_true

    @property
    def regret_weight(self) -> float:
        return float(self.objective.regret_weight)

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        """λ's dual ascent (``lambda_update=dual``), then λ as a TensorBoard scalar."""
        cfg = self.config
        if cfg.lambda_update == "dual":
            psi = float(record.regret.clamp(min=0).mean())
            self.objective.regret_weight = min(
                cfg.lambda_max, self.regret_weight + cfg.lambda_lr * psi
            )
        return {"metrics/lambda": self.regret_weight}

    def state_dict(self) -> dict[str, float]:
        return {"regret_weight": self.regret_weight}

    def load_state_dict(self, state: dict[str, float]) -> None:
        if "regret_weight" in state:
            self.objective.regret_weight = float(state["regret_weight"])

    def results(self) -> Results:
        answer = self.trainer.answer
        theta = answer.theta().detach()
        with torch.no_grad():
            exploit = self.evaluate(answer)
            obs_loss = answer.observation_loss()
        return make_results(
            self,
            "noisy_inverse",
            theta_hat=theta,
            exploitability=exploit,
            exploitability_exact=self.game.has_best_response,
            stopped=~self.trainer.active,
            identified=self.identifiability.identified,
            identifiability_rank=self.identifiability.rank,
            extras={
                "observation_loss": float(obs_loss.mean()),
                "regret_weight": self.regret_weight,
                "observations": int(self.observed.n_observations),
            },
        )

    def summary_lines(self, results: Results) -> list[str]:
        x = results.extras
        return [
            f"  noisy-observation fit: observation loss {x['observation_loss']:.4g} "
            f"(λ = {x['regret_weight']:.3g}, {x['observations']} observations); exploitability "
            "above is that of the fitted profile π"
        ]


def _cells(observed: ObservedPlay) -> bool:
    """Whether every instance's observations share one context (then they share one π)."""
    ctx = observed.context
    return ctx is None or bool((ctx == ctx[:, :1]).all())


def build_noisy(game: StaticGame, observed: ObservedPlay, algo: NoisyConfig) -> NoisyProblem:
    """Stabilizer (learned θ, a profile per cell, the observation loss), exact or learned
    destabilizer, objective, evaluator and the GDA trainer (:func:`static_trainer`)."""
    observed.validate(game)
    mask = learn_mask(game)
    if not bool(mask.any()):
        raise ImitgameError("the game learns no θ entries (env.learn is empty)")
    learn_index = mask.nonzero().flatten()
    theta0 = initial_theta(game, observed.theta_known, algo.theta_init, mask)
    actions = observed.actions  # [K, B, n, d]
    k = actions.shape[0]
    shared = _cells(observed)
    state0 = None
    if observed.context is not None:
        state0 = observed.context[:, :1] if shared else observed.context
    target = actions.mean(1, keepdim=True) if shared else actions  # [K, C, n, d]
    scale = actions.abs().mean((1, 2, 3)).clamp(min=1e-8)  # s per instance [K]
    contexts = state0 if state0 is not None else game.default_context().expand(k, 1, -1)

    def observation_loss(stab: Stabilizer) -> Tensor:
        """L_obs ``[K]`` = mean_b Σ ((π_c(b) − a_b)/s)², up to the within-cell constant."""
        diff = (stab.profile().actions - target) / scale[:, None, None, None]
        return (diff**2).sum((2, 3)).mean(1)

    profile = ActionProfile(target.clone(), game.action_low, game.action_high)
    stabilizer = Stabilizer(
        theta0, mask, game.param_low, game.param_high, profile, observation_loss=observation_loss
    )
    cell_contexts = contexts.expand(k, target.shape[1], contexts.shape[-1])
    with torch.no_grad():
        payoff = game.payoffs_in(cell_contexts, target, theta0[:, None, :]).abs().mean()
    algo = copy.copy(algo)
    algo.regret_weight = algo.regret_weight / float(payoff.clamp(min=1e-12))
    # relative step sizes (Adam's steps are in the variables' own units)
    algo.lr_theta = algo.lr_theta * float(theta0[:, learn_index].abs().mean().clamp(min=1e-8))
    algo.lr_profile = algo.lr_profile * float(scale.mean())
    objective, evaluate, trainer = static_trainer(
        game, stabilizer, algo, deviation_init=target.clone(), state0=state0
    )
    # the rank test at each cell's mean play (B times cheaper than at every observation, and
    # noise does not lend the first-order conditions a spurious rank)
    ident = check_identifiability(game, target, observed.theta_known, learn_index, cell_contexts)
    return NoisyProblem(game, observed, trainer, objective, evaluate, learn_index, ident, algo)


def solve_noisy(game: StaticGame, observed: ObservedPlay, algo: NoisyConfig) -> Tensor:
    """Build and run; returns θ̂ ``[K, p]`` (the trainer's answer)."""
    problem = build_noisy(game, observed, algo)
    for record in problem.trainer.iterate(progress=False):
        problem.on_record(record)
    return problem.trainer.answer.theta().detach()


def error(problem: NoisyProblem) -> Tensor | None:
    """Relative error of θ̂ per instance ``[K]`` (None without a true θ)."""
    if problem.theta_true is None:
        return None
    theta = problem.trainer.answer.theta().detach()
    return relative_error(theta, problem.theta_true, problem.learn_index)


def build(game: StaticGame, algo: NoisyConfig, data: DataConfig, seed: int) -> NoisyProblem:
    """The registry's builder: (noisy) observed play from ``data``, R bootstrap replicates."""
    return with_bootstrap(
        lambda obs: build_noisy(game, obs, algo), observed_play(game, data, seed), data, seed
    )


SPEC = register_problem(
    ProblemSpec(
        name="noisy_inverse",
        config=NoisyConfig,
        build=build,
        game_type=StaticGame,
        description="θ and an equilibrium fitted jointly to noisy observed actions",
    )
)
