"""The problem contract, the registry, and the helpers every problem shares.

A *problem* is one choice of what the stabilizer owns (DESIGN.md §1): inverse learning of a
one-shot game, inverse learning of a Markov game, simulacral learning, ... Each is a module in
``imitgame/problems/`` that registers a :class:`ProblemSpec` — its name (the ``algo.problem`` key),
its config schema and a ``build`` function — and returns a :class:`Problem` that the one runner
(:mod:`imitgame.run.runner`) drives without knowing which kind it is:

    problem = spec.build(game, algo, data, seed)   # wire stabilizer, destabilizer, trainer
    for record in problem.trainer.iterate():       # the one GDA trainer
        problem.on_record(record)                  # per-evaluation hook (e.g. λ's dual ascent)
    problem.results()                              # a typed Results (results.json)
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from imitgame.config import AlgoConfig, DataConfig
from imitgame.errors import ImitgameError, check_finite
from imitgame.game.base import MarkovGame
from imitgame.results import Results
from imitgame.solver.trainer import GDA, EvalRecord


class Problem(Protocol):
    """What the runner needs of a wired problem."""

    game: MarkovGame
    trainer: GDA  # the one trainer, wired for this problem
    learn_index: Tensor  # indices of the learned θ entries [L]
    theta_true: Tensor | None  # [K, p] where known (synthetic data), for scoring only

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        """Called at every evaluation; returns extra TensorBoard scalars (``name -> value``)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Problem state beyond the trainer's, for checkpoints (e.g. λ, the rollout RNG)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def results(self) -> Results:
        """The scored answer (see :func:`make_results`)."""
        ...

    def save_artifacts(self, run_dir: Path, env_config: dict[str, Any]) -> None:
        """Files besides results.json (e.g. a fitted model)."""
        ...

    def summary_lines(self, results: Results) -> list[str]:
        """The problem's own lines of the console summary."""
        ...


Builder = Callable[[MarkovGame, Any, DataConfig, int], Problem]


@dataclass(frozen=True)
class ProblemSpec:
    """A registry entry: ``build(game, algo, data, seed)`` wires the problem; ``config`` types
    ``algo``; ``game_type`` is the game class it accepts."""

    name: str
    config: type[AlgoConfig]
    build: Builder
    game_type: type[MarkovGame]
    description: str


PROBLEMS: dict[str, ProblemSpec] = {}


def register_problem(spec: ProblemSpec) -> ProblemSpec:
    """Add a problem kind; ``algo.problem=<spec.name>`` selects it."""
    if spec.name in PROBLEMS and PROBLEMS[spec.name] is not spec:
        raise ValueError(f"a problem named {spec.name!r} is already registered")
    PROBLEMS[spec.name] = spec
    return spec


def default_problem(game: MarkovGame) -> str:
    """The problem a game gets when ``algo.problem`` is not set: inverse learning of its kind
    (the most specific registered ``inverse`` entry whose game type it is)."""
    from imitgame.game.base import StaticGame

    return "inverse" if isinstance(game, StaticGame) else "markov_inverse"


def problem_spec(name: str | None, game: MarkovGame) -> ProblemSpec:
    """The registry entry for ``algo.problem`` (None: :func:`default_problem`; ``module:name``
    imports ``module`` first, which registers ``name``), checked against the game."""
    key = default_problem(game) if name is None else name
    if ":" in key:  # module:name — import the module that registers the problem
        module, key = key.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImitgameError(f"algo.problem: cannot import {module!r} ({err})") from None
    if key not in PROBLEMS:
        raise ImitgameError(f"algo.problem={key!r} is not one of {', '.join(PROBLEMS)}")
    spec = PROBLEMS[key]
    if not isinstance(game, spec.game_type):
        raise ImitgameError(
            f"algo.problem={key} needs a {spec.game_type.__name__}; "
            f"{type(game).__name__} is not one"
        )
    return spec


# --- helpers every problem shares --------------------------------------------------------------
def resolve_auto(algo: AlgoConfig, game: MarkovGame, *, owns_profile: bool) -> AlgoConfig:
    """``algo`` with its ``auto`` choices made: the destabilizer is the game's exact best
    response where it has one (else learned deviations); θ takes quasi-Newton (L-BFGS) steps
    when the stabilizer owns θ alone against an exact oracle in float64 — the inner max is then
    exact and min_θ φ(θ) an ordinary minimisation — and Adam steps otherwise. (L-BFGS shares one
    line search across the K instances of a batch, so a batch is not bit-identical to K single
    runs as it is with Adam; each instance's convergence is still judged on its own.)"""
    from imitgame.game.base import StaticGame

    algo = copy.copy(algo)
    if algo.destabilizer == "auto":
        exact = isinstance(game, StaticGame) and game.has_best_response
        algo.destabilizer = "best_response" if exact else "learned"
    if algo.optimizer == "auto":
        # float32: a line search on φ values at round-off stops early and silently; Adam does not
        quasi_newton = (
            algo.destabilizer == "best_response"
            and not owns_profile
            and algo.method == "plain"
            and game.dtype == torch.float64
        )
        algo.optimizer = "lbfgs" if quasi_newton else "adam"
    return algo


