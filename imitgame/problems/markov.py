"""Inverse multiagent RL on Markov games (the paper's Algorithm 2), in the one GDA trainer.

The stabilizer owns the learned θ entries and the observed joint policy π† (fixed); the
destabilizer owns one deviation policy per agent (a policy network, trained by policy gradient
on ψ estimated from sampled trajectories). π† is either queryable (a synthetic run's equilibrium
policy: the game's closed form ``equilibrium_policy(θ)`` or the Markov forward solver) or fitted
first by behaviour cloning from a dataset of trajectories (``data=file``).

After training, the exploitability of π† under θ̂ is measured by a *separately trained* best
response (a fresh deviation ascending the same objective) and, where the game has one, by its
closed-form ``best_response_policy``.

Optional game protocol (duck-typed, all optional): ``equilibrium_policy(theta [K, p]) ->
Strategy``; ``best_response_policy(profile, theta) -> Strategy | None``; ``obs_scale`` (a tensor
or float dividing observations before policy networks); ``entropy_weight`` τ (entropy-regularised
/ logit equilibrium, for discrete games).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from imitgame.config import GDAConfig, MarkovConfig
from imitgame.data.trajectories import fit_behavior_policy, load_trajectories
from imitgame.errors import ImitgameError, check_finite
from imitgame.game.base import MarkovGame
from imitgame.game.policies import (
    CategoricalPolicy,
    DeterministicPolicy,
    GaussianPolicy,
    ResidualCategorical,
    ResidualPolicy,
)
from imitgame.game.strategies import Strategy
from imitgame.problems.inverse import initial_theta, learn_mask, relative_error
from imitgame.solver.destabilizer import LearnedDeviation
from imitgame.solver.exploitability import ascent_exploitability
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.regret import estimate_regret
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA


def make_deviation(
    game: MarkovGame, profile: Strategy, k: int, config: MarkovConfig, *, estimator: str
) -> Strategy:
    """One deviation policy per (instance, agent), as chosen by ``config.policy``."""
    n, scale, hidden = game.n_agents, getattr(game, "obs_scale", 1.0), list(config.hidden)
    if game.n_discrete_actions is not None:
        if config.policy == "residual" and hasattr(profile, "logits"):
            return ResidualCategorical(
                profile, k, n, game.obs_dim, game.n_discrete_actions, hidden, scale
            )
        return CategoricalPolicy(k, n, game.obs_dim, game.n_discrete_actions, hidden, scale)
    low, high = game.action_low, game.action_high
    if config.policy == "residual":
        return ResidualPolicy(
            profile, k, n, game.obs_dim, game.action_dim, low, high, hidden, scale
        )
    if config.policy == "gaussian":
        policy = GaussianPolicy(k, n, game.obs_dim, game.action_dim, low, high, hidden, scale)
        policy.reparameterize = estimator == "pathwise"
        return policy
    if config.policy == "categorical":
        raise ImitgameError(f"algo.policy=categorical needs a discrete-action game, not {game}")
    return DeterministicPolicy(k, n, game.obs_dim, game.action_dim, low, high, hidden, scale)


@dataclass
class MarkovInverseProblem:
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

    def diagnostics(self) -> dict[str, float]:
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


def _generator(game: MarkovGame, seed: int) -> torch.Generator:
    return torch.Generator(device=game.device).manual_seed(seed)


def observed_policy(
    game: MarkovGame, theta: Tensor, config: MarkovConfig, seed: int
) -> tuple[Strategy, float | None]:
    """The queryable equilibrium policy under ``theta [K, p]``: closed form or forward solver
    (then also the forward solution's exploitability by a separately trained best response)."""
    if hasattr(game, "equilibrium_policy"):
        return game.equilibrium_policy(theta), None
    policy, exploit = solve_markov_equilibrium(game, theta, config, seed=seed)
    return policy, float(exploit.mean())


def solve_markov_equilibrium(
    game: MarkovGame, theta: Tensor, config: MarkovConfig, *, seed: int = 0
) -> tuple[Strategy, Tensor]:
    """Forward solver: the same GDA with the stabilizer owning a joint policy π (θ fixed).

    Returns the frozen policy and its exploitability ``[K]`` by a separately trained best
    response.
    """
    k = theta.shape[0]
    n, scale, hidden = game.n_agents, getattr(game, "obs_scale", 1.0), list(config.hidden)
    if game.n_discrete_actions is not None:
        profile: Strategy = CategoricalPolicy(
            k, n, game.obs_dim, game.n_discrete_actions, hidden, scale
        )
        estimator = "score"
    else:
        profile = DeterministicPolicy(
            k, n, game.obs_dim, game.action_dim, game.action_low, game.action_high, hidden, scale
        )
        estimator = config.estimator
    profile = profile.to(device=game.device, dtype=game.dtype)
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool, device=game.device)
    stabilizer = Stabilizer(theta, no_theta, game.param_low, game.param_high, profile)
    fresh = copy.deepcopy(config)
    fresh.policy = "categorical" if game.n_discrete_actions is not None else "deterministic"
    deviation = make_deviation(game, profile, k, fresh, estimator=estimator).to(
        device=game.device, dtype=game.dtype
    )
    objective = MinMaxObjective(
        game,
        stabilizer,
        LearnedDeviation(deviation),
        batch_shape=(k, config.environments),
        estimator=estimator,
        baseline=config.baseline,
        entropy_weight=float(getattr(game, "entropy_weight", 0.0)),
        generator=_generator(game, seed),
    )
    gda = GDAConfig(
        iterations=config.forward_iterations,
        lr_profile=config.lr_profile,
        lr_deviation=config.lr_deviation,
        ascent_steps=config.ascent_steps,
        schedule=config.schedule,
        lr_final_fraction=config.lr_final_fraction,
        eval_every=config.forward_iterations,
    )
    trainer = GDA(objective, gda)
    for _ in trainer.iterate(progress=False):
        pass
    for p in profile.parameters():
        p.requires_grad_(False)
    exploit = trained_best_response(objective, trainer.stabilizer, config, seed=seed + 1)
    return profile, exploit


