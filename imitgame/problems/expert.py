"""Inverse RL from expert trajectories of a simulator we did not write (``algo.problem=expert``).

The worked inversions of the adapters (:mod:`imitgame.adapters`) run three stages, each with the
one trainer:

1. **expert**: the forward solver (:func:`~imitgame.solver.forward.solve_markov_equilibrium`, the
   GDA trainer with the stabilizer owning a joint policy) plays the game under the true weights
   θ; ``expert_episodes`` episodes of that play are saved as a trajectory file
   (:mod:`imitgame.data.trajectories`), cached under ``expert_cache`` (rebuilt when absent) and
   copied into the run folder as ``expert_trajectories.npz``;
2. **recovery**: the Markov inverse problem (:mod:`imitgame.problems.markov`) from that file
   alone: the observed policy is behaviour-cloned, then min_θ max_ρ ψ;
3. **scoring**: reward weights are identified only up to scale, so θ̂ and θ are compared after
   normalising to unit length (``weights_cosine_similarity``, ``weights_relative_error`` =
   ‖θ̂/‖θ̂‖ − θ/‖θ‖‖); the cloned expert policy's exploitability by a freshly trained best
   response under θ̂ (``exploitability_best_response``) and, the same measurement with the same
   seeds, under θ (``exploitability_best_response_true``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from imitgame.config import DataConfig, MarkovConfig
from imitgame.data.trajectories import save_trajectories
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame
from imitgame.problems.base import ProblemSpec, register_problem, synthetic_theta
from imitgame.problems.markov import (
    MarkovInverseProblem,
    build_markov_inverse,
    episode_regrets,
)
from imitgame.results import Results
from imitgame.solver.exploitability import trained_best_response
from imitgame.solver.forward import solve_markov_equilibrium
from imitgame.solver.rollout import episode_generator, sample_trajectories
from imitgame.solver.stabilizer import Stabilizer

EXPERT_FILE = "expert_trajectories.npz"


@dataclass
class ExpertConfig(MarkovConfig):
    """:class:`MarkovConfig` plus the expert data's size and cache."""

    problem: str | None = "expert"
    expert_episodes: int = 512  # episodes per instance in the trajectory file
    expert_cache: str | None = "runs/cache/experts"  # null: always rebuild the expert


@dataclass
class ExpertInverseProblem(MarkovInverseProblem):
    """A Markov inverse problem whose data came from the forward-solved expert."""

    expert_path: Path | None = None
    expert_info: dict[str, Any] | None = None
    theta_start: Tensor | None = None  # θ where the recovery started [K, p] (a reference point)

    def results(self) -> Results:
        results = super().results()
        theta_hat = self.trainer.answer.theta().detach()
        extras: dict[str, Any] = dict(self.expert_info or {})
        extras["expert_trajectories"] = EXPERT_FILE
        if self.theta_true is not None:
            cos, rel = normalised_errors(theta_hat, self.theta_true)
            extras["weights_cosine_similarity"] = float(cos.mean())
            extras["weights_relative_error"] = float(rel.mean())
            if self.theta_start is not None:
                # the same figure at the starting point: how much the recovery itself did
                cos0, _ = normalised_errors(self.theta_start, self.theta_true)
                extras["weights_cosine_similarity_start"] = float(cos0.mean())
            extras["weights_normalised_hat"] = _unit(theta_hat).tolist()
            extras["weights_normalised_true"] = _unit(self.theta_true).tolist()
            extras["exploitability_best_response_true"] = float(
                best_response_exploitability(self, self.theta_true).mean()
            )
        results.extras.update(extras)
        return results

    def summary_lines(self, results: Results) -> list[str]:
        extras = results.extras
        lines = list(super().summary_lines(results))
        if "weights_cosine_similarity" in extras:
            lines += [
                "  reward weights are identified only up to scale: compared after normalising",
                f"  weights cosine  {extras['weights_cosine_similarity']:.4f} "
                f"(normalised relative error {extras['weights_relative_error']:.3e}; "
                f"{extras.get('weights_cosine_similarity_start', float('nan')):.4f} at the start)",
                f"  exploitability  {extras['exploitability_best_response']:.3e} under θ̂, "
                f"{extras['exploitability_best_response_true']:.3e} under the true θ "
                "(freshly trained best responses)",
            ]
        return lines

    def save_artifacts(self, run_dir: Path, env_config: dict[str, Any]) -> None:
        super().save_artifacts(run_dir, env_config)
        if (
            self.expert_path is not None
            and self.expert_path.resolve() != (run_dir / EXPERT_FILE).resolve()
        ):
            shutil.copyfile(self.expert_path, run_dir / EXPERT_FILE)


def _unit(theta: Tensor) -> Tensor:
    return theta / theta.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def normalised_errors(theta_hat: Tensor, theta_true: Tensor) -> tuple[Tensor, Tensor]:
    """Cosine similarity and ‖θ̂/‖θ̂‖ − θ/‖θ‖‖ per instance ``[K]`` (weights up to scale)."""
    a, b = _unit(theta_hat), _unit(theta_true.to(theta_hat))
    return (a * b).sum(-1), (a - b).norm(dim=-1)


