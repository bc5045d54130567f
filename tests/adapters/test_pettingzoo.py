"""The black-box PettingZoo adapter and the zeroth-order θ-gradient estimator."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mpe2")

from imitgame.adapters.pettingzoo import PettingZooGame  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from imitgame.game.policies import make_policy  # noqa: E402
from imitgame.solver.regret import estimate_regret  # noqa: E402
from imitgame.solver.rollout import sample_trajectories  # noqa: E402
from imitgame.testing import check_game  # noqa: E402

SPREAD = dict(
    env_kwargs={"N": 3, "continuous_actions": True, "max_cycles": 50},
    features="envs.mpe_simple_spread.simple_spread_features",
    feature_names=["coverage", "proximity", "effort"],
    weights=[1.0, 0.5, 0.3],
    learn=["coverage", "proximity"],
    horizon=3,
)


def _game(**kw: object) -> PettingZooGame:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return PettingZooGame("mpe2.simple_spread_v3.parallel_env", **{**SPREAD, **kw})
    finally:
        torch.set_default_dtype(previous)


def nonlinear_reward(phi: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """A reward not linear in θ: Σ_f softplus(θ_f) φ_f (for the zeroth-order estimator)."""
    return (torch.nn.functional.softplus(theta) * phi).sum(-1)


@pytest.fixture(scope="module")
def spread() -> PettingZooGame:
    return _game()


def test_check_game_passes_without_transition_derivatives(spread: PettingZooGame) -> None:
    report = check_game(spread, batch=(1, 2), points=8)
    assert "pettingzoo.parallel_api_test" in report.checks
    assert "gradcheck(reward)" in report.checks
    assert any("differentiable = False" in note for note in report.notes)


def test_seeded_rollouts_reproduce_and_rows_share_episodes(spread: PettingZooGame) -> None:
    torch.manual_seed(0)
    policy = make_policy(spread, 1, "gaussian", [], estimator="score").double()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append(
            sample_trajectories(
                spread,
                spread.true_params[None],
                policy,
                (1, 4),
                generator=torch.Generator().manual_seed(5),
            )
        )
    assert torch.equal(runs[0].states, runs[1].states)
    assert torch.equal(runs[0].rewards, runs[1].rewards)
    # a state expanded over deviation rows: every row steps from the same reset (same seed)
    s0 = runs[0].states[0].expand(2, 1, 4, spread.state_dim)
    zero = torch.zeros(2, 1, 4, 3, 5, dtype=torch.float64)
    nxt = spread.transition(s0, zero, spread.true_params, torch.zeros(1))
    assert torch.equal(nxt[0], nxt[1])
    assert not torch.equal(nxt[..., 2:], s0[..., 2:])  # the simulator moved (velocities)


def test_only_the_last_batch_can_be_continued(spread: PettingZooGame) -> None:
    noise = torch.zeros(2, 1, dtype=torch.float64)
    s0 = spread.initial_state(spread.true_params, noise)
    a = torch.full((2, 3, 5), 0.2, dtype=torch.float64)
    s1 = spread.transition(s0, a, spread.true_params, noise)
    spread.transition(s1, a, spread.true_params, noise)
    with pytest.raises(ImitgameError, match="cannot be set to an arbitrary state"):
        spread.transition(s1, a, spread.true_params, noise)


def test_zeroth_order_matches_the_exact_theta_gradient() -> None:
    """Two-point smoothing on the same sampled play ≈ the autograd θ-gradient of ψ (the reward
    is smooth in θ), and it never differentiates the reward in θ."""
    game = _game(reward_fn="tests.adapters.test_pettingzoo.nonlinear_reward")
    torch.manual_seed(0)
    profile = make_policy(game, 1, "gaussian", [], estimator="score").double()
    deviation = make_policy(game, 1, "gaussian", [], estimator="score").double()
    theta = torch.tensor([[0.8, 0.4, 0.3]], dtype=torch.float64, requires_grad=True)
    grads = {}
    for estimator, samples in (("score", 1), ("zeroth_order", 400)):
        torch.manual_seed(2)
        est = estimate_regret(
            game,
            theta,
            profile,
            deviation,
            batch_shape=(1, 6),
            generator=torch.Generator().manual_seed(9),
            estimator=estimator,
            smoothing_sigma=1e-3,
            smoothing_samples=samples,
        )
        (grads[estimator],) = torch.autograd.grad(est.surrogate, theta)
    exact, smoothed = grads["score"], grads["zeroth_order"]
    assert exact.abs().sum() > 0
    cos = torch.nn.functional.cosine_similarity(exact, smoothed).item()
    assert cos > 0.95, (exact, smoothed)
    assert (smoothed.norm() / exact.norm()).item() == pytest.approx(1.0, abs=0.2)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(ImitgameError, match="cannot be imported"):
        _game(features="envs.no_such_module.features")
    with pytest.raises(ImitgameError, match="learn names"):
        _game(learn=["nope"])


@pytest.mark.slow  # spawns two processes that import torch (about 20 s on a busy machine)
def test_worker_processes_give_the_same_play() -> None:
    """Copies stepped in 2 worker processes reproduce the in-process rollout exactly."""
    local, pooled = _game(), _game(workers=2)
    noise = torch.linspace(-1, 1, 6, dtype=torch.float64).view(6, 1)
    a = torch.full((6, 3, 5), 0.4, dtype=torch.float64)
    states = []
    for game in (local, pooled):
        s = game.initial_state(game.true_params, noise)
        for _ in range(2):
            s = game.transition(s, a, game.true_params, noise)
        states.append(s)
    assert torch.equal(states[0], states[1])


def test_the_expert_cache_key_follows_the_feature_source(monkeypatch) -> None:
    """An edited feature module (a constant such as the crowding kernel's width) is a new game
    for the expert cache, though the function keeps its name."""
    import inspect

    game = _game()
    key = game.cache_key()
    assert key == _game().cache_key()
    source = inspect.getsource(inspect.getmodule(game.feature_fn))
    monkeypatch.setattr(inspect, "getsource", lambda obj: source + "\n# edited\n")
    assert game.cache_key() != key
