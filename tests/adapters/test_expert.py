"""``algo.problem=expert``: forward-solved expert → trajectory file (cached) → recovery → scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("vmas")

from imitgame.problems.expert import normalised_errors  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "env=vmas_navigation",
    "env.horizon=3",
    "env.initial_pool=32",
    "algo.forward_iterations=3",
    "algo.iterations=3",
    "algo.environments=4",
    "algo.eval_every=3",
    "algo.eval_steps=1",
    "algo.best_response_steps=2",
    "algo.eval_environments=4",
    "algo.bound_environments=8",
    "algo.variance_batches=2",
    "algo.expert_episodes=16",
    "algo.bc_steps=20",
    "progress=false",
    "threads=1",
]


def test_normalised_errors_ignore_scale() -> None:
    theta = torch.tensor([[1.0, 0.5, 0.3]])
    cos, rel = normalised_errors(3.0 * theta, theta)
    assert cos.item() == pytest.approx(1.0) and rel.item() == pytest.approx(0.0, abs=1e-7)
    cos, rel = normalised_errors(torch.tensor([[0.3, 0.5, 1.0]]), theta)
    assert cos.item() < 0.8 and rel.item() > 0.5


@pytest.mark.slow  # two tiny end-to-end runs through train.py (about a minute)
def test_expert_run_writes_scores_and_reuses_its_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    infos = []
    for i in range(2):
        run = tmp_path / f"run{i}"
        proc = subprocess.run(
            [
                sys.executable,
                "train.py",
                *TINY,
                f"algo.expert_cache={cache}",
                f"hydra.run.dir={run}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        results = json.loads((run / "results.json").read_text())
        for key in (
            "weights_cosine_similarity",
            "weights_relative_error",
            "exploitability_best_response",
            "exploitability_best_response_true",
        ):
            assert isinstance(results.get(key), float), key
        assert (run / "expert_trajectories.npz").is_file()
        assert "identified only up to scale" in proc.stdout
        infos.append(results)
    assert len(list(cache.glob("*.npz"))) == 1  # the second run read the first one's expert
    first, second = infos
    assert first["expert_cached"] is False and second["expert_cached"] is True


def test_observed_warm_start_puts_the_deviation_mean_on_the_cloned_policy() -> None:
    from imitgame.errors import ImitgameError
    from imitgame.game.policies import DeterministicPolicy, FrozenStrategy, GaussianPolicy
    from imitgame.problems.markov import warm_start_deviation

    torch.manual_seed(0)
    low, high = torch.zeros(2, 3), torch.ones(2, 3)
    cloned = FrozenStrategy(DeterministicPolicy(1, 2, 4, 3, low, high, hidden=[8]))
    deviation = GaussianPolicy(1, 2, 4, 3, low, high, hidden=[8])
    obs = torch.randn(1, 5, 2, 4)
    assert not torch.allclose(deviation.net(obs), cloned.inner.net(obs))
    warm_start_deviation(deviation, cloned)
    deviation.deterministic = True
    assert torch.allclose(deviation.act(obs, 0).actions, cloned.act(obs, 0).actions)
    assert any(p.requires_grad for p in deviation.parameters())  # still trained
    with pytest.raises(ImitgameError, match="bc_hidden"):
        warm_start_deviation(GaussianPolicy(1, 2, 4, 3, low, high, hidden=[]), cloned)


def test_a_gaussian_clone_is_copied_whole() -> None:
    """algo.bc_policy=gaussian with deviation_init=observed: ρ = π̂ in law (mean network and
    std), and ρ is still trained."""
    from imitgame.game.policies import FrozenStrategy, GaussianPolicy
    from imitgame.problems.markov import warm_start_deviation

    torch.manual_seed(0)
    low, high = torch.zeros(2, 3), torch.ones(2, 3)
    inner = GaussianPolicy(1, 2, 4, 3, low, high, hidden=[8])
    with torch.no_grad():
        inner.log_std.fill_(-1.0)
    cloned = FrozenStrategy(inner)
    deviation = GaussianPolicy(1, 2, 4, 3, low, high, hidden=[8])
    warm_start_deviation(deviation, cloned)
    assert torch.equal(deviation.log_std, inner.log_std) and deviation.log_std.requires_grad
    obs = torch.randn(1, 5, 2, 4)
    assert torch.equal(deviation.net(obs), inner.net(obs))


def test_positive_gains_take_theta_gradient_only_from_deviations_that_gain() -> None:
    """algo.positive_gains: θ's gradient is that of Σ_i max(gain_i, 0)."""
    from envs.fish_war import FishWar
    from imitgame.game.policies import DeterministicPolicy
    from imitgame.solver.regret import estimate_regret

    torch.manual_seed(0)
    game = FishWar().double()
    profile = game.equilibrium_policy(game.true_params[None])
    worse = DeterministicPolicy(1, 2, 2, 1, game.action_low, game.action_high, hidden=[])
    worse = worse.double()
    grads = []
    for positive in (False, True):
        theta = game.true_params[None].clone().requires_grad_(True)
        est = estimate_regret(
            game,
            theta,
            profile,
            worse,
            batch_shape=(1, 16),
            generator=torch.Generator().manual_seed(1),
            positive_gains=positive,
        )
        (grad,) = torch.autograd.grad(est.surrogate, theta)
        grads.append(grad)
        assert bool((est.gains < 0).all())  # a deviation from the equilibrium loses
    assert grads[0].abs().sum() > 0 and torch.equal(grads[1], torch.zeros_like(grads[1]))


def test_positive_gains_with_pathwise_deviations_is_refused() -> None:
    """algo.positive_gains with algo.estimator=pathwise would clamp the deviation's own ascent
    gradient too (a losing deviation would never recover): one ImitgameError line."""
    from envs.fish_war import FishWar
    from imitgame.config import MarkovConfig
    from imitgame.errors import ImitgameError
    from imitgame.problems.markov import build_markov_inverse

    game = FishWar().double()
    theta = game.true_params[None].clone()
    config = MarkovConfig(iterations=1, environments=4, positive_gains=True, estimator="pathwise")
    with pytest.raises(ImitgameError, match="positive_gains=true needs algo.estimator=score"):
        build_markov_inverse(game, config, theta_true=theta, theta_known=theta)
