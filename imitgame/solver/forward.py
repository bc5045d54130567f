"""Forward solving: equilibria of a game under known θ, by the same GDA trainer.

The stabilizer owns the profile π (θ fixed), the destabilizer ρ; minimising max_ρ ψ(π, ρ; θ)
drives π to a Nash equilibrium. This yields observed equilibria for games without closed forms.
:func:`solve_equilibrium` is the one entry point: one-shot games get an action profile (an exact
best-response oracle where the game has one), Markov games a joint policy network.
"""

from __future__ import annotations

import torch
from torch import Tensor

from imitgame.config import GDAConfig, MarkovConfig
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.hooks import attribute
from imitgame.game.policies import make_policy
from imitgame.game.strategies import ActionProfile, Strategy
from imitgame.solver.destabilizer import BestResponseOracle, LearnedDeviation
from imitgame.solver.exploitability import make_evaluator, trained_best_response
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.rollout import episode_generator
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA

DEFAULT_FORWARD = GDAConfig(
    iterations=5000,
    lr_profile=0.2,
    lr_deviation=0.4,
    schedule="cosine",
    eval_every=100,
    tol_exploitability=1e-10,
    tol_step=1e-9,
)


def solve_static_equilibrium(
    game: StaticGame,
    theta: Tensor,
    state0: Tensor | None = None,
    *,
    n_observations: int = 1,
    config: GDAConfig = DEFAULT_FORWARD,
    init: Tensor | None = None,
    use_oracle: bool = True,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """Equilibrium actions ``[K, B, n, d]`` and their exploitability ``[K]`` under
    ``theta [K, p]`` in contexts ``state0 [K, B, s]`` (or B = ``n_observations`` without)."""
    k = theta.shape[0]
    b = state0.shape[1] if state0 is not None else n_observations
    shape = (k, b, game.n_agents, game.action_dim)
    if init is None:
        init = (0.5 * (game.action_low + game.action_high)).expand(shape)
        init = torch.minimum(init, game.action_low + 1.0)  # start low: most games are interior
    profile = ActionProfile(init.expand(shape), game.action_low, game.action_high)
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool)
    stabilizer = Stabilizer(theta, no_theta, game.param_low, game.param_high, profile)
    exact = use_oracle and game.has_best_response
    if exact:
        destabilizer = BestResponseOracle(game, state0)
    else:
        destabilizer = LearnedDeviation(
            ActionProfile(init.expand(shape), game.action_low, game.action_high)
        )
    objective = MinMaxObjective(game, stabilizer, destabilizer, batch_shape=(k, b), state0=state0)
    evaluate = make_evaluator(objective, exact=game.has_best_response)
    trainer = GDA(objective, config, evaluate=evaluate)
    records = list(trainer.iterate(progress=progress))
    record = records[-1] if records else None
    answer = trainer.answer.profile().actions.detach().clone()
    exploit = record.exploitability if record is not None else evaluate(trainer.answer)
    return answer, exploit if exploit is not None else torch.full((k,), float("nan"))


def solve_markov_equilibrium(
    game: MarkovGame, theta: Tensor, config: MarkovConfig, *, seed: int = 0
) -> tuple[Strategy, Tensor]:
    """A Markov game's equilibrium policy under ``theta [K, p]``: the stabilizer owns a joint
    policy network (categorical for discrete actions, deterministic otherwise), the destabilizer
    one deviation per agent, for ``config.forward_iterations``. Returns the frozen policy and its
    exploitability ``[K]`` by a separately trained best response."""
    k = theta.shape[0]
    discrete = game.n_discrete_actions is not None
    # a simulator without derivatives (imitgame.adapters: ``differentiable = False``) is solved
    # by the score function with Gaussian policies
    black_box = not attribute(game, "differentiable")
    estimator = "score" if discrete or black_box else config.estimator
    kind = "gaussian" if black_box and not discrete else "deterministic"
    profile = make_policy(game, k, kind, config.hidden, estimator=estimator)
    profile = profile.to(device=game.device, dtype=game.dtype)
    no_theta = torch.zeros(game.param_dim, dtype=torch.bool, device=game.device)
    stabilizer = Stabilizer(theta, no_theta, game.param_low, game.param_high, profile)
    deviation = make_policy(game, k, kind, config.hidden, estimator=estimator).to(
        device=game.device, dtype=game.dtype
    )
    objective = MinMaxObjective(
        game,
        stabilizer,
        LearnedDeviation(deviation),
        batch_shape=(k, config.environments),
        estimator=estimator,
        baseline=config.baseline,
        entropy_weight=float(attribute(game, "entropy_weight")),
        generator=episode_generator(game, seed),
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
    exploit, _ = trained_best_response(
        objective,
        trainer.stabilizer,
        policy=config.policy,
        hidden=config.hidden,
        steps=config.best_response_steps,
        lr=config.best_response_lr,
        environments=config.eval_environments,
        seed=seed + 1,
    )
    return profile, exploit


def solve_equilibrium(
    game: MarkovGame,
    theta: Tensor,
    contexts: Tensor | None = None,
    *,
    config: GDAConfig | MarkovConfig | None = None,
    seed: int = 0,
) -> tuple[Strategy, Tensor]:
    """An equilibrium of ``game`` under ``theta [K, p]`` and its exploitability ``[K]``.

    One-shot games: an :class:`ActionProfile` ``[K, B, n, d]`` in ``contexts [K, B, s]``
    (``config``: a :class:`GDAConfig`, default :data:`DEFAULT_FORWARD`); Markov games: a frozen
    joint policy (``config``: a :class:`MarkovConfig`, default its defaults)."""
    if isinstance(game, StaticGame):
        actions, exploit = solve_static_equilibrium(
            game, theta, contexts, config=config or DEFAULT_FORWARD
        )
        return ActionProfile(actions, game.action_low, game.action_high, learnable=False), exploit
    return solve_markov_equilibrium(game, theta, config or MarkovConfig(), seed=seed)
