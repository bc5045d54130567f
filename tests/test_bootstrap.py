"""data.bootstrap=R: replicates solved as instances of one batch, percentile intervals, and ranges
over inverse equilibria where θ is not identified."""

from __future__ import annotations

import json

import pytest
import torch

from envs.cournot import Cournot
from imitgame.config import DataConfig, NoisyConfig, typed
from imitgame.errors import ImitgameError
from imitgame.problems import problem_spec
from imitgame.problems.bootstrap import (
    BootstrapProblem,
    percentile_intervals,
    resample,
    with_replicates,
)
from imitgame.problems.inverse import observed_play
from imitgame.problems.noisy import build
from imitgame.results import load_run
from imitgame.run import runner
from tests.conftest import compose_config


def test_resample_draws_within_each_instance(float64):
    game = Cournot()
    observed = observed_play(game, DataConfig(noise_std=0.1, observations=7, instances=3), 0)
    reps = resample(observed, 5, torch.Generator().manual_seed(0))
    assert tuple(reps.actions.shape) == (15, 7, 3, 1)
    for k in range(3):
        rows = observed.actions[k].flatten(1)  # [B, n·d]
        for r in range(5):
            drawn = reps.actions[k * 5 + r].flatten(1)
            assert all(bool((rows == row).all(-1).any()) for row in drawn)
            assert torch.equal(reps.theta_true[k * 5 + r], observed.theta_true[k])
    both = with_replicates(observed, 5, seed=0)
    assert both.n_instances == 3 + 15
    assert torch.equal(both.actions[:3], observed.actions)


def test_percentile_intervals_match_numpy_quantiles(float64):
    samples = torch.randn(2, 1000, 3, generator=torch.Generator().manual_seed(0))
    low, high = percentile_intervals(samples, 0.9)
    assert torch.allclose(low, samples.quantile(0.05, dim=1))
    assert torch.allclose(high, samples.quantile(0.95, dim=1))


def test_replicates_are_instances_of_one_batch_and_cover_the_truth(float64):
    """K = 2 data sets with R = 100 replicates: one trainer over 2·(1 + 100) instances; the
    results report the 2 originals, and the seeded example's intervals contain the truth."""
    game = Cournot()
    data = DataConfig(noise_std=0.1, observations=100, instances=2, bootstrap=100)
    problem = build(game, NoisyConfig(), data, seed=0)
    assert isinstance(problem, BootstrapProblem)
    assert problem.trainer.stabilizer.n_instances == 2 * (1 + 100)
    for record in problem.trainer.iterate(progress=False):
        problem.on_record(record)
    results = problem.results()
    assert results.instances == 2
    per_instance = results.extras["bootstrap"]["intervals_per_instance"]
    assert results.extras["bootstrap"]["kind"] == "percentile"
    for i in range(2):
        for name, (low, high) in per_instance[i].items():
            j = game.param_index(name)
            assert low < float(results.theta_hat[i, j]) < high
            assert low < float(results.theta_true[i, j]) < high
            assert high - low < 0.3 * float(results.theta_true[i, j])  # informative, not trivial


def test_unidentified_theta_reports_the_range_over_inverse_equilibria(tmp_path, float64):
    """Costs and intercept from one market: c_i = a − b(Q + q_i) pins a − c_i only, so with
    costs in [0, 100] the inverse equilibria have a ∈ [90, 180] (a − c = 90, 85, 80)."""
    cfg = compose_config(
        "env=cournot",
        "env.learn=[costs,intercept]",
        "data.observations=5",
        "data.bootstrap=10",
        "progress=false",
    )
    runner.run(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["bootstrap"]["kind"] == "range"
    low, high = saved["intervals"]["a"]
    assert abs(low - 90) < 1e-5 and abs(high - 180) < 1e-5
    c0_low, c0_high = saved["intervals"]["c_0"]
    assert abs(c0_low - 0) < 1e-5 and abs(c0_high - 90) < 1e-5
    assert load_run(tmp_path).intervals["a"] == (low, high)


def test_bootstrap_option_validates(float64):
    spec = problem_spec("noisy_inverse", Cournot())
    assert typed(spec.config, {}, "algo").problem == "noisy_inverse"
    with pytest.raises(ImitgameError, match="ci_level"):
        DataConfig(ci_level=1.5)


def test_problems_that_do_not_resample_refuse_the_option(float64):
    cfg = compose_config("env=fish_war", "data.bootstrap=5")
    with pytest.raises(ImitgameError, match="data.bootstrap=5 is not supported"):
        runner.build_problem(cfg)