def learn_mask(game: MarkovGame) -> Tensor:
    """Boolean ``[p]``: the entries of θ that are learned (``game.learned_params``)."""
    return torch.tensor([n in game.learned_params for n in game.param_names], device=game.device)


def synthetic_theta(game: MarkovGame, data: DataConfig, generator: torch.Generator) -> Tensor:
    """Synthetic truth ``[K, p]`` on the game's device: the env's ``true_params``, learned entries
    spread to θ·(1 + spread·U(−1, 1)) per instance (``data.param_spread``), kept inside Θ."""
    if game.true_params is None:
        raise ImitgameError(f"{type(game).__name__} has no true_params to simulate data from")
    k = data.instances
    # drawn on the CPU so that the data are the same on every device
    theta = game.true_params.detach().cpu().expand(k, game.param_dim).clone()
    if data.param_spread > 0:
        learn = learn_mask(game).cpu()
        u = torch.rand(theta.shape, generator=generator, dtype=theta.dtype) * 2 - 1
        spread = theta * (1 + data.param_spread * u)
        theta = torch.where(learn, spread, theta)
        low, high = game.param_low.detach().cpu(), game.param_high.detach().cpu()
        theta = torch.maximum(torch.minimum(theta, high), low)
    return theta.to(game.device)


def initial_theta(game: MarkovGame, known: Tensor, init: Any, mask: Tensor) -> Tensor:
    """The stabilizer's starting θ ``[K, p]``: entries outside ``mask`` from ``known [K, p]``,
    learned ones from ``init`` (``algo.theta_init``: one value or one per learned entry; None:
    the centre of Θ)."""
    theta = known.clone()
    centre = 0.5 * (game.param_low + game.param_high)
    if init is None:
        start = centre
    elif isinstance(init, str):
        raise ImitgameError(f"algo.theta_init={init!r}: a list of values or null here")
    else:
        values = torch.as_tensor(list(init), dtype=theta.dtype, device=theta.device)
        n_learned = int(mask.sum())
        if values.numel() not in (1, n_learned):
            raise ImitgameError(
                f"algo.theta_init has {values.numel()} values for {n_learned} learned entries"
            )
        start = centre.clone()
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


def converged_instances(
    stopped: Tensor, exploitability: Tensor, tolerance: float | None, tol_step: float | None
) -> Tensor | None:
    """Per instance ``[K]``: stopped by the trainer's criteria, or final exploitability within
    ``tolerance``; None when the run has no criterion at all (convergence was not tested)."""
    if tolerance is None:
        return stopped if tol_step is not None else None
    return stopped | (exploitability.to(stopped.device) <= tolerance)


def make_results(
    problem: Problem,
    name: str,
    *,
    theta_hat: Tensor,
    exploitability: Tensor,
    exploitability_exact: bool,
    stopped: Tensor,
    identified: Tensor | None = None,
    identifiability_rank: Tensor | None = None,
    extras: dict[str, Any] | None = None,
    converged: Tensor | None = None,
    tolerance: float | None = None,
) -> Results:
    """The :class:`~imitgame.results.Results` of a problem whose trainer has run: ``stopped [K]``
    are the instances its stopping criteria froze (see :func:`converged_instances`). A problem
    with its own convergence test (e.g. a confidence bound) passes ``converged [K]`` and the
    ``tolerance`` it used instead."""
    game = problem.game
    if tolerance is None:
        tolerance = problem.trainer.config.tol_exploitability
    if converged is None:
        converged = converged_instances(
            stopped, exploitability, tolerance, problem.trainer.config.tol_step
        )
    cpu = lambda t: None if t is None else t.detach().cpu()  # noqa: E731
    return Results(
        problem=name,
        param_names=list(game.param_names),
        learned_params=[game.param_names[i] for i in problem.learn_index.tolist()],
        theta_hat=cpu(theta_hat),
        theta_true=cpu(problem.theta_true),
        exploitability=cpu(exploitability),
        exploitability_exact=exploitability_exact,
        converged=cpu(converged),
        identified=cpu(identified),
        identifiability_rank=cpu(identifiability_rank),
        iterations=problem.trainer.step_count,
        tol_exploitability=tolerance,
        extras=dict(extras or {}),
    )


class ProblemDefaults:
    """Default (no-op) hooks of the :class:`Problem` protocol, for a problem class to inherit."""

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def save_artifacts(self, run_dir: Path, env_config: dict[str, Any]) -> None:
        return None

    def summary_lines(self, results: Results) -> list[str]:
        return []
