"""Bootstrap intervals for ``algo.problem=qre_counts``: multinomial resamples in the same batch."""

import torch

from envs.rps import RockPaperScissors
from imitgame.config import DataConfig
from imitgame.problems.bootstrap import BootstrapProblem, resample_counts
from imitgame.problems.qre import build, counts_config


def solve(problem: BootstrapProblem):
    for record in problem.trainer.iterate(progress=False):
        problem.on_record(record)
    return problem.results()


def test_resampled_counts_are_multinomial_draws_of_the_observed_ones(float64) -> None:
    """Each replicate keeps every player's total; the mean over replicates is the data."""
    counts = torch.tensor([[[50.0, 30.0, 20.0], [10.0, 10.0, 80.0]]])
    reps = resample_counts(counts, 4000, torch.Generator().manual_seed(0))
    assert reps.shape == (4000, 2, 3)
    assert bool(reps.sum(-1).eq(100).all())
    assert torch.allclose(reps.mean(0), counts[0], atol=0.6)
    # the multinomial variance N p (1 − p) of a count
    assert abs(float(reps[:, 0, 0].var()) - 100 * 0.5 * 0.5) < 2.5


def test_qre_counts_intervals_cover_the_truth_in_one_batch(float64) -> None:
    """K = 2 data sets × (1 + R) instances; the 95 % intervals contain the true wins."""
    game = RockPaperScissors()
    data = DataConfig(instances=2, counts=2000, bootstrap=40)
    problem = build(game, counts_config(iterations=300), data, seed=0)
    assert isinstance(problem, BootstrapProblem)
    assert problem.inner.counts.shape[0] == 2 * (1 + 40)
    results = solve(problem)
    assert results.theta_hat.shape[0] == 2
    assert results.extras["bootstrap"]["kind"] == "percentile"
    truth = game.true_params
    for per_instance in results.extras["bootstrap"]["intervals_per_instance"]:
        for name, (low, high) in per_instance.items():
            assert low < float(truth[game.param_index(name)]) < high, name
            assert high - low < 0.6  # informative, not the whole box [0, 10]


def test_unidentified_wins_get_the_range_over_inverse_equilibria(float64) -> None:
    """All three RPS wins learned from symmetric play (two logit conditions): the rank test
    says not identified and the report is a range, which contains the truth."""
    game = RockPaperScissors(learn=["paper_beats_rock", "rock_beats_scissors",
                                    "scissors_beats_paper"])  # fmt: skip
    data = DataConfig(counts=5000, bootstrap=5)
    results = solve(build(game, counts_config(iterations=300), data, seed=1))
    assert not bool(results.identified[0])
    assert results.extras["bootstrap"]["kind"] == "range"
    for name, (low, high) in results.intervals.items():
        assert low <= float(game.true_params[game.param_index(name)]) <= high, name
