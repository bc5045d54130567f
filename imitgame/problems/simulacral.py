"""Simulacral learning (the paper's Algorithm 3) as a configuration of the one trainer.

The stabilizer owns θ (its learned entries) *and* a learnable profile π — one action per observed
context, ``[K, B, n, d]`` — and carries an observation loss; the destabilizer picks deviations ρ:

    min_{θ, π} max_ρ  L_obs(O(π; θ), o) + λ ψ(π, ρ; θ),
    L_obs = mean_b ω_b Σ_j ((O(π_b; θ, x_b)_j − o_bj) / s_j)²,

with O the game's ``observation_map(actions, theta, context)`` (e.g. the market price), o the
observations, s_j their standard deviations, ω_b optional observation weights of mean 1 (e.g. a
recency discount; uniform by default). λ is fixed, or raised by dual ascent
λ ← min(λ_max, λ + η_λ ψ̄) at every evaluation (the multiplier update of an augmented
Lagrangian for the constraint ψ ≤ 0), so the fitted π stays an equilibrium of the fitted game.

A game used here is a :class:`StaticGame` with a context that declares the
:class:`~imitgame.game.hooks.SimulacralData` hooks: ``observation_map`` and ``observed_contexts()``,
optionally ``observed_outcomes()`` (real data), ``observation_weights()`` (ω), ``initial_theta()``
(known entries) and ``profile_from_observations``. Without observed outcomes, observations are
simulated from ``true_params`` by the game's closed-form equilibrium (or the forward solver).
Registered as ``algo.problem=simulacral``; a run also writes ``model.pt`` (θ̂ and the env config).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from imitgame import checkpoint
from imitgame.config import DataConfig, SimulacralConfig
from imitgame.errors import ImitgameError, check_finite
from imitgame.game.base import StaticGame
from imitgame.game.hooks import provides
from imitgame.game.strategies import ActionProfile, EquilibriumProfile
from imitgame.problems.base import (
    ProblemDefaults,
    ProblemSpec,
    initial_theta,
    learn_mask,
    make_results,
    register_problem,
    relative_error,
)
from imitgame.problems.bootstrap import reject_bootstrap
from imitgame.problems.inverse import static_trainer
from imitgame.results import Results
from imitgame.solver.exploitability import exact_exploitability
from imitgame.solver.forward import solve_static_equilibrium
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA, EvalRecord

MODEL = "model.pt"


@dataclass
class SimulacralProblem(ProblemDefaults):
    """A wired simulacral problem: ``contexts [K, B, s]``, ``observations [K, B, o]``."""

    game: StaticGame
    trainer: GDA
    objective: MinMaxObjective
    evaluate: Callable[[Stabilizer], Tensor]
    learn_index: Tensor
    contexts: Tensor
    observations: Tensor
    config: SimulacralConfig
    theta_true: Tensor | None = None  # [K, p] for synthetic observations

    @property
    def regret_weight(self) -> float:
        return float(self.objective.regret_weight)

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        """λ's dual ascent (``lambda_update=dual``), then λ as a TensorBoard scalar."""
        update_lambda(self, record)
        return {"metrics/lambda": self.regret_weight}

    def results(self) -> Results:
        result = score(self, self.theta_true)

        def mean(value: Tensor | None) -> float | None:
            return None if value is None else float(value.mean())

        return make_results(
            self,
            "simulacral",
            theta_hat=result.theta_hat,
            exploitability=result.exploitability,
            exploitability_exact=self.game.has_best_response,
            stopped=~self.trainer.active,
            extras={
                "equilibrium_exploitability": mean(result.equilibrium_exploitability),
                "observation_loss": float(result.observation_loss.mean()),
                "equilibrium_mse": mean(result.equilibrium_mse),
                "regret_weight": self.regret_weight,
                "observations": int(self.contexts.shape[1]),
            },
        )

    def summary_lines(self, results: Results) -> list[str]:
        x = results.extras
        return [
            f"  observation loss {x['observation_loss']:.4g}; the fitted game's "
            f"equilibrium: MSE {x['equilibrium_mse']}, exploitability "
            f"{x['equilibrium_exploitability']} (λ = {x['regret_weight']:.3g})"
        ]

    def save_artifacts(self, run_dir: Path, env_config: dict[str, Any]) -> None:
        """``model.pt``: θ̂ and the env config that rebuilds the game."""
        theta = self.trainer.answer.theta().detach()
        save_model(run_dir / MODEL, theta, env_config, self.game)


def _batched(name: str, tensor: Tensor, dim: int) -> Tensor:
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3 or tensor.shape[-1] != dim:
        raise ImitgameError(f"{name} has shape {list(tensor.shape)}, expected [K, B, {dim}]")
    check_finite(name, tensor)
    return tensor


