"""Inverse multiagent RL on Markov games (Algorithm 2): recovery, both observed-behaviour paths,
the Markov forward solver."""

import pytest
import torch

from envs.fish_war import FishWar
from imitgame.config import MarkovConfig
from imitgame.data.trajectories import save_trajectories
from imitgame.problems.markov import build_markov_inverse, score_markov
from imitgame.solver.forward import solve_markov_equilibrium
from imitgame.solver.rollout import sample_trajectories


def _config(**kw) -> MarkovConfig:
    base = dict(
        iterations=150,
        environments=32,
        hidden=[],
        lr_theta=0.004,
        lr_deviation=0.05,
        ascent_steps=3,
        schedule="cosine",
        lr_final_fraction=0.01,
        averaging="uniform",
        eval_every=50,
        eval_steps=5,
        tol_exploitability=None,
        tol_step=None,
        best_response_steps=100,
        eval_environments=256,
        variance_batches=2,
    )
    base.update(kw)
    return MarkovConfig(**base)


def _run(problem):
    records = list(problem.trainer.iterate(progress=False))
    return records, score_markov(problem)


def test_fish_war_alpha_recovered_from_a_queryable_policy() -> None:
    torch.manual_seed(0)
    game = FishWar(horizon=6).double()
    theta = game.true_params[None].clone()
    problem = build_markov_inverse(game, _config(), theta_true=theta, theta_known=theta)
    records, result = _run(problem)
    assert result.relative_error.item() < 0.02
    # the truth was only used to score: the start was the centre of Θ
    assert abs(records[0].theta[0, 0].item() - 0.5) < 1e-6
    assert result.exploitability_closed_form.item() < 1e-3
    assert result.exploitability_best_response.item() < 1e-2
    diag = problem.on_record(records[-1])
    assert "metrics/theta_grad_variance" in diag and "loss/deviation" in diag


@pytest.mark.slow
def test_fish_war_alpha_recovered_from_trajectories_by_behavior_cloning(tmp_path) -> None:
    torch.manual_seed(0)
    game = FishWar(horizon=6).double()
    theta = game.true_params[None].clone()
    traj = sample_trajectories(
        game,
        theta,
        game.equilibrium_policy(theta),
        (1, 64),
        generator=torch.Generator().manual_seed(5),
    )
    path = tmp_path / "observed.npz"
    save_trajectories(path, traj, game.true_params)
    problem = build_markov_inverse(
        game,
        _config(bc_steps=400, bc_lr=0.02),
        theta_true=None,
        theta_known=theta,
        dataset=str(path),
    )
    assert problem.bc_loss is not None and problem.bc_loss < 1e-4
    assert problem.bc_fit.holdout_loss < 1e-4
    _, result = _run(problem)
    assert result.relative_error.item() < 0.05
    assert result.extras["behavior_cloning_loss"] == problem.bc_loss


@pytest.mark.slow
def test_markov_forward_solver_finds_the_fish_war_mpe() -> None:
    torch.manual_seed(0)
    game = FishWar(horizon=4, shock_std=0.0).double()
    theta = game.true_params[None]
    config = _config(
        forward_iterations=300,
        lr_profile=0.02,
        lr_deviation=0.05,
        hidden=[8],
        best_response_steps=100,
    )
    policy, exploit = solve_markov_equilibrium(game, theta, config)
    obs = game.observe(
        game.initial_state(theta[:, None], torch.zeros(1, 16, 1, dtype=torch.float64))
    )
    fraction = policy.act(obs, 0).actions
    k = game.mpe_fraction(theta)
    assert (fraction - k).abs().max() < 0.1 * k
    assert exploit.item() < 0.01


@pytest.mark.slow
def test_entry_game_recovered_by_the_score_function_path() -> None:
    from envs.entry_game import EntryGame

    torch.manual_seed(0)
    game = EntryGame().double()
    theta = game.true_params[None].clone()
    config = _config(iterations=300, environments=512, best_response_steps=100)
    problem = build_markov_inverse(game, config, theta_true=theta, theta_known=theta)
    assert problem.objective.estimator == "score"  # chosen for discrete actions
    _, result = _run(problem)
    assert result.relative_error.item() < 0.05
    assert result.exploitability_closed_form.item() < 0.05


