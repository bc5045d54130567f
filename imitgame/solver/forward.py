"""Forward solving: equilibria of a game under known θ, by the same GDA trainer.

The stabilizer owns the profile π (θ fixed), the destabilizer ρ; minimising max_ρ ψ(π, ρ; θ)
drives π to a Nash equilibrium. This yields observed equilibria for games without closed forms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from imitgame.config import GDAConfig
from imitgame.game.base import StaticGame
from imitgame.game.strategies import ActionProfile
from imitgame.solver.destabilizer import BestResponseOracle, LearnedDeviation
from imitgame.solver.exploitability import make_evaluator
from imitgame.solver.objective import MinMaxObjective
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
