"""Compliance checks for a user's game: one call validates a new game.

    from imitgame.testing import check_game
    check_game(MyGame())

checks output shapes, runs PettingZoo's ``parallel_api_test`` and ``parallel_seed_test`` on the
game's ParallelEnv face, a float64 ``gradcheck`` of rewards/payoffs (and transitions) and of the
regret ψ, that batched evaluation equals element-wise evaluation, and, for one-shot games with
closed forms, that the equilibrium has zero exploitability and best responses are best.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass, field

import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test
from torch import Tensor

from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.strategies import ActionProfile
from imitgame.solver.regret import estimate_regret


@dataclass
class GameReport:
    """What :func:`check_game` verified (every entry passed, or it raised)."""

    checks: list[str] = field(default_factory=list)


def _interior(low: Tensor, high: Tensor, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Uniform draws in the middle 80% of a box (finite stand-ins for infinite bounds)."""
    lo = torch.where(torch.isfinite(low), low, torch.full_like(low, -10.0))
    hi = torch.where(torch.isfinite(high), high, torch.full_like(high, 10.0))
    u = torch.rand(shape, generator=gen, dtype=low.dtype)
    return lo + (0.1 + 0.8 * u) * (hi - lo)


def _sample(game: MarkovGame, batch: tuple[int, ...], gen: torch.Generator):
    theta = game.true_params if game.true_params is not None else None
    if theta is None:
        theta = _interior(game.param_low, game.param_high, (game.param_dim,), gen)
    theta = theta.expand(*batch, game.param_dim).clone()
    if game.n_discrete_actions is not None:
        actions = torch.randint(
            game.n_discrete_actions, (*batch, game.n_agents, game.action_dim), generator=gen
        ).to(theta.dtype)
    else:
        actions = _interior(
            game.action_low, game.action_high, (*batch, game.n_agents, game.action_dim), gen
        )
    noise = torch.randn((*batch, game.noise_dim), generator=gen, dtype=theta.dtype)
    state = game.initial_state(theta, noise)
    return theta, actions, noise, state


def check_game(game: MarkovGame, *, batch: tuple[int, int] = (2, 3), seed: int = 0) -> GameReport:
    """Validate ``game``; raise AssertionError naming the first failed check."""
    report = GameReport()

    g = copy.deepcopy(game).double().cpu()
    gen = torch.Generator().manual_seed(seed)
    theta, actions, noise, state = _sample(g, batch, gen)
    n = g.n_agents

    reward = g.reward(state, actions, theta)
    assert reward.shape == (*batch, n), f"reward has shape {list(reward.shape)}, want {[*batch, n]}"
    obs = g.observe(state)
    assert obs.shape == (*batch, n, g.obs_dim), (
        f"observe has shape {list(obs.shape)}, want {[*batch, n, g.obs_dim]}"
    )
    assert state.shape == (*batch, g.state_dim), (
        f"initial_state has shape {list(state.shape)}, want {[*batch, g.state_dim]}"
    )
    step_noise = torch.randn((*batch, g.noise_dim), generator=gen, dtype=theta.dtype)
    nxt = g.transition(state, actions, theta, step_noise)
    assert nxt.shape == state.shape, (
        f"transition has shape {list(nxt.shape)}, want {list(state.shape)}"
    )
    report.checks.append("shapes")

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        parallel_api_test(copy.deepcopy(game), num_cycles=game.horizon + 2)
        parallel_seed_test(lambda: copy.deepcopy(game), num_cycles=game.horizon + 2)
    report.checks += ["pettingzoo.parallel_api_test", "pettingzoo.parallel_seed_test"]

    # batching: the batched call equals element-wise calls
    for idx in [(0, 0), (batch[0] - 1, batch[1] - 1)]:
        single = g.reward(state[idx], actions[idx], theta[idx])
        assert torch.allclose(single, reward[idx], rtol=1e-10, atol=1e-10), (
            f"batched reward differs from unbatched at {idx}: {reward[idx]} vs {single}"
        )
        single_next = g.transition(state[idx], actions[idx], theta[idx], step_noise[idx])
        assert torch.allclose(single_next, nxt[idx], rtol=1e-10, atol=1e-10), (
            f"batched transition differs from unbatched at {idx}"
        )
    report.checks.append("batching")

    # float64 gradient checks (first element only, to keep it fast)
    s0, a0, th0, e0 = state[0, :1], actions[0, :1], theta[0, :1], step_noise[0, :1]
    continuous = g.n_discrete_actions is None
    inputs = (a0.clone().requires_grad_(continuous), th0.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(lambda a, t: g.reward(s0, a, t), inputs), "reward gradcheck"
    if g.horizon > 1:
        assert torch.autograd.gradcheck(lambda a, t: g.transition(s0, a, t, e0), inputs), (
            "transition gradcheck"
        )
    report.checks.append("gradcheck(reward" + (", transition)" if g.horizon > 1 else ")"))

    if continuous:
        k, b = batch
        profile = ActionProfile(actions, g.action_low, g.action_high, learnable=False)
        dev0 = _interior(g.action_low, g.action_high, actions.shape, gen)
        theta_k = theta[:, 0]

        def regret_of(th: Tensor, dev: Tensor) -> Tensor:
            deviation = ActionProfile(dev, g.action_low, g.action_high, learnable=False)
            deviation.actions = dev  # keep the graph to ``dev``
            return estimate_regret(
                g,
                th,
                profile,
                deviation,
                batch_shape=(k, b),
                state0=state if isinstance(g, StaticGame) else None,
                # the same shocks on every call: finite differences need a deterministic ψ
                generator=torch.Generator().manual_seed(seed),
            ).regret

        assert torch.autograd.gradcheck(
            regret_of, (theta_k.clone().requires_grad_(True), dev0.requires_grad_(True))
        ), "regret gradcheck"
        report.checks.append("gradcheck(regret)")

    if isinstance(g, StaticGame) and g.has_equilibrium:
        eq = g.equilibrium_in(state, theta)
        profile = ActionProfile(eq, g.action_low, g.action_high, learnable=False)
        if g.has_best_response:
            br = g.best_response_in(state, eq, theta)
            deviation = ActionProfile(br, g.action_low, g.action_high, learnable=False)
            phi = estimate_regret(
                g, theta[:, 0], profile, deviation, batch_shape=batch, state0=state
            ).regret
            scale = g.payoffs_in(state, eq, theta).abs().mean().clamp(min=1.0)
            assert bool((phi.abs() <= 1e-8 * scale).all()), (
                f"the closed-form equilibrium has exploitability {phi.tolist()}"
            )
            report.checks.append("equilibrium has zero exploitability")
            rand = ActionProfile(actions, g.action_low, g.action_high, learnable=False)
            br_random = ActionProfile(
                g.best_response_in(state, actions, theta),
                g.action_low,
                g.action_high,
                learnable=False,
            )
            kw = {"batch_shape": batch, "state0": state}
            best = estimate_regret(g, theta[:, 0], rand, br_random, **kw).gains
            other = estimate_regret(
                g,
                theta[:, 0],
                rand,
                ActionProfile(dev0, g.action_low, g.action_high, learnable=False),
                **kw,
            ).gains
            assert bool((best >= other - 1e-8 * scale).all()), (
                "best_response is beaten by a random deviation"
            )
            report.checks.append("best responses beat random deviations")
    return report
