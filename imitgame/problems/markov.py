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
closed-form ``best_response_policy`` (:mod:`imitgame.game.hooks`). The headline figure (closed
form where there is one) is evaluated per episode, so it comes with a 95 % upper confidence bound
(mean + 1.96 standard errors over ``bound_environments`` episodes), and an instance counts as
converged when that bound is within ``algo.tol_exploitability`` (a fraction of the observed
profile's payoff scale, ``algo.tol_units=payoff``). Training always runs the full budget: the
running estimate the trainer sees is a short warm-started ascent, too noisy to stop on.

``algo.lr_theta=0`` holds θ at its configured value (``algo.theta_init`` where given, else the
env config's values or the synthetic truth) and makes the run an evaluation of π† under that θ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from imitgame.config import DataConfig, MarkovConfig
from imitgame.data.trajectories import BehaviorFit, fit_behavior_policy, load_trajectories
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame
from imitgame.game.hooks import attribute, provides
from imitgame.game.policies import DeterministicPolicy, GaussianPolicy, make_policy
from imitgame.game.strategies import Strategy
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
from imitgame.problems.bootstrap import reject_bootstrap
from imitgame.results import Results
from imitgame.solver.destabilizer import LearnedDeviation
from imitgame.solver.exploitability import (
    ascent_exploitability,
    closed_form_deviation,
    trained_best_response,
)
from imitgame.solver.forward import solve_markov_equilibrium
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.regret import DeviationRows
from imitgame.solver.rollout import episode_generator, rollout, sample_episode_noise
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
    bc_loss: float | None = None  # training fit error of the cloned policy (bc_fit.train_loss)
    bc_fit: BehaviorFit | None = None
    forward_exploitability: float | None = None

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
        if self.bc_fit is not None:
            out["loss/behavior_cloning"] = self.bc_fit.train_loss
            if self.bc_fit.holdout_loss is not None:
                out["loss/behavior_cloning_holdout"] = self.bc_fit.holdout_loss
        return out

    def results(self) -> Results:
        result = score_markov(self)
        closed = result.exploitability_closed_form
        extras = {
            "exploitability_best_response": float(result.exploitability_best_response.mean()),
            "exploitability_closed_form": None if closed is None else float(closed.mean()),
            **result.extras,
        }
        episodes = extras.get("evaluation_episodes", self.config.eval_environments)
        upper = extras.get("exploitability_upper_95")
        bound = "" if upper is None else f"; 95 % upper bound {upper:.3g}"
        results = make_results(
            self,
            "markov_inverse",
            theta_hat=result.theta_hat,
            exploitability=result.exploitability,
            exploitability_exact=closed is not None,
            stopped=~self.trainer.active,
            converged=result.converged,
            tolerance=extras.get("exploitability_tolerance"),
            extras=extras,
        )
        results.exploitability_method = (
            f"closed-form best response, {episodes} sampled episodes{bound}"
            if closed is not None
            else f"separately trained best response, a lower bound, {episodes} episodes{bound}"
        )
        return results

    def summary_lines(self, results: Results) -> list[str]:
        """The separately trained best response's figure where the headline one is the closed
        form's (otherwise it is the headline figure, and printed once)."""
        if not results.exploitability_exact:
            return []
        learned = results.extras["exploitability_best_response"]
        return [f"  exploitability  {learned:.3e} (separately trained best response, a check)"]


@dataclass
class MarkovResult:
    """The answer of a Markov inverse run, per instance ``[K]`` unless noted.

    ``exploitability`` is the headline figure: ``exploitability_closed_form`` (the game's exact
    best response, sampled) where the game has one, else ``exploitability_best_response`` (a
    separately trained deviation: a lower bound); ``exploitability_source`` names which
    (``"closed_form"`` or ``"trained_best_response"``). ``exploitability_upper_95`` is the
    headline's 95 % upper confidence bound over episodes, ``tolerance`` the bound it must meet
    (payoff units; None without ``algo.tol_exploitability``), ``payoff_scale`` Σ_i E|G_i(π†)|, and
    ``converged`` = upper bound ≤ tolerance (the trainer's stopping state when there is no
    tolerance). ``extras`` are the run-level entries for ``results.json``.
    """

    theta_hat: Tensor
    exploitability: Tensor
    exploitability_best_response: Tensor
    exploitability_closed_form: Tensor | None
    relative_error: Tensor | None
    converged: Tensor
    iterations: int
    extras: dict[str, Any] = field(default_factory=dict)
    exploitability_source: str = "trained_best_response"
    exploitability_upper_95: Tensor | None = None
    tolerance: Tensor | None = None
    payoff_scale: Tensor | None = None


def observed_policy(
    game: MarkovGame, theta: Tensor, config: MarkovConfig, seed: int
) -> tuple[Strategy, float | None]:
    """The queryable equilibrium policy under ``theta [K, p]``: closed form or forward solver
    (then also the forward solution's exploitability by a separately trained best response)."""
    if provides(game, "equilibrium_policy"):
        return game.equilibrium_policy(theta), None
    policy, exploit = solve_markov_equilibrium(game, theta, config, seed=seed)
    return policy, float(exploit.mean())


def warm_start_deviation(deviation: Strategy, observed: Strategy) -> None:
    """Start a Gaussian deviation's mean network at the observed (cloned, deterministic) policy's
    network: both play low + (high − low)·sigmoid(MLP(o)), so ρ's mean = π̂ and ψ ≈ 0 at the
    start, and ascent only follows profitable directions. A Gaussian clone
    (``algo.bc_policy=gaussian``) is copied whole, std included: ρ = π̂ and ψ = 0 in law."""
    base = getattr(observed, "inner", observed)
    if isinstance(deviation, GaussianPolicy) and isinstance(base, GaussianPolicy):
        try:
            deviation.load_state_dict(base.state_dict())
        except RuntimeError:
            raise ImitgameError(
                "algo.deviation_init=observed needs algo.bc_hidden equal to algo.hidden"
            ) from None
        return
    if not isinstance(deviation, GaussianPolicy) or not isinstance(base, DeterministicPolicy):
        raise ImitgameError(
            "algo.deviation_init=observed needs Gaussian deviations (algo.policy=gaussian) and a "
            "behaviour-cloned observed policy"
        )
    try:
        deviation.net.load_state_dict(base.net.state_dict())
    except RuntimeError:
        raise ImitgameError(
            "algo.deviation_init=observed needs algo.bc_hidden equal to algo.hidden"
        ) from None


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
    config = resolve_auto(config, game, owns_profile=True)  # learned deviations, Adam
    if config.positive_gains and config.estimator == "pathwise" and game.n_discrete_actions is None:
        # the clamp would also cut the deviation's own pathwise ascent gradient (a losing
        # deviation would never recover); score and zeroth_order deviations learn from log-probs
        raise ImitgameError("algo.positive_gains=true needs algo.estimator=score or zeroth_order")
    theta_known = theta_known.to(device=game.device, dtype=game.dtype)
    k = theta_known.shape[0]
    bc_fit, forward_exploitability = None, None
    if dataset is not None:
        data = load_trajectories(dataset, game, n_instances=k)
        if data.theta_true is not None and theta_true is None:
            theta_true = data.theta_true.to(theta_known).expand(k, game.param_dim)
        policy, bc_fit = fit_behavior_policy(
            game,
            data,
            k,
            hidden=config.bc_hidden,
            max_steps=config.bc_steps,
            lr=config.bc_lr,
            check_every=config.bc_check_every,
            patience=config.bc_patience,
            holdout=config.bc_holdout,
            tolerance=config.bc_tolerance,
            seed=seed,
            kind=config.bc_policy,
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
    if config.lr_theta == 0 and config.theta_init is None:
        theta0 = theta_known.clone()  # θ held fixed at the configured values: an evaluation
    else:
        theta0 = initial_theta(game, theta_known, config.theta_init, mask)
    stabilizer = Stabilizer(theta0, mask, game.param_low, game.param_high, policy)
    deviation = make_policy(
        game, k, config.policy, config.hidden, profile=policy, estimator=config.estimator
    ).to(device=game.device, dtype=game.dtype)
    if getattr(config, "deviation_init", "fresh") == "observed":
        warm_start_deviation(deviation, policy)
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
        smoothing_sigma=config.smoothing_sigma,
        smoothing_samples=config.smoothing_samples,
        positive_gains=config.positive_gains,
    )

    def evaluate(stab: Stabilizer) -> Tensor:
        # running estimate: a short warm-started ascent of a copy of the current deviations
        return ascent_exploitability(
            objective, stab, steps=config.eval_steps, lr=config.lr_deviation
        ).clamp(min=0)

    gda_config = config
    widths = (game.param_high - game.param_low)[mask]
    if config.lr_theta_units == "box":
        # scale-free θ steps: Adam moves each entry by about lr, so scale lr by Θ's width (and
        # each entry's step by its own width relative to the mean: box_steps below)
        gda_config = copy.copy(config)
        gda_config.lr_theta = config.lr_theta * widths.mean().item()
    # the run's length is its budget: the final 95 % bound, not the noisy running estimate,
    # decides convergence (algo.tol_exploitability is read by score_markov)
    gda_config = copy.copy(gda_config)
    gda_config.tol_exploitability = None
    trainer = GDA(objective, gda_config, evaluate=evaluate)
    if config.lr_theta_units == "box":
        box_steps(trainer, widths / widths.mean())
    return MarkovInverseProblem(
        game=game,
        config=config,
        objective=objective,
        trainer=trainer,
        learn_index=mask.nonzero().flatten().to(game.device),
        theta_true=None if theta_true is None else theta_true.to(theta_known),
        observed=policy,
        seed=seed,
        bc_loss=None if bc_fit is None else bc_fit.train_loss,
        bc_fit=bc_fit,
        forward_exploitability=forward_exploitability,
    )


def episode_regrets(
    game: MarkovGame,
    theta: Tensor,
    profile: Strategy,
    deviation: Strategy,
    *,
    episodes: int,
    generator: torch.Generator,
    entropy_weight: float = 0.0,
    chunk: int = 65536,
) -> tuple[Tensor, Tensor]:
    """ψ per episode ``[K, B]`` (Σ_i of agent i's deviation gain, common shocks across the n + 1
    rows, as :func:`~imitgame.solver.regret.estimate_regret` averages it) and the payoff scale
    Σ_i E|G_i(π)| ``[K]`` of the undeviated profile, under ``theta [K, p]``; B = ``episodes``,
    played at most ``chunk`` (instances × episodes) at a time (bounded memory)."""
    n, k = game.n_agents, theta.shape[0]
    chunk = max(1, chunk // k)
    regrets, magnitudes = [], []
    with torch.no_grad():
        for start in range(0, episodes, chunk):
            b = min(chunk, episodes - start)
            initial_noise, step_noise = sample_episode_noise(game, (k, b), generator)
            traj = rollout(
                game,
                theta.view(k, 1, theta.shape[-1]),
                DeviationRows(profile, deviation, n),
                initial_noise=initial_noise,
                step_noise=step_noise,
                batch_shape=(n + 1, k, b),
            )
            rewards = traj.rewards
            if entropy_weight:
                rewards = rewards - entropy_weight * traj.log_probs
            returns = (traj.discounts * rewards).sum(0)  # [D, K, b, n]
            deviating = torch.diagonal(returns[:n], dim1=0, dim2=-1)  # [K, b, n]
            regrets.append((deviating - returns[n]).sum(-1))
            magnitudes.append(returns[n].abs().sum(-1))
    return torch.cat(regrets, -1), torch.cat(magnitudes, -1).mean(-1)


def upper_bound_95(per_episode: Tensor) -> Tensor:
    """mean + 1.96 standard errors over episodes, ``[K, B] -> [K]``, at least 0 (φ ≥ 0)."""
    b = per_episode.shape[-1]
    se = per_episode.std(-1) / b**0.5 if b > 1 else torch.zeros_like(per_episode[..., 0])
    return (per_episode.mean(-1) + 1.96 * se).clamp(min=0)


def box_steps(trainer: GDA, ratio: Tensor) -> None:
    """Scale each learned θ entry's optimiser step by ``ratio [L]`` (its width of Θ over the mean
    width), so that with ``lr_theta_units=box`` every entry moves about ``lr_theta`` × its own
    width per step, whatever the spread of the entries' scales (Adam's step is scale-free per
    element, so this is done on the step, not the gradient). No-op when all widths are equal."""
    player = trainer.descent
    theta = trainer.stabilizer.theta_learned
    if player is None or bool((ratio == 1).all()) or not any(p is theta for p in player.params):
        return
    ratio = ratio.to(theta)
    saved: dict[str, Tensor] = {}

    def before(*_: Any) -> None:
        saved["theta"] = theta.detach().clone()

    def after(*_: Any) -> None:
        with torch.no_grad():
            old = saved.pop("theta")
            theta.copy_(old + (theta - old) * ratio)

    player.optimizer.register_step_pre_hook(before)
    player.optimizer.register_step_post_hook(after)


def score_markov(problem: MarkovInverseProblem) -> MarkovResult:
    """θ̂, exploitability of π† under θ̂ (closed form where available, and a separately trained
    best response), the headline figure's 95 % upper bound, and per-instance convergence."""
    answer = problem.trainer.answer
    theta_hat = answer.theta().detach()
    game, config, seed = problem.game, problem.config, problem.seed + 7
    episodes = config.bound_environments
    tau = problem.objective.entropy_weight
    # the separately trained best response, then scored per episode for the confidence bound
    _, fresh = trained_best_response(
        problem.objective,
        answer,
        **config.best_response_options(),
        seed=seed,
    )
    profile = answer.profile()
    learned_regret, scale = episode_regrets(
        game,
        theta_hat,
        profile,
        fresh,
        episodes=episodes,
        generator=episode_generator(game, seed + 1),
        entropy_weight=tau,
    )
    learned = learned_regret.mean(-1).clamp(min=0)
    closed, per_episode, source = None, learned_regret, "trained_best_response"
    deviation = closed_form_deviation(game, answer)
    if deviation is not None:
        per_episode, scale = episode_regrets(
            game,
            theta_hat,
            profile,
            deviation,
            episodes=episodes,
            generator=episode_generator(game, seed),
            entropy_weight=tau,
        )
        closed, source = per_episode.mean(-1).clamp(min=0), "closed_form"
    upper = upper_bound_95(per_episode)
    tolerance = None
    if config.tol_exploitability is not None:
        unit = scale if config.tol_units == "payoff" else torch.ones_like(scale)
        tolerance = config.tol_exploitability * unit
        converged = upper <= tolerance
    else:
        converged = ~problem.trainer.active  # no criterion: the trainer's own stopping state
    rel = None
    if problem.theta_true is not None:
        rel = relative_error(theta_hat, problem.theta_true, problem.learn_index)
    extras: dict[str, Any] = {
        "exploitability_source": source,
        "exploitability_upper_95": float(upper.mean()),
        "max_exploitability_upper_95": float(upper.max()),
        "exploitability_tolerance": None if tolerance is None else float(tolerance.mean()),
        "payoff_scale": float(scale.mean()),
        "evaluation_episodes": episodes,
        "theta_held_fixed": bool(problem.trainer.holds_theta),
    }
    if problem.bc_fit is not None:
        extras.update(problem.bc_fit.extras())
    if problem.forward_exploitability is not None:
        extras["forward_solver_exploitability"] = problem.forward_exploitability
    return MarkovResult(
        theta_hat=theta_hat,
        exploitability=closed if closed is not None else learned,
        exploitability_best_response=learned,
        exploitability_closed_form=closed,
        relative_error=rel,
        converged=converged,
        iterations=problem.trainer.step_count,
        extras=extras,
        exploitability_source=source,
        exploitability_upper_95=upper,
        tolerance=tolerance,
        payoff_scale=scale,
    )


def build(
    game: MarkovGame, algo: MarkovConfig, data: DataConfig, seed: int
) -> MarkovInverseProblem:
    """The registry's builder: a trajectory file (θ's known entries from the env config), or the
    queryable equilibrium policy under the synthetic truth."""
    reject_bootstrap(data, "markov_inverse")
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