def test_a_recovered_stochastic_run_counts_as_converged_by_its_95_bound() -> None:
    """converged = the headline exploitability's 95 % upper bound (mean + 1.96 SE over the
    evaluation episodes) ≤ tol_exploitability × the payoff scale; training runs its budget."""
    torch.manual_seed(0)
    game = FishWar(horizon=6).double()
    theta = game.true_params[None].clone()
    problem = build_markov_inverse(
        game, _config(tol_exploitability=0.01), theta_true=theta, theta_known=theta
    )
    _, result = _run(problem)
    assert problem.trainer.step_count == 150  # no early stop on the noisy running estimate
    assert result.exploitability_source == "closed_form"
    assert torch.equal(result.exploitability, result.exploitability_closed_form)
    upper = result.exploitability_upper_95
    assert bool((upper >= result.exploitability).all())
    assert torch.allclose(result.tolerance, 0.01 * result.payoff_scale)
    assert bool(result.converged.all()) and bool((upper <= result.tolerance).all())
    assert result.extras["exploitability_upper_95"] == float(upper.mean())
    assert result.extras["exploitability_source"] == "closed_form"
    # an absolute tolerance below the bound: not converged
    problem.config = _config(tol_exploitability=1e-30, tol_units="absolute")
    assert not bool(score_markov(problem).converged.any())


def test_lr_theta_zero_holds_theta_and_evaluates_the_observed_play(capsys) -> None:
    """algo.lr_theta=0: no descent player, θ stays at its configured value; the observed
    equilibrium is unexploitable under the true θ and exploitable under a wrong one."""
    torch.manual_seed(0)
    game = FishWar(horizon=6).double()
    theta = game.true_params[None].clone()
    config = _config(iterations=20, lr_theta=0.0, tol_exploitability=0.01, eval_every=10)
    problem = build_markov_inverse(game, config, theta_true=theta, theta_known=theta)
    assert problem.trainer.descent is None and problem.trainer.holds_theta
    records = list(problem.trainer.iterate(progress=True))
    assert "run_exploit=" in capsys.readouterr().err  # the running estimate, named as such
    assert problem.trainer.step_count == 20 and len(records) == 3
    result = score_markov(problem)
    assert torch.equal(result.theta_hat, theta) and bool(result.converged.all())
    assert result.extras["theta_held_fixed"] is True
    wrong = _config(iterations=20, lr_theta=0.0, tol_exploitability=0.01, theta_init=[0.4])
    problem = build_markov_inverse(game, wrong, theta_true=theta, theta_known=theta)
    _, result = _run(problem)
    assert result.theta_hat[0, 0].item() == 0.4
    assert not bool(result.converged.any())
    assert bool((result.exploitability > 5 * result.tolerance).all())


def test_box_steps_move_each_entry_by_its_own_width() -> None:
    """lr_theta_units=box: Adam's first step moves every learned entry by lr_theta × its own
    width of Θ, whatever the spread of the widths (b ∈ [0, 20], d ∈ [0.01, 0.5])."""
    from envs.lq_stock import LQStock

    torch.manual_seed(0)
    game = LQStock(learn=("benefits", "damage")).double()
    theta = game.true_params[None].clone()
    problem = build_markov_inverse(
        game, _config(iterations=10), theta_true=theta, theta_known=theta
    )
    before = problem.trainer.stabilizer.theta_learned.detach().clone()
    problem.trainer.step()
    moved = (problem.trainer.stabilizer.theta_learned.detach() - before).abs()[0]
    width = (game.param_high - game.param_low)[problem.learn_index]
    assert torch.allclose(moved, 0.004 * width, rtol=1e-5)


def test_without_a_closed_form_the_trained_best_response_is_the_one_figure() -> None:
    class NoClosedForm(FishWar):
        best_response_policy = None  # declares no closed-form best response

    torch.manual_seed(0)
    game = NoClosedForm(horizon=4).double()
    theta = game.true_params[None].clone()
    config = _config(iterations=10, best_response_steps=20, tol_exploitability=0.01)
    problem = build_markov_inverse(game, config, theta_true=theta, theta_known=theta)
    _, result = _run(problem)
    assert result.exploitability_closed_form is None
    assert result.exploitability_source == "trained_best_response"
    assert torch.equal(result.exploitability, result.exploitability_best_response)
    assert result.exploitability_upper_95 is not None
