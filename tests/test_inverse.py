"""Inverse Cournot end to end through the library API, with the shipped default algo config."""

import pytest
import torch

from envs.cournot import Cournot
from imitgame.config import AlgoConfig, typed
from imitgame.data.observed import simulate_observed
from imitgame.game.base import StaticGame
from imitgame.problems.inverse import solve_inverse
from tests.conftest import compose_config

pytestmark = pytest.mark.usefixtures("float64")


def default_algo(**overrides) -> AlgoConfig:
    cfg = compose_config("env=cournot", *[f"algo.{k}={v}" for k, v in overrides.items()])
    return typed(AlgoConfig, cfg.algo, "algo")


@pytest.mark.parametrize("n_firms", [2, 10])
def test_recovers_heterogeneous_costs(n_firms):
    game = Cournot(n_firms=n_firms)
    observed = simulate_observed(game, game.true_params[None])
    result = solve_inverse(game, observed, default_algo())
    assert result.relative_error.item() <= 1e-3
    assert result.exploitability.item() < 1e-6
    assert bool(result.identified.all())


def test_recovers_many_instances_with_different_costs():
    game = Cournot(n_firms=3)
    gen = torch.Generator().manual_seed(1)
    theta = game.true_params.expand(16, -1).clone()
    theta[:, :3] = 5 + 30 * torch.rand(16, 3, generator=gen)
    result = solve_inverse(game, simulate_observed(game, theta), default_algo())
    assert result.relative_error.max().item() <= 1e-3


def test_costs_and_intercept_from_several_markets():
    game = Cournot(
        n_firms=3,
        learn=["costs", "intercept"],
        demand_shifters=[0.8, 1.0, 1.4],
        intercept_bounds=[50.0, 200.0],
    )
    observed = simulate_observed(game, game.true_params[None])
    result = solve_inverse(game, observed, default_algo(destabilizer="best_response"))
    assert bool(result.identified.all())
    assert result.relative_error.item() <= 1e-3


def test_unidentified_parameters_are_flagged_and_solved_as_inverse_equilibrium():
    """From one market, costs and intercept shift together: not identified, yet θ̂ must make
    the observed play an equilibrium (exploitability ≈ 0)."""
    game = Cournot(n_firms=3, learn=["costs", "intercept"], intercept_bounds=[50.0, 200.0])
    observed = simulate_observed(game, game.true_params[None])
    result = solve_inverse(game, observed, default_algo(destabilizer="best_response"))
    assert not bool(result.identified.any())
    assert result.exploitability.item() < 1e-6


def test_best_response_oracle_destabilizer():
    game = Cournot(n_firms=4)
    observed = simulate_observed(game, game.true_params[None])
    result = solve_inverse(game, observed, default_algo(destabilizer="best_response"))
    assert result.relative_error.item() <= 1e-3


def test_noisy_observations_degrade_gracefully():
    game = Cournot(n_firms=3)
    gen = torch.Generator().manual_seed(0)
    theta = game.true_params.expand(1, -1)
    observed = simulate_observed(game, theta, noise_std=0.01, generator=gen)
    result = solve_inverse(game, observed, default_algo())
    assert result.relative_error.item() < 0.1


def test_lbfgs_against_the_exact_oracle_solves_the_ill_conditioned_markets_problem():
    """Costs and the intercept from 3 markets (the README's example): Adam stalls in the valley
    along which costs and intercept shift together; quasi-Newton steps on the exact φ(θ) do not."""
    torch.set_default_dtype(torch.float64)
    game = Cournot(learn=("costs", "intercept"), demand_shifters=[0.8, 1.0, 1.4])
    observed = simulate_observed(game, game.true_params[None])
    algo = AlgoConfig(
        destabilizer="best_response",
        optimizer="lbfgs",
        iterations=300,
        tol_exploitability=1e-9,
        tol_step=1e-10,
    )
    result = solve_inverse(game, observed, algo)
    assert float(result.relative_error[0]) < 1e-5
    assert result.all_converged


def test_auto_choices_follow_the_game():
    from envs.fish_war import FishWar
    from imitgame.problems.base import resolve_auto

    torch.set_default_dtype(torch.float64)
    auto = AlgoConfig(destabilizer="auto", optimizer="auto")
    static = resolve_auto(auto, Cournot(), owns_profile=False)
    assert (static.destabilizer, static.optimizer) == ("best_response", "lbfgs")
    forward = resolve_auto(auto, Cournot(), owns_profile=True)
    assert forward.optimizer == "adam"
    markov = resolve_auto(auto, FishWar(), owns_profile=True)
    assert (markov.destabilizer, markov.optimizer) == ("learned", "adam")


class _RootGame(StaticGame):
    """u_i = √θ_i a_i − a_i²/2: undefined for θ < 0, so a line search must stay inside Θ."""

    def __init__(self) -> None:
        super().__init__(
            n_agents=1,
            action_dim=1,
            action_low=0.0,
            action_high=10.0,
            param_names=["theta"],
            param_low=0.01,
            param_high=10.0,
            true_params=[0.05],
        )

    def payoffs(self, actions, theta, context=None):
        a = actions[..., 0]
        return theta.sqrt() * a - 0.5 * a**2

    def best_response(self, actions, theta, context=None):
        return theta.sqrt().unsqueeze(-1).expand_as(actions).clone()

    def equilibrium(self, theta, context=None):
        return theta.sqrt()[..., None]  # [..., n = 1, d = 1]


def test_lbfgs_never_evaluates_the_game_outside_its_parameter_box():
    game = _RootGame()
    observed = simulate_observed(game, game.true_params[None])
    algo = AlgoConfig(destabilizer="best_response", optimizer="lbfgs", iterations=200)
    result = solve_inverse(game, observed, algo)
    assert abs(float(result.theta_hat[0, 0]) - 0.05) < 1e-6
