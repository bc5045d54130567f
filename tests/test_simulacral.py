"""Simulacral learning (Algorithm 3) in the one GDA trainer: a known market of which only prices
are observed; θ recovered against the truth, the fitted profile an equilibrium."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from envs.electricity import ElectricityMarket, ElectricityMeritMarket
from imitgame.errors import ImitgameError
from imitgame.problems.simulacral import (
    SimulacralConfig,
    build_simulacral,
    fit,
    score,
    simulate_observations,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def float64():
    previous, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)  # small tensors: extra threads only add overhead on a busy CPU
    yield
    torch.set_default_dtype(previous)
    torch.set_num_threads(threads)


def config(**overrides) -> SimulacralConfig:
    base = dict(
        iterations=4000,
        lr_theta=5.0,
        lr_profile=1.0,
        destabilizer="best_response",
        schedule="cosine",
        lr_final_fraction=0.001,
        eval_every=500,
        tol_exploitability=None,
        tol_step=None,
    )
    base.update(overrides)
    return SimulacralConfig(**base)


def test_prices_only_recover_theta():
    # hour intercepts, 14 shared slopes, 6 weekday shifts: 44 demand weights, seen only via prices
    game = ElectricityMarket(per_hour_slopes=False, synthetic_hours=400, synthetic_seed=3)
    contexts = game.observed_contexts()
    theta_true = game.true_params[None]
    prices = simulate_observations(game, theta_true, contexts[None])
    assert prices.shape == (1, 400, 1)
    problem = build_simulacral(game, contexts, prices, config())
    start = score(problem, theta_true)
    records = fit(problem)
    result = score(problem, theta_true)
    assert start.relative_error.item() == pytest.approx(1.0)  # demand weights start at 0
    assert result.relative_error.item() < 1e-2
    assert result.equilibrium_mse.item() < 1e-2  # EUR²/MWh², prices have std ≈ 10
    assert result.exploitability.item() < 1e-4  # the fitted profile is an equilibrium
    assert result.equilibrium_exploitability.item() < 1e-9
    assert records[-1].observation_loss.item() < 1e-3 * records[0].observation_loss.item()


def test_zero_weight_observations_are_ignored():
    """Observation weights ω enter L_obs: prices corrupted on a quarter of the hours but weighted
    0 leave θ recoverable; weighted 1 they do not."""
    game = ElectricityMarket(per_hour_slopes=False, synthetic_hours=400, synthetic_seed=3)
    contexts = game.observed_contexts()
    theta_true = game.true_params[None]
    prices = simulate_observations(game, theta_true, contexts[None])
    corrupted = prices.clone()
    corrupted[:, 300:] += 50.0
    weights = torch.ones(400)
    weights[300:] = 0.0
    ignored = build_simulacral(game, contexts, corrupted, config(), weights)
    fit(ignored)
    assert score(ignored, theta_true).relative_error.item() < 1e-2
    trusted = build_simulacral(game, contexts, corrupted, config(iterations=1000))
    fit(trusted)
    assert score(trusted, theta_true).relative_error.item() > 0.05


def test_equilibrium_profile_with_lbfgs_recovers_theta():
    """algo.profile=equilibrium: π is the game's closed-form equilibrium under θ, so θ alone is
    learned, by quasi-Newton steps; the same truth as above is recovered to high precision."""
    game = ElectricityMarket(per_hour_slopes=False, synthetic_hours=400, synthetic_seed=3)
    contexts = game.observed_contexts()
    theta_true = game.true_params[None]
    prices = simulate_observations(game, theta_true, contexts[None])
    cfg = config(profile="equilibrium", optimizer="lbfgs", iterations=10, lr_theta=1.0)
    problem = build_simulacral(game, contexts, prices, cfg)
    assert problem.trainer.descent.params == [problem.trainer.stabilizer.theta_learned]
    fit(problem)
    result = score(problem, theta_true)
    assert result.relative_error.item() < 1e-6
    assert result.exploitability.item() < 1e-9  # the profile is the equilibrium by construction


def test_theta_init_game_starts_at_the_games_own_theta():
    """algo.theta_init=game: every entry, learned ones too, starts at game.initial_theta();
    the default (null) starts learned entries at the centre of Θ."""
    game = ElectricityMeritMarket(synthetic_days=2)  # costs 5, 35, 45, 30; Θ's centre 50
    contexts = game.observed_contexts()
    prices = torch.zeros(48, 1)
    own = build_simulacral(game, contexts, prices, config(theta_init="game"))
    assert torch.equal(own.trainer.stabilizer.theta()[0], game.initial_theta())
    centre = build_simulacral(game, contexts, prices, config())
    assert not torch.equal(centre.trainer.stabilizer.theta()[0], game.initial_theta())


def test_dual_lambda_rises_with_regret():
    game = ElectricityMarket(per_hour_slopes=False, synthetic_hours=50)
    contexts = game.observed_contexts()
    prices = simulate_observations(game, game.true_params[None], contexts[None])
    problem = build_simulacral(
        game, contexts, prices, config(iterations=20, eval_every=10, lambda_update="dual")
    )
    fit(problem)
    assert problem.regret_weight > 1.0


def test_bad_input():
    game = ElectricityMarket(per_hour_slopes=False, synthetic_hours=20)
    contexts = game.observed_contexts()
    with pytest.raises(ImitgameError, match="observations"):
        build_simulacral(game, contexts, torch.zeros(19, 1), config())
    with pytest.raises(ImitgameError, match="NaN"):
        build_simulacral(game, contexts, torch.full((20, 1), float("nan")), config())
    prices = torch.zeros(20, 1)
    with pytest.raises(ImitgameError, match="observation weights"):
        build_simulacral(game, contexts, prices, config(), torch.ones(19))
    with pytest.raises(ImitgameError, match="observation weights"):
        build_simulacral(game, contexts, prices, config(), -torch.ones(20))
    with pytest.raises(ImitgameError, match="lambda_update"):
        config(lambda_update="sometimes")
    with pytest.raises(ImitgameError, match="algo.profile=equilibrium"):
        config(optimizer="lbfgs")  # a learned profile is projected: no quasi-Newton steps


class MarketWithoutClosedForm(ElectricityMarket):
    """The same market, its closed-form equilibrium withheld."""

    @property
    def has_equilibrium(self) -> bool:
        return False


def test_equilibrium_profile_needs_a_closed_form():
    game = MarketWithoutClosedForm(per_hour_slopes=False, synthetic_hours=20)
    contexts = game.observed_contexts()
    with pytest.raises(ImitgameError, match="needs a closed-form equilibrium"):
        build_simulacral(game, contexts, torch.zeros(20, 1), config(profile="equilibrium"))


def test_train_entry_point_synthetic(tmp_path):
    cmd = [
        sys.executable,
        "train.py",
        "env=electricity",
        "algo=simulacral",
        "env.data_path=null",
        "env.per_hour_slopes=false",
        "env.synthetic_hours=100",
        "algo.iterations=30",
        "algo.eval_every=10",
        "progress=false",
        f"hydra.run.dir={tmp_path}",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("results.json", "model.pt", "checkpoint.pt", "convergence.png", "config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tb").iterdir())
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["theta_true"] is not None and results["relative_error"] is not None
