"""imitgame: inverse game theory and inverse multiagent RL by gradient descent ascent on regret."""

from imitgame.destabilizer import BestResponseOracle, Destabilizer, LearnedDeviation
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.games import MarkovGame, StaticGame
from imitgame.gda import GDA, GDAConfig
from imitgame.objective import MinMaxObjective
from imitgame.regret import RegretEstimate, estimate_regret
from imitgame.rollout import Trajectory, rollout
from imitgame.stabilizer import Stabilizer
from imitgame.strategies import ActionProfile, ActionSample, Strategy

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
