"""Pathwise and score-function gradient estimators agree where both apply."""

import torch

from envs.fish_war import FishWar
from imitgame.game.policies import GaussianPolicy
from imitgame.solver.regret import estimate_regret


def _gradients(estimator: str, seed: int) -> torch.Tensor:
    game = FishWar(shock_std=0.1).double()
    torch.manual_seed(0)
    policy = GaussianPolicy(
        1, 2, 2, 1, game.action_low, game.action_high, hidden=(), init_std=0.3
    ).double()
    policy.reparameterize = estimator == "pathwise"
    theta = game.true_params[None]
    torch.manual_seed(seed)
    est = estimate_regret(
        game,
        theta,
        game.equilibrium_policy(theta),
        policy,
        batch_shape=(1, 20000),
        generator=torch.Generator().manual_seed(seed),
        estimator=estimator,
    )
    params = [policy.net.biases[0], policy.log_std]
    return torch.cat([g.flatten() for g in torch.autograd.grad(est.surrogate, params)])


def test_pathwise_and_score_function_gradients_agree() -> None:
    pathwise = _gradients("pathwise", 1)
    score = _gradients("score", 2)
    assert pathwise.abs().max() > 0.05  # a real signal, not two zeros
    assert torch.allclose(pathwise, score, rtol=0.15, atol=0.02), (pathwise, score)


def test_score_function_baseline_keeps_the_mean_and_lowers_variance() -> None:
    game = FishWar(shock_std=0.1).double()
    theta = game.true_params[None]
    torch.manual_seed(0)
    policy = GaussianPolicy(1, 2, 2, 1, game.action_low, game.action_high, hidden=()).double()
    policy.reparameterize = False
    grads = {"fitted": [], "batch_mean": [], "none": []}
    for baseline in grads:
        for seed in range(6):  # six independent batches
            torch.manual_seed(seed)
            est = estimate_regret(
                game,
                theta,
                game.equilibrium_policy(theta),
                policy,
                batch_shape=(1, 256),
                generator=torch.Generator().manual_seed(seed),
                estimator="score",
                baseline=baseline,
            )
            (g,) = torch.autograd.grad(est.surrogate, [policy.net.biases[0]])
            grads[baseline].append(g.flatten())
    var = {name: torch.stack(g).var(0).sum() for name, g in grads.items()}
    assert var["batch_mean"] < var["none"]
    assert var["fitted"] < var["batch_mean"]  # the value depends on the stock: a state baseline
    mean = {name: torch.stack(g).mean(0) for name, g in grads.items()}
    spread = (var["none"] / 6) ** 0.5
    assert (mean["fitted"] - mean["none"]).abs().max() < 3 * spread  # same expectation
