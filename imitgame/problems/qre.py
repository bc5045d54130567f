"""Finite-game inverse learning from observed action counts: a likelihood term + regret.

Observed: each player's action counts c_i(a) (N_i draws per player) of a finite game, K data sets
at once (``counts [K, n, A]``: K instances of one batch). The stabilizer owns the learned θ (payoff
parameters, and λ when learned) *and* the profile σ (the simulacral machinery, with the profile
parameterised by logits so that it stays inside the simplex), the destabilizer is the game's exact
(soft) best response:

    min_{θ, σ} max_ρ  Σ_i KL(f_i ‖ σ_i) + w ψ(σ, ρ; θ),      f_i = c_i / N_i,

Σ_i KL(f_i ‖ σ_i) = −(1/N) log L(σ) + const is the multinomial negative log-likelihood per
observation; ψ ≥ 0 vanishes exactly when σ is an equilibrium (the logit QRE under θ), so as the
penalty weight w = ``algo.regret_weight`` grows the answer tends to the maximum-likelihood θ
over equilibrium profiles (the estimator Gambit's ``logit_estimate`` computes for λ alone); with
exact equilibrium frequencies the minimum is exact for any w > 0. Registered as
``algo.problem=qre_counts`` (data: ``data.instances`` data sets of ``data.counts`` draws per
player simulated at the game's θ).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import jacrev

from imitgame.config import AlgoConfig, CountsConfig, DataConfig
from imitgame.data.observed import ObservedPlay
from imitgame.errors import ImitgameError, check_finite
from imitgame.game.finite import FiniteGame, fixed_point_residual, logit_qre, simulate_counts
from imitgame.game.strategies import ActionProfile, ActionSample, Strategy
from imitgame.problems.base import (
    ProblemDefaults,
    ProblemSpec,
    initial_theta,
    learn_mask,
    make_results,
    register_problem,
    relative_error,
    synthetic_theta,
)
from imitgame.problems.bootstrap import counts_with_replicates, with_bootstrap
from imitgame.problems.identifiability import check_identifiability
from imitgame.problems.inverse import static_trainer
from imitgame.results import Results
from imitgame.solver.stabilizer import Stabilizer
from imitgame.solver.trainer import GDA


class LogitProfile(ActionProfile):
    """A learnable mixed profile ``[K, B, n, A]`` = softmax of logits over each player's real
    actions: always inside the simplex (no projection needed)."""

    unconstrained = True  # no projection: the trainer may take L-BFGS steps on θ and σ jointly

    def __init__(self, sigma: Tensor, mask: Tensor, low: Tensor, high: Tensor) -> None:
        Strategy.__init__(self)
        logits = torch.log(sigma.clamp(min=1e-12)).masked_fill(~mask, 0.0)
        self.logits = nn.Parameter(logits.detach().clone())
        self.register_buffer("mask", mask.detach().clone())
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("high", high.detach().clone())

    @property
    def actions(self) -> Tensor:  # type: ignore[override]
        return torch.softmax(self.logits.masked_fill(~self.mask, float("-inf")), -1)

    def act(self, obs: Tensor, t: int) -> ActionSample:
        return ActionSample(self.actions)

    def project(self) -> None:
        return None


def count_loss(counts: Tensor, mask: Tensor) -> Callable[[Stabilizer], Tensor]:
    """Σ_i KL(f_i ‖ σ_i) per instance ``[K]`` for ``counts [K, n, A]``."""
    freq = counts / counts.sum(-1, keepdim=True)
    positive = freq > 0
    log_freq = torch.where(positive, freq, torch.ones_like(freq)).log()

    def loss(stab: Stabilizer) -> Tensor:
        sigma = stab.profile().actions[:, 0]  # [K, n, A]
        log_sigma = torch.log(sigma.clamp(min=1e-300))
        terms = torch.where(positive & mask, freq * (log_freq - log_sigma), 0.0)
        return terms.sum((-1, -2))

    return loss


@dataclass
class CountsProblem(ProblemDefaults):
    """A wired counts problem: ``counts [K, n, A]``; ``theta_true [K, p]`` for synthetic data."""

    game: FiniteGame
    trainer: GDA
    evaluate: Callable[[Stabilizer], Tensor]
    learn_index: Tensor
    counts: Tensor
    theta_true: Tensor | None = None
    originals: int | None = None  # with bootstrap replicates: the first rows are the data sets

    @property
    def observed(self) -> ObservedPlay:
        """The model's play at the answer, the logit QRE σ(θ̂) ``[K, 1, n, A]``, with θ̂ as known
        θ: where the rank test (and, with ``data.bootstrap``, the range over inverse equilibria)
        linearises the logit conditions. Not the fitted σ̂ itself: from noisy counts σ̂ is off the
        equilibrium manifold (ψ > 0), which breaks the symmetries that make θ unidentified (e.g.
        both RPS players' identical conditions). Falls back to σ̂ where the QRE fails."""
        theta = self.trainer.answer.theta().detach()
        try:
            sigma = self.game.equilibrium(theta)[:, None]
        except ImitgameError:
            sigma = self.trainer.answer.profile().actions.detach()  # [K, 1, n, A]
        return ObservedPlay(sigma, None, self.theta_true, theta)

    def results(self) -> Results:
        answer = self.trainer.answer
        theta = answer.theta().detach()
        with torch.no_grad():
            exploit = self.evaluate(answer)
            obs = answer.observation_loss()
        play = self.observed.actions
        contexts = self.game.default_context().expand(*play.shape[:2], self.game.state_dim)
        ident = check_identifiability(self.game, play, theta, self.learn_index, contexts)
        return make_results(
            self,
            "qre_counts",
            theta_hat=theta,
            exploitability=exploit,
            exploitability_exact=True,
            stopped=~self.trainer.active,
            identified=ident.identified,
            identifiability_rank=ident.rank,
            extras={
                "count_kl": float(obs[: self.originals].mean()),
                "observations_per_player": float(self.counts[: self.originals].sum(-1).mean()),
            },
        )

    def summary_lines(self, results: Results) -> list[str]:
        x = results.extras
        return [
            f"  Σ_i KL(observed ‖ fitted) {x['count_kl']:.4g} "
            f"({x['observations_per_player']:.0f} observed actions per player)"
        ]


def build_counts(
    game: FiniteGame,
    counts: Tensor,
    algo: AlgoConfig,
    *,
    theta_known: Tensor | None = None,
) -> CountsProblem:
    """Wire the counts problem for ``counts [K, n, A]`` (K data sets solved as one batch);
    ``theta_known [K, p]`` holds the known θ entries (default: the game's true/known θ)."""
    if not isinstance(game, FiniteGame):
        raise ImitgameError(
            f"{type(game).__name__} is not a FiniteGame: counts need finite actions"
        )
    counts = counts.to(game.device, game.dtype)
    if counts.dim() == 2:
        counts = counts[None]
    want = (game.n_agents, game.action_dim)
    if counts.dim() != 3 or tuple(counts.shape[1:]) != want:
        raise ImitgameError(
            f"counts have shape {list(counts.shape)}, expected [K, {want[0]}, {want[1]}]"
        )
    check_finite("counts", counts)
    if bool((counts < 0).any()) or bool((counts * ~game.action_mask).any()):
        raise ImitgameError("counts must be >= 0 and 0 for a player's padded actions")
    if not bool((counts.sum(-1) > 0).all()):
        raise ImitgameError("every player needs at least one observed action")
    k = counts.shape[0]
    mask = learn_mask(game)
    if theta_known is None:
        ref = game.true_params if game.true_params is not None else game.param_low
        theta_known = ref.expand(k, -1)
    theta0 = initial_theta(game, theta_known.to(game.dtype), algo.theta_init, mask)
    start = ((counts + 0.5) * game.action_mask / (counts + 0.5).sum(-1, keepdim=True))[:, None]
    start = start / (start * game.action_mask).sum(-1, keepdim=True)
    profile = LogitProfile(start, game.action_mask, game.action_low, game.action_high)
    stabilizer = Stabilizer(
        theta0,
        mask,
        game.param_low,
        game.param_high,
        profile,
        observation_loss=count_loss(counts, game.action_mask),
    )
    _, evaluate, trainer = static_trainer(game, stabilizer, algo, deviation_init=start, state0=None)
    return CountsProblem(game, trainer, evaluate, mask.nonzero().flatten(), counts)


def fit_counts(
    game: FiniteGame,
    counts: Tensor,
    algo: AlgoConfig | None = None,
    *,
    theta_known: Tensor | None = None,
    starts: Tensor | None = None,
    progress: bool = False,
) -> tuple[Tensor, CountsProblem]:
    """Fit θ to ``counts [K, n, A]`` (K data sets, one batch): θ̂ ``[K, p]`` and the problem.

    ``starts [S, L]``: S starting values of the L learned entries, run as K·S instances of the
    same batch; each data set keeps the start whose final objective (KL + w ψ) is lowest (the
    likelihood over equilibria can have local optima: a QRE correspondence has several
    branches)."""
    algo = algo if algo is not None else counts_config()
    k = counts.shape[0] if counts.dim() == 3 else 1
    if starts is None:
        problem = build_counts(game, counts, algo, theta_known=theta_known)
        for _ in problem.trainer.iterate(progress=progress):
            pass
        return problem.trainer.answer.theta().detach(), problem
    starts = torch.as_tensor(starts, dtype=game.dtype, device=game.device)
    if starts.dim() != 2 or starts.shape[1] != len(game.learned_params):
        raise ImitgameError(
            f"starts have shape {list(starts.shape)}, expected [S, {len(game.learned_params)}]"
        )
    s = starts.shape[0]
    counts = counts.reshape(k, *counts.shape[-2:]).repeat_interleave(s, 0)
    if theta_known is not None:
        theta_known = theta_known.repeat_interleave(s, 0)
    problem = build_counts(game, counts, algo, theta_known=theta_known)
    stab = problem.trainer.stabilizer
    with torch.no_grad():
        stab.theta_learned.copy_(starts.repeat(k, 1))
        stab.project()
    problem.trainer.last_theta = stab.theta().detach().clone()
    for _ in problem.trainer.iterate(progress=progress):
        pass
    with torch.no_grad():
        value = problem.trainer.objective(problem.trainer.answer).value.view(k, s)
    best = value.argmin(1) + torch.arange(k, device=value.device) * s
    return problem.trainer.answer.theta().detach()[best], problem


def counts_config(**overrides: object) -> CountsConfig:
    """This problem's ``algo`` (:class:`~imitgame.config.CountsConfig`) with ``overrides``."""
    return CountsConfig(**overrides)  # type: ignore[arg-type]


def build(game: FiniteGame, algo: AlgoConfig, data: DataConfig, seed: int) -> CountsProblem:
    """The registry's builder: ``data.instances`` data sets of ``data.counts`` draws per player
    at the game's θ (``data.param_spread`` spreads the learned entries per data set); with
    ``data.bootstrap=R`` each data set's R multinomial resamples join the batch
    (K·(1 + R) instances, a :class:`~imitgame.problems.bootstrap.BootstrapProblem`)."""
    generator = torch.Generator().manual_seed(seed)
    theta = synthetic_theta(game, data, generator)
    n_draws = data.counts or 10000
    counts = simulate_counts(game, theta, int(n_draws), generator)
    k = counts.shape[0]

    def wire(batch: Tensor) -> CountsProblem:
        reps = batch.shape[0] // k - 1  # replicate r of data set j sits at row k + j·R + r
        rows = torch.cat([theta, theta.repeat_interleave(reps, 0)])
        problem = build_counts(game, batch, algo, theta_known=rows)
        problem.theta_true = rows
        problem.originals = k
        return problem

    return with_bootstrap(wire, counts, data, seed, replicate=counts_with_replicates)


def recovery_error(problem: CountsProblem) -> Tensor | None:
    """Relative error of the learned entries per instance ``[K]`` (synthetic data)."""
    if problem.theta_true is None:
        return None
    theta = problem.trainer.answer.theta().detach()
    return relative_error(theta, problem.theta_true, problem.learn_index)


SPEC = register_problem(
    ProblemSpec(
        name="qre_counts",
        config=CountsConfig,
        build=build,
        game_type=FiniteGame,
        description="θ (and λ) of a finite game from observed action counts: likelihood + regret",
    )
)


def cramer_rao_sd(game: FiniteGame, theta: Tensor, draws: int) -> Tensor:
    """The Cramér–Rao bound: the smallest standard deviation ``[L]`` that any unbiased estimator of
    the learned entries of ``theta [p]`` reaches from ``draws`` i.i.d. actions per player at the
    logit QRE. Fisher information of the counts, I(θ) = N Σ_i Σ_a ∇σ_ia ∇σ_iaᵀ / σ_ia, with
    ∇σ = ∂σ/∂θ_learned by implicit differentiation of the fixed point r(x, θ) = 0 of
    :func:`~imitgame.game.finite.logit_qre` (x = log σ): ∂x/∂θ = −(∂r/∂x)⁻¹ ∂r/∂θ."""
    if draws < 1:
        raise ImitgameError(f"draws must be >= 1, got {draws}")
    theta = theta.detach()
    index = torch.tensor([game.param_index(p) for p in game.learned_params], device=theta.device)
    mask = game.action_mask
    sigma = logit_qre(game, theta[None])[0]  # [n, A]
    x = torch.log(sigma.clamp(min=torch.finfo(sigma.dtype).tiny)).masked_fill(~mask, 0.0)

    def residual(x: Tensor, learned: Tensor) -> Tensor:
        full = theta.index_copy(0, index, learned)
        return fixed_point_residual(mask, x, game.payoff_tensor(full), game.precision(full))

    learned = theta[index]
    d_x = jacrev(residual, 0)(x, learned).reshape(x.numel(), x.numel())
    d_theta = jacrev(residual, 1)(x, learned)  # [n·A, L]
    dx = -torch.linalg.solve(d_x, d_theta).reshape(*x.shape, -1)  # [n, A, L]
    dsigma = sigma[..., None] * (dx - (sigma[..., None] * dx).sum(-2, keepdim=True))
    inverse_sigma = torch.where(mask, 1 / sigma.clamp(min=torch.finfo(sigma.dtype).tiny), 0.0)
    information = draws * torch.einsum("nal,nam,na->lm", dsigma, dsigma, inverse_sigma)
    return torch.linalg.inv(information).diagonal().sqrt()
