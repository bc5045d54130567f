"""Gaussian and categorical policies: bounded actions, correct log-probabilities."""

import torch

from imitgame.game.policies import CategoricalPolicy, GaussianPolicy, ResidualPolicy
from imitgame.game.strategies import ActionProfile


def test_gaussian_density_integrates_to_one_and_matches_samples() -> None:
    torch.manual_seed(0)
    low, high = torch.tensor([[0.5]]), torch.tensor([[2.0]])
    policy = GaussianPolicy(1, 1, 2, 1, low, high, hidden=(8,)).double()
    obs = torch.randn(1, 1, 1, 2, dtype=torch.float64)
    grid = torch.linspace(0.5 + 1e-6, 2.0 - 1e-6, 20001, dtype=torch.float64)
    acts = grid.view(1, -1, 1, 1)
    density = policy.log_prob(obs.expand(1, grid.numel(), 1, 2), acts).exp()[0, :, 0]
    assert abs(torch.trapezoid(density, grid).item() - 1.0) < 1e-3
    sample = policy.act(obs.expand(1, 5, 1, 2), 0)
    assert bool(((sample.actions > 0.5) & (sample.actions < 2.0)).all())
    again = policy.log_prob(obs.expand(1, 5, 1, 2), sample.actions)
    assert torch.allclose(again, sample.log_prob, atol=1e-6)


def test_categorical_probabilities_and_sampling_frequencies() -> None:
    torch.manual_seed(1)
    policy = CategoricalPolicy(1, 2, 3, 4, hidden=(8,)).double()
    obs = torch.randn(1, 1, 2, 3, dtype=torch.float64).expand(1, 40000, 2, 3)
    logp = policy.logits(obs)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(1, 40000, 2, dtype=torch.float64))
    sample = policy.act(obs, 0)
    assert sample.actions.shape == (1, 40000, 2, 1)
    freq = torch.stack([(sample.actions[..., 0] == a).double().mean(1) for a in range(4)], -1)
    assert torch.allclose(freq[0], logp[0, 0].exp(), atol=0.01)
    assert torch.allclose(sample.log_prob, policy.log_prob(obs, sample.actions))


def test_residual_policy_starts_at_its_base() -> None:
    low, high = torch.zeros(2, 1), torch.ones(2, 1)
    base = ActionProfile(torch.full((1, 3, 2, 1), 0.3), low, high, learnable=False)
    policy = ResidualPolicy(base, 1, 2, 4, 1, low, high, hidden=(8,))
    out = policy.act(torch.randn(1, 3, 2, 4), 0).actions
    assert torch.allclose(out, torch.full_like(out, 0.3))
    assert all(p.requires_grad for p in policy.net.parameters())
