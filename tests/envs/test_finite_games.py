"""The shipped finite games (rps, security_game, coordination, volunteer): check_game."""

import pytest

from envs.coordination import Coordination
from envs.rps import RockPaperScissors
from envs.security_game import SecurityGame
from envs.volunteer import Volunteer
from imitgame.testing import check_game

GAMES = [RockPaperScissors, SecurityGame, Coordination, Volunteer]


@pytest.mark.parametrize("cls", GAMES)
def test_check_game(cls, float64) -> None:
    report = check_game(cls())
    assert "equilibrium has zero exploitability" in report.checks
    assert "best responses beat gradient ascent" in report.checks
