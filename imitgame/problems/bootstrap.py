"""Bootstrap confidence intervals, solved as one batch: replicates are instances.

``data.bootstrap=R`` resamples each instance's B observations with replacement R times and appends
the K·R replicates to the K original instances in the instance dimension, so the one trainer solves
K·(1 + R) inverse problems as one batch (every problem's steps are per instance, so a replicate is
solved exactly as it would be alone). The answer reports the K originals; per learned parameter j
the percentile interval at level 1 − α is

    [q_{α/2}(θ̂*_j), q_{1−α/2}(θ̂*_j)]      over the R replicate estimates θ̂*  (``data.ci_level``).

Where the first-order rank test says θ is not identified, an interval from the replicates would
only show where the solver happened to stop; the report is then the range of θ over inverse
equilibria instead: the set {θ ∈ Θ : g(a; θ) = 0} of parameters whose first-order conditions g
hold at the observed play is, to first order, θ̂ + null(J) with J = ∂g/∂θ_learned at (a, θ̂) — exact
when g is affine in θ, as in Cournot — and the range of θ_j over it, intersected with the box Θ, is
two linear programs per parameter (scipy's ``linprog``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imitgame.config import DataConfig
from imitgame.data.observed import ObservedPlay
from imitgame.errors import ImitgameError
from imitgame.game.base import StaticGame
from imitgame.results import Results
from imitgame.solver.trainer import EvalRecord

SEED_OFFSET = 7919  # the resampling stream is apart from the data's own stream


def resample(observed: ObservedPlay, replicates: int, generator: torch.Generator) -> ObservedPlay:
    """R bootstrap replicates of every instance: ``[K·R, B, ...]``, replicate r of instance k at
    row k·R + r (observations drawn with replacement within the instance)."""
    k, b = observed.actions.shape[:2]
    index = torch.randint(b, (k, replicates, b), generator=generator).to(observed.actions.device)
    rows = torch.arange(k, device=index.device)[:, None, None].expand_as(index)

    def pick(tensor: Tensor | None) -> Tensor | None:
        return None if tensor is None else tensor[rows, index].flatten(0, 1)

    def repeat(tensor: Tensor | None) -> Tensor | None:
        return None if tensor is None else tensor.repeat_interleave(replicates, 0)

    return ObservedPlay(
        pick(observed.actions),
        pick(observed.context),
        repeat(observed.theta_true),
        repeat(observed.theta_known),
    )


def with_replicates(observed: ObservedPlay, replicates: int, seed: int) -> ObservedPlay:
    """The K originals followed by their K·R replicates: ``[K·(1 + R), B, ...]``."""
    reps = resample(observed, replicates, torch.Generator().manual_seed(seed + SEED_OFFSET))

    def cat(a: Tensor | None, b: Tensor | None) -> Tensor | None:
        return None if a is None else torch.cat([a, b])

    return ObservedPlay(
        cat(observed.actions, reps.actions),
        cat(observed.context, reps.context),
        cat(observed.theta_true, reps.theta_true),
        cat(observed.theta_known, reps.theta_known),
    )


def resample_counts(counts: Tensor, replicates: int, generator: torch.Generator) -> Tensor:
    """R bootstrap replicates of observed action counts ``counts [K, n, A]``: ``[K·R, n, A]``,
    replicate r of data set k at row k·R + r. Resampling player i's N_i draws with replacement
    is a multinomial draw c* ~ Mult(N_i, c_i / N_i), sampled exactly as the chain of binomials
    c*(a) ~ Bin(N_i − Σ_{b<a} c*(b), p(a) / Σ_{b≥a} p(b)) (one batched draw per action)."""
    k, n, a = counts.shape
    cpu = counts.detach().cpu().double()
    freq = (cpu / cpu.sum(-1, keepdim=True)).repeat_interleave(replicates, 0)  # [K·R, n, A]
    left = cpu.sum(-1).repeat_interleave(replicates, 0)  # draws not yet placed [K·R, n]
    tail = freq.flip(-1).cumsum(-1).flip(-1)  # Σ_{b ≥ a} p(b)
    out = torch.zeros_like(freq)
    for j in range(a - 1):  # over actions (a handful), every replicate and player at once
        p = (freq[..., j] / tail[..., j].clamp(min=1e-300)).clamp(0.0, 1.0)
        out[..., j] = torch.binomial(left, p, generator=generator)
        left = left - out[..., j]
    out[..., a - 1] = left
    return out.to(counts)


def counts_with_replicates(counts: Tensor, replicates: int, seed: int) -> Tensor:
    """The K data sets followed by their K·R replicates: ``[K·(1 + R), n, A]``."""
    generator = torch.Generator().manual_seed(seed + SEED_OFFSET)
    return torch.cat([counts, resample_counts(counts, replicates, generator)])


def percentile_intervals(replicates: Tensor, level: float = 0.95) -> tuple[Tensor, Tensor]:
    """Percentile intervals ``low, high [K, p]`` from replicate estimates ``[K, R, p]``."""
    alpha = 1.0 - level
    ordered = replicates.sort(dim=1).values  # (torch.quantile caps its input at 2^24 entries)
    r = ordered.shape[1]

    def quantile(q: float) -> Tensor:  # linear interpolation, as torch/numpy's default
        pos = q * (r - 1)
        lo, frac = int(pos), pos - int(pos)
        hi = min(lo + 1, r - 1)
        return ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo])

    return quantile(alpha / 2), quantile(1 - alpha / 2)


def own_conditions(game: StaticGame, actions: Tensor, theta: Tensor, state: Tensor) -> Tensor:
    """g_i = ∂u_i/∂a_i for every observation ``[B, n, d]`` of one instance (``theta [p]``,
    ``state [B, s]``), differentiable in θ."""

    def payoff_of(acts: Tensor, st: Tensor) -> Tensor:  # [n, d] -> [n]
        return game.payoffs_in(st[None], acts[None], theta[None])[0]

    jac = torch.vmap(torch.func.jacrev(payoff_of))(actions, state)  # [B, n, n, d]
    return torch.diagonal(jac, dim1=1, dim2=2).movedim(-1, 1)  # [B, n, d]


def equilibrium_range(
    game: StaticGame,
    actions: Tensor,
    theta_hat: Tensor,
    learn_index: Tensor,
    state: Tensor,
    *,
    rtol: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """Range ``low, high [p]`` of each learned θ_j over {θ̂ + N t ∈ Θ}, N the null space of the
    first-order conditions' Jacobian at one instance's play ``actions [B, n, d]`` (``theta_hat
    [p]``, ``state [B, s]``); interior actions only. Entries not learned keep θ̂."""
    from scipy.optimize import linprog

    interior = (actions > game.action_low + 1e-9) & (actions < game.action_high - 1e-9)

    def conditions(learned: Tensor) -> Tensor:
        full = theta_hat.index_copy(0, learn_index, learned)
        return (own_conditions(game, actions.detach(), full, state) * interior).flatten()

    jac = torch.func.jacrev(conditions)(theta_hat[learn_index].detach())  # [rows, L]
    _, sv, vh = torch.linalg.svd(jac.detach().cpu().double(), full_matrices=True)
    rank = int((sv > rtol * sv.max().clamp(min=1e-30)).sum())
    null = vh[rank:].T.numpy()  # [L, m]
    centre = theta_hat[learn_index].detach().cpu().double().numpy()
    low_box = game.param_low[learn_index].detach().cpu().double().numpy()
    high_box = game.param_high[learn_index].detach().cpu().double().numpy()
    low, high = theta_hat.detach().cpu().double().clone(), theta_hat.detach().cpu().double().clone()
    if null.shape[1] == 0:
        return low, high
    a_ub = np.vstack([null, -null])
    b_ub = np.concatenate([high_box - centre, centre - low_box])
    for row, j in enumerate(learn_index.tolist()):
        for sign, out in ((1.0, low), (-1.0, high)):
            res = linprog(sign * null[row], A_ub=a_ub, b_ub=b_ub, bounds=(None, None))
            value = centre[row] + null[row] @ res.x if res.success else np.nan
            out[j] = float(value)
    return low, high


class BootstrapProblem:
    """A wired problem solved on K originals + K·R replicates; reports the originals with
    intervals (or ranges, where θ is not identified). Everything else is the inner problem's."""

    def __init__(self, inner: Any, instances: int, replicates: int, level: float) -> None:
        self.inner = inner
        self.instances = instances
        self.replicates = replicates
        self.level = level

    def __getattr__(self, name: str) -> Any:  # game, trainer, learn_index, theta_true, ...
        return getattr(self.__dict__["inner"], name)

    def on_record(self, record: EvalRecord) -> dict[str, float]:
        return self.inner.on_record(record)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def summary_lines(self, results: Results) -> list[str]:
        x = results.extras["bootstrap"]
        lines = self.inner.summary_lines(results)
        kind = (
            "ranges over inverse equilibria (θ not identified)"
            if x["kind"] == "range"
            else f"{100 * self.level:g} % percentile intervals"
        )
        return lines + [
            f"  bootstrap       {self.replicates} replicates in the same batch "
            f"({x['replicates_converged']} converged); intervals: {kind}"
        ]

    def save_artifacts(self, run_dir: Path, env_config: dict[str, Any]) -> None:
        self.inner.save_artifacts(run_dir, env_config)
        from torch.utils.tensorboard import SummaryWriter

        results = self.__dict__.get("_last") or self.results()
        if not results.intervals:
            return
        with SummaryWriter(log_dir=str(Path(run_dir) / "tb")) as writer:
            step = results.iterations
            for name, (low, high) in results.intervals.items():
                writer.add_scalar(f"intervals/{name}_low", low, step)
                writer.add_scalar(f"intervals/{name}_high", high, step)
            kind = results.extras["bootstrap"]["kind"]
            text = "\n".join(
                f"{n}: [{lo:.6g}, {hi:.6g}]" for n, (lo, hi) in results.intervals.items()
            )
            writer.add_text("intervals", f"{kind} ({self.replicates} replicates)\n{text}", step)

    def results(self) -> Results:
        full = self.inner.results()
        k, r = self.instances, self.replicates
        originals = slice(0, k)
        learn = full.learn_index
        reps = full.theta_hat[k:].reshape(k, r, -1)
        low, high = percentile_intervals(reps, self.level)
        kind = "percentile"
        identified = full.identified[originals] if full.identified is not None else None
        unidentified = [] if identified is None else (~identified).nonzero().flatten().tolist()
        if unidentified:
            kind = "range"
            observed = self.inner.observed
            state = observed.context
            game = self.inner.game
            for i in unidentified:
                ctx = (
                    state[i]
                    if state is not None
                    else game.default_context().expand(observed.actions.shape[1], -1)
                )
                lo, hi = equilibrium_range(
                    game, observed.actions[i], full.theta_hat[i].to(game.dtype).to(game.device),
                    self.inner.learn_index, ctx,
                )  # fmt: skip
                low[i], high[i] = lo.to(low), hi.to(high)
        names = full.learned_params
        per_instance = [
            {n: [float(low[i, j]), float(high[i, j])] for n, j in zip(names, learn)}
            for i in range(k)
        ]
        converged = full.converged
        cut = lambda t: None if t is None else t[originals]  # noqa: E731
        results = Results(
            problem=full.problem,
            param_names=full.param_names,
            learned_params=names,
            theta_hat=full.theta_hat[originals],
            theta_true=cut(full.theta_true),
            exploitability=full.exploitability[originals],
            exploitability_exact=full.exploitability_exact,
            converged=cut(converged),
            identified=cut(full.identified),
            identifiability_rank=cut(full.identifiability_rank),
            iterations=full.iterations,
            wall_seconds=full.wall_seconds,
            tol_exploitability=full.tol_exploitability,
            env=full.env,
            intervals={n: tuple(v) for n, v in per_instance[0].items()},
            exploitability_method=full.exploitability_method,
            extras={
                **full.extras,
                "interval_label": f"{100 * self.level:g}% interval"
                if kind == "percentile"
                else "range (not identified)",
                "bootstrap": {
                    "replicates": r,
                    "level": self.level,
                    "kind": kind,
                    "method": (
                        "percentile of the replicate estimates"
                        if kind == "percentile"
                        else "range of θ over θ̂ + null(∂g/∂θ) within Θ (linear programs)"
                    ),
                    "replicates_converged": None if converged is None else int(converged[k:].sum()),
                    "intervals_per_instance": per_instance,
                },
            },
        )
        self._last = results
        return results


def with_bootstrap(
    build: Callable[[Any], Any],
    observed: Any,
    data: DataConfig,
    seed: int,
    replicate: Callable[[Any, int, int], Any] = with_replicates,
) -> Any:
    """``build(observed)``, or with ``data.bootstrap = R > 0`` a :class:`BootstrapProblem`
    built on the originals and their replicates as one batch. ``observed``: an
    :class:`ObservedPlay` (``replicate`` = :func:`with_replicates`) or counts ``[K, n, A]``
    (``replicate`` = :func:`counts_with_replicates`)."""
    if data.bootstrap == 0:
        return build(observed)
    k = observed.n_instances if isinstance(observed, ObservedPlay) else int(observed.shape[0])
    problem = build(replicate(observed, data.bootstrap, seed))
    return BootstrapProblem(problem, k, data.bootstrap, data.ci_level)


def reject_bootstrap(data: DataConfig, problem: str) -> None:
    """One-line error for ``data.bootstrap`` on a problem kind that does not resample."""
    if data.bootstrap:
        raise ImitgameError(
            f"data.bootstrap={data.bootstrap} is not supported by algo.problem={problem} "
            "(supported: inverse, noisy_inverse, qre_counts)"
        )
