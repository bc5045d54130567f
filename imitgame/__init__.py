"""imitgame: inverse game theory and inverse multiagent RL by gradient descent ascent on regret."""

from imitgame.config import GDAConfig
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.strategies import ActionProfile, ActionSample, Strategy
from imitgame.solver.destabilizer import BestResponseOracle, Destabilizer, LearnedDeviation
from imitgame.solver.objective import MinMaxObjective
from imitgame.solver.regret import RegretEstimate, estimate_regret
from imitgame.solver.rollout import Trajectory, rollout
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA

__all__ = [
    "GDA",
    "ActionProfile",
    "ActionSample",
    "BestResponseOracle",
    "Destabilizer",
    "DivergenceError",
    "GDAConfig",
    "ImitgameError",
    "LearnedDeviation",
    "MarkovGame",
    "MinMaxObjective",
    "RegretEstimate",
    "Stabilizer",
    "StaticGame",
    "Strategy",
    "Trajectory",
    "estimate_regret",
    "rollout",
]
