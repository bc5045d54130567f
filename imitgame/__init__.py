"""imitgame: inverse game theory and inverse multiagent RL by gradient descent ascent on regret.

Layers, bottom up (each imports only the ones above it in this list):

* :mod:`imitgame.game` — the game contract: :class:`MarkovGame`, :class:`StaticGame`, the optional
  hooks a game may declare (:mod:`imitgame.game.hooks`), strategies and policy networks;
* :mod:`imitgame.solver` — one regret estimator, the stabilizer, the destabilizer, the GDA
  trainer, exploitability and the forward solver;
* :mod:`imitgame.data` — observed play (one-shot games) and trajectory files (Markov games);
* :mod:`imitgame.problems` — the registry of problem kinds (inverse, Markov inverse, simulacral);
* :mod:`imitgame.run` — the runner, tracking, checkpoints and the command-line entry layer.

:mod:`imitgame.config` holds every config schema, :mod:`imitgame.errors` the one-line errors,
:mod:`imitgame.checkpoint` atomic saves; :mod:`imitgame.testing` has ``check_game``.
"""

from importlib import metadata as _metadata

from imitgame.config import AlgoConfig, DataConfig, GDAConfig, MarkovConfig, SimulacralConfig
from imitgame.data.observed import ObservedPlay, load_observed, simulate_observed
from imitgame.data.trajectories import load_trajectories, save_trajectories
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.strategies import ActionProfile, ActionSample, Strategy
from imitgame.problems import PROBLEMS, ProblemSpec, register_problem
from imitgame.problems.inverse import build_inverse, solve_inverse
from imitgame.results import Results, load_run
from imitgame.solver.destabilizer import BestResponseOracle, Destabilizer, LearnedDeviation
from imitgame.solver.forward import solve_equilibrium
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.regret import RegretEstimate, estimate_regret
from imitgame.solver.rollout import Trajectory, rollout, sample_trajectories
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA

try:
    __version__: str = _metadata.version("imitgame")  # the installed distribution's metadata
except _metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "GDA",
    "PROBLEMS",
    "ActionProfile",
    "ActionSample",
    "AlgoConfig",
    "BestResponseOracle",
    "DataConfig",
    "Destabilizer",
    "DivergenceError",
    "GDAConfig",
    "ImitgameError",
    "LearnedDeviation",
    "MarkovConfig",
    "MarkovGame",
    "MinMaxObjective",
    "ObservedPlay",
    "ProblemSpec",
    "RegretEstimate",
    "Results",
    "SimulacralConfig",
    "Stabilizer",
    "StaticGame",
    "Strategy",
    "Trajectory",
    "build_inverse",
    "estimate_regret",
    "load_observed",
    "load_run",
    "load_trajectories",
    "register_problem",
    "rollout",
    "sample_trajectories",
    "save_trajectories",
    "simulate_observed",
    "solve_equilibrium",
    "solve_inverse",
    "__version__",
]