def best_response_exploitability(problem: MarkovInverseProblem, theta: Tensor) -> Tensor:
    """φ ``[K]`` of the observed (cloned) policy under ``theta [K, p]`` by a freshly trained best
    response, scored over ``bound_environments`` episodes — the measurement
    :func:`~imitgame.problems.markov.score_markov` makes under θ̂, with the same seeds."""
    game, config, seed = problem.game, problem.config, problem.seed + 7
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool, device=game.device)
    stab = Stabilizer(theta, no_theta, game.param_low, game.param_high, problem.observed)
    _, fresh = trained_best_response(
        problem.objective,
        stab,
        **config.best_response_options(),
        seed=seed,
    )
    per_episode, _ = episode_regrets(
        game,
        theta,
        problem.observed,
        fresh,
        episodes=config.bound_environments,
        generator=episode_generator(game, seed + 1),
        entropy_weight=problem.objective.entropy_weight,
    )
    return per_episode.mean(-1).clamp(min=0)


def expert_trajectories(
    game: MarkovGame, theta: Tensor, config: ExpertConfig, seed: int
) -> tuple[Path, dict[str, Any]]:
    """The expert's trajectory file under ``theta [K, p]``: from the cache when there, else made
    by the forward solver and written (with a ``.json`` of how it was made beside it)."""
    key_fn = getattr(game, "cache_key", None)
    key = {
        "game": key_fn() if callable(key_fn) else type(game).__name__,
        "theta": [round(v, 12) for v in theta.flatten().tolist()],
        "seed": seed,
        "episodes": config.expert_episodes,
        "dtype": str(game.dtype),
        "forward": [
            config.forward_iterations,
            config.environments,
            config.hidden,
            config.lr_profile,
            config.lr_deviation,
            config.ascent_steps,
            config.estimator,
            config.schedule,
        ],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(config.expert_cache) if config.expert_cache else Path("runs/cache/experts")
    path = cache / f"{type(game).__name__.lower()}_{digest}.npz"
    info_path = path.with_suffix(".json")
    if path.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        info["expert_cached"] = True
        return path, info
    policy, forward_exploit = solve_markov_equilibrium(game, theta, config, seed=seed)
    policy = policy.to(device=game.device, dtype=game.dtype)
    with torch.no_grad():
        traj = sample_trajectories(
            game,
            theta,
            policy,
            (theta.shape[0], config.expert_episodes),
            generator=episode_generator(game, seed + 1000),
        )
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    save_trajectories(tmp, traj, theta_true=theta)
    tmp.replace(path)
    info = {
        "expert_forward_exploitability": float(forward_exploit.mean()),
        "expert_episodes": config.expert_episodes,
        "expert_return": traj.returns.mean(dim=(0, 1)).tolist(),
    }
    info_path.write_text(json.dumps(info))
    info["expert_cached"] = False
    return path, info


def build(
    game: MarkovGame, algo: ExpertConfig, data: DataConfig, seed: int
) -> ExpertInverseProblem:
    """Forward-solve the expert under the env's true weights (cached), then recover θ from its
    trajectory file alone."""
    if data.source == "file":
        raise ImitgameError(
            "algo.problem=expert makes its own expert data; for a trajectory file use "
            "algo.problem=markov_inverse data=file"
        )
    if not getattr(game, "differentiable", True):
        # a black-box simulator: score-function deviations (stochastic policies), θ's gradient
        # from the reward features (score) or by smoothing (zeroth_order)
        algo = copy.copy(algo)
        if algo.estimator == "pathwise":
            algo.estimator = "score"
        if game.n_discrete_actions is None and algo.policy in ("residual", "deterministic"):
            algo.policy = "gaussian"
    theta = synthetic_theta(game, data, torch.Generator().manual_seed(seed))
    theta = theta.to(device=game.device, dtype=game.dtype)
    path, info = expert_trajectories(game, theta, algo, seed)
    # the recovery's networks and shocks draw on torch's global generator, which a fresh forward
    # solve has consumed: reseed so a run from the cache plays exactly as the first one
    torch.manual_seed(seed)
    inner = build_markov_inverse(
        game, algo, theta_true=theta, theta_known=theta, dataset=str(path), seed=seed
    )
    return ExpertInverseProblem(
        **{f: getattr(inner, f) for f in inner.__dataclass_fields__},
        expert_path=path,
        expert_info=info,
        theta_start=inner.trainer.stabilizer.theta().detach().clone(),
    )


SPEC = register_problem(
    ProblemSpec(
        name="expert",
        config=ExpertConfig,
        build=build,
        game_type=MarkovGame,
        description="reward weights from an expert's trajectories (forward-solved, cached)",
    )
)