def observation_loss_fn(
    game: StaticGame, contexts: Tensor, observations: Tensor, weights: Tensor | None = None
) -> Callable[[Stabilizer], Tensor]:
    """L_obs per instance ``[K]``: squared error scaled by each observed column's std, weighted
    by ``weights [K, B]`` (None: uniform; the std is weighted too, so that an observation of
    weight 0 has no say at all)."""
    if weights is None:
        scale = observations.flatten(0, 1).std(0)
    else:
        w = (weights / weights.sum())[..., None]
        centre = (w * observations).sum((0, 1))
        scale = (w * (observations - centre) ** 2).sum((0, 1)).sqrt()
    scale = scale.clamp(min=1e-8)

    def loss(stab: Stabilizer) -> Tensor:
        theta = stab.theta()[:, None, :]
        pred = game.observation_map(stab.profile().actions, theta, contexts)
        per_obs = (((pred - observations) / scale) ** 2).mean(2)
        if weights is not None:
            per_obs = per_obs * weights
        return per_obs.mean(1)

    return loss


def known_theta(game: StaticGame) -> Tensor:
    """``[p]``: the known entries of θ from ``game.initial_theta()``, else ``true_params``, else
    the centre of Θ (the learned entries are overwritten by :func:`initial_theta`)."""
    centre = 0.5 * (game.param_low + game.param_high)
    if provides(game, "initial_theta"):
        return game.initial_theta().to(centre)
    if game.true_params is not None:
        return game.true_params.clone()
    return centre.clone()


def simulate_observations(game: StaticGame, theta: Tensor, contexts: Tensor) -> Tensor:
    """Observations ``[K, B, o]`` of the equilibrium under ``theta [K, p]`` in ``contexts``."""
    if game.has_equilibrium:
        actions = game.equilibrium(theta[:, None, :], contexts)
    else:
        actions, _ = solve_static_equilibrium(game, theta, contexts)
    return game.observation_map(actions, theta[:, None, :], contexts).detach()


def build_simulacral(
    game: StaticGame,
    contexts: Tensor,
    observations: Tensor,
    config: SimulacralConfig,
    weights: Tensor | None = None,
) -> SimulacralProblem:
    """Stabilizer (learned θ, a learnable profile — or with ``algo.profile=equilibrium`` the
    game's closed-form equilibrium under θ — and the observation loss), destabilizer, objective,
    exploitability evaluator and the GDA trainer. ``weights [B]`` or ``[K, B]``: observation
    weights ω (normalised to mean 1; None: uniform)."""
    if not provides(game, "observation_map"):
        raise ImitgameError(f"{type(game).__name__} has no observation_map for simulacral learning")
    if not game.context_dim:
        raise ImitgameError(f"{type(game).__name__} has no context: nothing to fit per observation")
    contexts = _batched("contexts", contexts.to(game.device, game.dtype), game.state_dim)
    k, b = contexts.shape[:2]
    observations = observations.to(game.device, game.dtype)
    observations = _batched("observations", observations, observations.shape[-1])
    if observations.shape[:2] != (k, b):
        raise ImitgameError(
            f"observations {list(observations.shape)} do not match contexts {list(contexts.shape)}"
        )
    if weights is not None:
        if tuple(weights.shape) not in ((b,), (k, b)):
            raise ImitgameError(f"observation weights {list(weights.shape)}: expected [{b}]")
        weights = weights.to(game.device, game.dtype).expand(k, b)
        check_finite("observation weights", weights)
        if bool((weights < 0).any()) or not bool((weights.sum(1) > 0).all()):
            raise ImitgameError("observation weights must be >= 0 and not all zero")
        weights = weights / weights.mean(1, keepdim=True)
    mask = learn_mask(game)
    if not bool(mask.any()):
        raise ImitgameError("the game learns no θ entries (env.learn is empty)")
    known = known_theta(game)
    init = config.theta_init
    if isinstance(init, str) and init == "game":  # the game's own start for its learned entries
        if not provides(game, "initial_theta"):
            raise ImitgameError("algo.theta_init=game: the game has no initial_theta()")
        init = known[mask].tolist()
    theta0 = initial_theta(game, known.expand(k, -1), init, mask)
    shape = (k, b, game.n_agents, game.action_dim)
    start = None
    if provides(game, "profile_from_observations") and config.profile_init == "observations":
        # the game inverts its observation map: a start for π consistent with the data
        start = game.profile_from_observations(observations, theta0[:, None, :], contexts)
    elif game.has_equilibrium:
        start = game.equilibrium(theta0[:, None, :], contexts)
    if start is None:
        start = torch.minimum(
            0.5 * (game.action_low + game.action_high), game.action_low + 1.0
        ).expand(shape)
    if config.profile == "equilibrium":
        if not game.has_equilibrium:
            raise ImitgameError(
                "algo.profile=equilibrium needs a closed-form equilibrium; "
                f"{type(game).__name__} has none (use algo.profile=learned)"
            )

        def equilibrium(theta: Tensor) -> Tensor:
            return game.equilibrium(theta[:, None, :], contexts)

        profile = EquilibriumProfile(equilibrium, game.action_low, game.action_high)
    else:
        profile = ActionProfile(start.expand(shape), game.action_low, game.action_high)
    stabilizer = Stabilizer(
        theta0,
        mask,
        game.param_low,
        game.param_high,
        profile,
        observation_loss=observation_loss_fn(game, contexts, observations, weights),
    )
    objective, evaluate, trainer = static_trainer(
        game, stabilizer, config, deviation_init=start.expand(shape), state0=contexts
    )
    return SimulacralProblem(
        game, trainer, objective, evaluate, mask.nonzero().flatten(), contexts, observations, config
    )