def trained_best_response(
    objective: MinMaxObjective, stabilizer: Stabilizer, config: MarkovConfig, *, seed: int
) -> Tensor:
    """φ ``[K]`` by a fresh deviation policy trained from scratch on the same objective (with
    ``eval_environments`` episodes per instance; a lower bound on the exact exploitability)."""
    game = objective.game
    k = stabilizer.n_instances
    profile = stabilizer.profile()
    deviation = make_deviation(game, profile, k, config, estimator=objective.estimator)
    deviation = deviation.to(device=game.device, dtype=game.dtype)
    fresh = copy.copy(objective)
    fresh.destabilizer = LearnedDeviation(deviation)
    fresh.batch_shape = (k, config.eval_environments)
    fresh.generator = _generator(game, seed)
    frozen = copy.deepcopy(stabilizer)
    for p in frozen.parameters():
        p.requires_grad_(False)
    params = [p for p in deviation.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.best_response_lr, maximize=True)
    for _ in range(config.best_response_steps):
        loss = fresh(frozen).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        fresh.destabilizer.project()
    # score the trained deviation on fresh shocks (a maximum over noisy iterates is biased up)
    fresh.generator = _generator(game, seed + 1)
    with torch.no_grad():
        return fresh(frozen).regret.clamp(min=0)


def closed_form_exploitability(
    objective: MinMaxObjective, stabilizer: Stabilizer, config: MarkovConfig, *, seed: int
) -> Tensor | None:
    """φ ``[K]`` from the game's ``best_response_policy`` (None if it has none for π†)."""
    game = objective.game
    if not hasattr(game, "best_response_policy"):
        return None
    theta = stabilizer.theta().detach()
    br = game.best_response_policy(stabilizer.profile(), theta)
    if br is None:
        return None
    k = stabilizer.n_instances
    with torch.no_grad():
        estimate = estimate_regret(
            game,
            theta,
            stabilizer.profile(),
            br,
            batch_shape=(k, config.eval_environments),
            generator=_generator(game, seed),
            entropy_weight=objective.entropy_weight,
        )
    return estimate.regret.clamp(min=0)


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
        data = load_trajectories(dataset, game)
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
    theta0 = initial_theta(game, SimpleNamespace(theta_known=theta_known), config.theta_init, mask)
    check_finite("initial parameters", theta0)
    stabilizer = Stabilizer(theta0, mask, game.param_low, game.param_high, policy)
    deviation = make_deviation(game, policy, k, config, estimator=config.estimator)
    deviation = deviation.to(device=game.device, dtype=game.dtype)
    objective = MinMaxObjective(
        game,
        stabilizer,
        LearnedDeviation(deviation),
        batch_shape=(k, config.environments),
        estimator=config.estimator,
        regret_weight=config.regret_weight,
        baseline=config.baseline,
        entropy_weight=float(getattr(game, "entropy_weight", 0.0)),
        generator=_generator(game, seed),
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
    learned = trained_best_response(
        problem.objective, answer, problem.config, seed=problem.seed + 7
    )
    closed = closed_form_exploitability(
        problem.objective, answer, problem.config, seed=problem.seed + 7
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
