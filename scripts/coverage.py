"""Coverage of nominal 95 % bootstrap intervals on synthetic noisy data.

    python scripts/coverage.py [--datasets 200] [--replicates 400] [--observations 100]
                               [--only NAME ...]

Each row draws ``datasets`` data sets from the true θ (closed-form equilibrium plus Gaussian
measurement error of ``noise`` × the mean action, B observations each), and solves every data set
and its R bootstrap replicates as instances of one batch (chunked: ``--chunk`` data sets, i.e.
chunk·(1 + R) instances, per batch) with the consistent estimator (``algo.problem=noisy_inverse``).
Per row: the share of percentile intervals that cover the truth (pooled over the learned
parameters), its binomial standard error — computed with n = number of data sets, conservative
because the intervals of one data set are dependent — the mean width (relative to |θ|), the wall
seconds, and, as a diagnostic, the coverage of the basic bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo]
and the mean bias of θ̂. Writes runs/coverage/coverage.json and coverage.md.

A finite game's row (``Row.counts`` set) draws ``datasets`` vectors of action counts from the
exact logit QRE at the true θ instead, and fits them with ``algo.problem=qre_counts``; a replicate
is a multinomial resample of each player's draws (:func:`counts_with_replicates`).

The rows are a list of builders, ``ROWS``: a row is one function returning a :class:`Row`
(the game, the noise, B); add a game by adding one function. ``--only NAME ...`` runs a subset
and writes ``coverage-NAME.json`` / ``.md`` beside the full table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from envs.cournot import Cournot
from envs.fish_war import StationaryFishWar
from envs.rps import RockPaperScissors
from imitgame.config import CountsConfig, DataConfig, NoisyConfig
from imitgame.data.observed import ObservedPlay
from imitgame.game.base import StaticGame
from imitgame.game.finite import simulate_counts
from imitgame.problems.bootstrap import (
    counts_with_replicates,
    percentile_intervals,
    with_replicates,
)
from imitgame.problems.inverse import observed_play
from imitgame.problems.noisy import build_noisy
from imitgame.problems.qre import counts_config, fit_counts

OUT = Path("runs/coverage")


@dataclass
class Row:
    """One coverage row: a game with its learned θ, the noise level and the solver settings."""

    name: str
    game: StaticGame
    noise: float
    algo: NoisyConfig | CountsConfig
    counts: int | None = None  # a finite game's row: observed actions per player (no noise)


def cournot_row() -> Row:
    """Cournot, 3 firms, costs learned (a, b known), noise 10 % of the mean quantity."""
    return Row("cournot_costs", Cournot(learn=["costs"]), 0.1, NoisyConfig())


def cournot_slope_row() -> Row:
    """Cournot, demand slope b learned (θ multiplies the quantities: where the exploitability of
    the noisy data is biased), noise 10 %."""
    return Row("cournot_slope", Cournot(learn=["slope"]), 0.1, NoisyConfig())


def fish_war_row() -> Row:
    """Fish war (Markov; stationary strategies, exact MPE values), α learned, noise 10 %."""
    return Row("fish_war_alpha", StationaryFishWar(learn=["alpha"]), 0.1, NoisyConfig())


def qre_row() -> Row:
    """Rock-paper-scissors under logit QRE (λ = 4 known), two wins learned from 1,000 observed
    actions per player drawn from the exact QRE; the estimator is ``algo.problem=qre_counts``
    and a replicate is a multinomial resample of each player's draws. Adam, not the problem's
    default L-BFGS: Adam's steps are per instance, so each of the 20,050 instances of a chunk is
    solved as it would be alone (L-BFGS shares one line search across the batch: an L-BFGS run
    of this row had not finished after 260 s where Adam's takes about 130 s); regret weight 1,
    300 steps (θ̂ moves < 4e-4 from 300 to 1,500 steps; interval widths are ~0.2-0.5)."""
    game = RockPaperScissors(qre_lambda=4.0)
    algo = counts_config(
        iterations=300, optimizer="adam", lr_theta=0.5, regret_weight=1.0,
        tol_exploitability=1e-10, tol_step=1e-7,
    )  # fmt: skip
    return Row("rps_qre_wins", game, 0.0, algo, counts=1000)


ROWS: list[Callable[[], Row]] = [cournot_row, cournot_slope_row, fish_war_row, qre_row]


def chunk_of(observed: ObservedPlay, start: int, stop: int) -> ObservedPlay:
    pick = slice(start, stop)
    return ObservedPlay(
        observed.actions[pick],
        None if observed.context is None else observed.context[pick],
        observed.theta_true[pick],
        observed.theta_known[pick],
    )


def counts_estimates(row: Row, datasets: int, replicates: int, chunk: int, level: float, seed: int):
    """A finite game's row: ``datasets`` count vectors drawn from the exact QRE at the true θ,
    each fitted with its ``replicates`` multinomial resamples as one batch (:func:`fit_counts`).
    Returns θ̂, the interval bounds and the truth, ``[datasets, L]`` each."""
    game = row.game
    learn = [game.param_index(p) for p in game.learned_params]
    theta = game.true_params.expand(datasets, -1).clone()
    counts = simulate_counts(game, theta, row.counts, torch.Generator().manual_seed(seed))
    hats, lows, highs = [], [], []
    for start in range(0, datasets, chunk):
        part = counts[start : start + chunk]
        k = part.shape[0]
        batch = counts_with_replicates(part, replicates, seed + start)
        known = game.true_params.expand(batch.shape[0], -1)
        estimate, _ = fit_counts(game, batch, row.algo, theta_known=known)
        estimate = estimate[:, learn]
        low, high = percentile_intervals(estimate[k:].reshape(k, replicates, -1), level)
        hats.append(estimate[:k])
        lows.append(low)
        highs.append(high)
    return torch.cat(hats), torch.cat(lows), torch.cat(highs), theta[:, learn]


def run_row(row: Row, datasets: int, replicates: int, b: int, chunk: int, level: float, seed: int):
    started = time.perf_counter()
    game = row.game
    if row.counts is not None:
        hat, low, high, truth = counts_estimates(row, datasets, replicates, chunk, level, seed)
        return summarise(row, hat, low, high, truth, started, replicates, row.counts, level)
    learn = [game.param_index(p) for p in game.learned_params]
    data = DataConfig(instances=datasets, noise_std=row.noise, observations=b)
    observed = observed_play(game, data, seed)
    hats, lows, highs = [], [], []
    for start in range(0, datasets, chunk):
        part = chunk_of(observed, start, min(start + chunk, datasets))
        k = part.n_instances
        problem = build_noisy(game, with_replicates(part, replicates, seed + start), row.algo)
        for record in problem.trainer.iterate(progress=False):
            problem.on_record(record)
        theta = problem.trainer.answer.theta().detach()[:, learn]
        low, high = percentile_intervals(theta[k:].reshape(k, replicates, -1), level)
        hats.append(theta[:k])
        lows.append(low)
        highs.append(high)
    hat, low, high = torch.cat(hats), torch.cat(lows), torch.cat(highs)
    truth = observed.theta_true[:, learn]
    return summarise(row, hat, low, high, truth, started, replicates, b, level)


def summarise(row: Row, hat, low, high, truth, started: float, replicates: int, b: int, level):
    """The row's figures from θ̂, the interval bounds and the truth ``[datasets, L]``."""
    game, datasets = row.game, hat.shape[0]
    covered = (low <= truth) & (truth <= high)
    basic = (2 * hat - high <= truth) & (truth <= 2 * hat - low)
    coverage = float(covered.double().mean())
    return {
        "name": row.name,
        "datasets": datasets,
        "coverage": coverage,
        "se": math.sqrt(coverage * (1 - coverage) / datasets),
        "mean_width": float(((high - low) / truth.abs()).mean()),
        "wall_seconds": time.perf_counter() - started,
        "intervals": int(covered.numel()),
        "coverage_by_param": dict(zip(game.learned_params, covered.double().mean(0).tolist())),
        "coverage_basic": float(basic.double().mean()),
        "mean_relative_bias": float(((hat - truth) / truth.abs()).mean()),
        "replicates": replicates,
        "observations": b,
        "noise": row.noise,
        "level": level,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--observations", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    names = [make().name for make in ROWS]
    parser.add_argument(
        "--only", nargs="*", choices=names, help="a subset of the rows (own output files)"
    )
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = []
    for make in ROWS:
        if args.only and make().name not in args.only:
            continue
        result = run_row(
            make(), args.datasets, args.replicates, args.observations, args.chunk, args.level,
            args.seed,
        )  # fmt: skip
        rows.append(result)
        print(
            f"{result['name']}: coverage {result['coverage']:.3f} ± {result['se']:.3f} "
            f"(basic {result['coverage_basic']:.3f}), width {result['mean_width']:.3g}, "
            f"{result['wall_seconds']:.0f} s",
            flush=True,
        )
    wall = time.perf_counter() - started
    payload = {"rows": rows, "wall_seconds": wall, "target": [0.92, 0.98]}
    stem = "coverage" if not args.only else "coverage-" + "-".join(args.only)
    (OUT / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    lines = [
        f"Nominal {100 * args.level:g} % percentile bootstrap intervals, {args.replicates} "
        f"replicates, B = {args.observations} observations per data set (a finite game's row: "
        "its observed actions per player); SE with n = data sets.",
        "",
        "| row | data sets | intervals | coverage | SE | basic-interval coverage | "
        "mean width (rel.) | mean bias (rel.) | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['datasets']} | {r['intervals']} | {r['coverage']:.3f} | "
            f"{r['se']:.3f} | {r['coverage_basic']:.3f} | {r['mean_width']:.3g} | "
            f"{r['mean_relative_bias']:+.2e} | {r['wall_seconds']:.0f} |"
        )
    lines.append(f"\nWhole script: {wall:.0f} s.")
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