def update_lambda(problem: SimulacralProblem, record: EvalRecord) -> None:
    """Dual ascent on λ (no-op for ``lambda_update=fixed``)."""
    cfg = problem.config
    if cfg.lambda_update == "dual":
        psi = float(record.regret.clamp(min=0).mean())
        problem.objective.regret_weight = min(
            cfg.lambda_max, problem.regret_weight + cfg.lambda_lr * psi
        )


def fit(
    problem: SimulacralProblem,
    *,
    progress: bool = False,
    on_record: Callable[[EvalRecord], None] | None = None,
) -> list[EvalRecord]:
    """Run the trainer to its budget (or convergence), adapting λ at every evaluation."""
    records = []
    for record in problem.trainer.iterate(progress=progress):
        update_lambda(problem, record)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def equilibrium_regret(game: StaticGame, theta: Tensor, contexts: Tensor) -> Tensor:
    """Exact exploitability ``[K]`` of the fitted game's closed-form equilibrium in ``contexts``:
    the check that forecasts made from it come from an equilibrium."""
    actions = game.equilibrium(theta[:, None, :], contexts)
    profile = ActionProfile(actions, game.action_low, game.action_high, learnable=False)
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool, device=game.device)
    stab = Stabilizer(theta, no_theta, game.param_low, game.param_high, profile)
    return exact_exploitability(game, theta, stab, contexts)


@dataclass
class SimulacralResult:
    """θ̂ ``[K, p]``; per instance ``[K]``: exploitability of the fitted profile and of the fitted
    game's equilibrium, observation loss, MSE of the equilibrium's observations, relative error."""

    theta_hat: Tensor
    exploitability: Tensor
    equilibrium_exploitability: Tensor | None
    observation_loss: Tensor
    equilibrium_mse: Tensor | None
    relative_error: Tensor | None


def score(problem: SimulacralProblem, theta_true: Tensor | None = None) -> SimulacralResult:
    answer = problem.trainer.answer
    game = problem.game
    theta = answer.theta().detach()
    with torch.no_grad():
        exploit = problem.evaluate(answer)
        obs_loss = answer.observation_loss()
        eq_exploit = eq_mse = None
        if game.has_equilibrium and game.has_best_response:
            eq_exploit = equilibrium_regret(game, theta, problem.contexts)
            eq_obs = simulate_observations(game, theta, problem.contexts)
            eq_mse = ((eq_obs - problem.observations) ** 2).mean((1, 2))
    rel = None if theta_true is None else relative_error(theta, theta_true, problem.learn_index)
    return SimulacralResult(theta, exploit, eq_exploit, obs_loss, eq_mse, rel)


# --- the entry point's wiring: python train.py env=... algo=simulacral ---------------------------
def problem_from_game(
    game: StaticGame, config: SimulacralConfig
) -> tuple[SimulacralProblem, Tensor | None]:
    """The problem on the game's own data — ``observed_contexts()``, ``observed_outcomes()`` and
    ``observation_weights()`` — or, without observed outcomes, on observations simulated from
    ``true_params`` (returned ``[1, p]`` for scoring; None for real data)."""
    contexts = game.observed_contexts() if provides(game, "observed_contexts") else None
    if contexts is None:
        raise ImitgameError(f"{type(game).__name__} provides no observed_contexts()")
    outcomes = game.observed_outcomes() if provides(game, "observed_outcomes") else None
    theta_true = None
    if outcomes is None:
        if game.true_params is None:
            raise ImitgameError(f"{type(game).__name__} has neither observations nor true_params")
        theta_true = game.true_params[None, :]
        outcomes = simulate_observations(game, theta_true, contexts[None])[0]
    weights = game.observation_weights() if provides(game, "observation_weights") else None
    problem = build_simulacral(game, contexts, outcomes, config, weights)
    problem.theta_true = theta_true
    return problem, theta_true


def save_model(path: Path, theta: Tensor, env_cfg: Any, game: StaticGame) -> None:
    """θ̂ and the env config that rebuilds the game (``model.pt``)."""
    from omegaconf import OmegaConf

    env = env_cfg if isinstance(env_cfg, dict) else OmegaConf.to_container(env_cfg, resolve=True)
    checkpoint.save_atomic(
        {"theta": theta.detach().cpu(), "env": env, "param_names": game.param_names}, path
    )


def build(
    game: StaticGame, algo: SimulacralConfig, data: DataConfig, seed: int
) -> SimulacralProblem:
    """The registry's builder: the game's own observations (:func:`problem_from_game`)."""
    reject_bootstrap(data, "simulacral")
    return problem_from_game(game, algo)[0]


SPEC = register_problem(
    ProblemSpec(
        name="simulacral",
        config=SimulacralConfig,
        build=build,
        game_type=StaticGame,
        description="θ and an equilibrium of the game fitted to partial observations (prices)",
    )
)
