"""Gambit .nfg import/export and λ estimation through pygambit."""

import pytest
import torch

from envs.rps import RockPaperScissors
from envs.volunteer import Volunteer
from imitgame.errors import ImitgameError

pytest.importorskip("pygambit")

from imitgame.game.gambit import gambit_estimate, read_nfg, write_nfg  # noqa: E402


def test_nfg_round_trip_marks_unknown_payoffs(tmp_path, float64) -> None:
    game = Volunteer()
    theta = game.true_params
    path = write_nfg(game, theta, tmp_path / "volunteer.nfg")
    loaded = read_nfg(path, ["0:1,0,0", (2, (1, 1, 0))])
    assert loaded.n_agents == 3 and loaded.n_actions == [2, 2, 2]
    assert loaded.learned_params == ["u0_1_0_0", "u2_1_1_0"]
    assert loaded.true_params[:2].tolist() == [2.0 - 0.5, 2.0]  # V − c_0; player 2 stays out
    assert torch.allclose(loaded.payoff_tensor(loaded.true_params), game.payoff_tensor(theta))
    assert loaded.action_names[0] == ["stay_out", "volunteer"]


def test_nfg_errors(tmp_path) -> None:
    with pytest.raises(ImitgameError, match="no .nfg file"):
        read_nfg(tmp_path / "missing.nfg", ["0:0,0"])
    bad = tmp_path / "bad.nfg"
    bad.write_text("not a game")
    with pytest.raises(ImitgameError, match="not a readable"):
        read_nfg(bad, ["0:0,0"])
    path = write_nfg(RockPaperScissors(), RockPaperScissors().true_params, tmp_path / "rps.nfg")
    with pytest.raises(ImitgameError, match="player:a_1"):
        read_nfg(path, ["0-1"])
    with pytest.raises(ImitgameError, match="outside"):
        read_nfg(path, ["0:5,0"])


def test_gambit_estimate_on_exact_frequencies(float64) -> None:
    """Counts proportional to the QRE at λ = 1.5: Gambit's MLE λ is 1.5."""
    game = RockPaperScissors(qre_lambda=1.5)
    theta = game.true_params
    counts = game.equilibrium(theta[None])[0] * 1000
    lam, seconds = gambit_estimate(game, theta, counts)
    assert abs(lam - 1.5) < 1e-4 and seconds >= 0
