"""The two estimators for noisy observed actions, against the number of observations and the noise.

    python scripts/noisy_estimators.py [--datasets 40] [--quick]

Data: equilibrium play under the true θ (closed form) plus Gaussian measurement error of
``noise`` × the mean action, B observations per data set, ``datasets`` data sets per cell solved
as one batch (K instances). Estimators, on the same data:

* naive  — ``algo.problem=inverse``: min_θ mean_b φ(a_b; θ), the exploitability of the noisy
  actions themselves (exact best responses, L-BFGS);
* joint  — ``algo.problem=noisy_inverse``: θ and an equilibrium fitted jointly (observation loss
  + regret, :mod:`imitgame.problems.noisy`).

Games: Cournot (3 firms) learning the costs (the first-order conditions are affine in the
actions and in θ: the naive estimator is consistent too), Cournot learning the demand slope b
(θ multiplies the actions: errors in variables), and the fish war in stationary Markov strategies
learning α (log utilities; exact values and best responses of the MPE's strategy class,
:class:`envs.fish_war.StationaryFishWar`). Reported per cell: the root-mean-square relative error
over the data sets, the mean signed relative error (bias), and per (game, noise, estimator) the
log-log slope of RMSE against B (1/√B: −0.5). Writes runs/noisy/noisy_estimators.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from envs.cournot import Cournot
from envs.fish_war import StationaryFishWar
from imitgame.config import AlgoConfig, DataConfig, NoisyConfig
from imitgame.problems.inverse import build_inverse, observed_play
from imitgame.problems.noisy import build_noisy

OUT = Path("runs/noisy")
GAMES = {
    "cournot_costs": lambda: Cournot(learn=["costs"]),
    "cournot_slope": lambda: Cournot(learn=["slope"]),
    "fish_war_alpha": lambda: StationaryFishWar(learn=["alpha"]),
}
NAIVE = AlgoConfig(tol_exploitability=None, tol_step=1e-10, iterations=200, eval_every=10)
JOINT = NoisyConfig()


def estimate(game, observed, estimator: str) -> torch.Tensor:
    """θ̂ ``[K, p]`` of one estimator on ``observed`` (K data sets, one batch)."""
    if estimator == "naive":
        problem = build_inverse(game, observed, NAIVE)
    else:
        problem = build_noisy(game, observed, JOINT)
    for record in problem.trainer.iterate(progress=False):
        problem.on_record(record)
    return problem.trainer.answer.theta().detach()


def slope(bs: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(B)."""
    return float(np.polyfit(np.log(bs), np.log(values), 1)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--observations", type=int, nargs="+", default=[25, 100, 400, 1600])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--quick", action="store_true", help="2 B values, one noise level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.observations, args.noise = [25, 400], [0.2]
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cells = []
    for name, make in GAMES.items():
        game = make()
        learn = [game.param_index(p) for p in game.learned_params]
        for i, noise in enumerate(args.noise):
            for j, b in enumerate(args.observations):
                data = DataConfig(instances=args.datasets, noise_std=noise, observations=b)
                # fresh data in every cell (one seed per (noise, B)); the estimators share them
                observed = observed_play(game, data, args.seed + 100 * i + j)
                truth = observed.theta_true[:, learn]
                for estimator in ("naive", "joint"):
                    t0 = time.perf_counter()
                    theta = estimate(game, observed, estimator)[:, learn]
                    rel = (theta - truth) / truth.abs()
                    rmse = float(rel.pow(2).mean().sqrt())
                    cells.append(
                        {
                            "game": name,
                            "noise": noise,
                            "observations": b,
                            "estimator": estimator,
                            "rmse": rmse,
                            "bias": float(rel.mean()),
                            "bias_se": float(rel.std() / math.sqrt(rel.numel())),
                            "seconds": time.perf_counter() - t0,
                        }
                    )
                    c = cells[-1]
                    print(
                        f"{name:15s} noise {noise:.2f} B {b:5d} {estimator:5s}: rmse "
                        f"{c['rmse']:.2e} bias {c['bias']:+.2e} ± {c['bias_se']:.1e} "
                        f"({c['seconds']:.1f} s)",
                        flush=True,
                    )
    slopes = []
    for name in GAMES:
        for noise in args.noise:
            for estimator in ("naive", "joint"):
                sel = [
                    c
                    for c in cells
                    if c["game"] == name and c["noise"] == noise and c["estimator"] == estimator
                ]
                bs = [c["observations"] for c in sel]
                slopes.append(
                    {
                        "game": name,
                        "noise": noise,
                        "estimator": estimator,
                        "slope": slope(bs, [c["rmse"] for c in sel]),
                        "rmse_at_largest_B": sel[-1]["rmse"],
                        "bias_at_largest_B": sel[-1]["bias"],
                    }
                )
    wall = time.perf_counter() - started
    payload = {
        "datasets": args.datasets,
        "observations": args.observations,
        "noise": args.noise,
        "cells": cells,
        "slopes": slopes,
        "wall_seconds": wall,
    }
    (OUT / "noisy_estimators.json").write_text(json.dumps(payload, indent=2))
    lines = [
        f"Relative RMSE over {args.datasets} data sets; slope of log RMSE on log B "
        f"(B = {args.observations}); 1/√B is −0.5.",
        "",
        "| game | noise | estimator | slope | RMSE at B="
        + str(args.observations[-1])
        + " | bias at B="
        + str(args.observations[-1])
        + " |",
        "|---|---|---|---|---|---|",
    ]
    for s in slopes:
        lines.append(
            f"| {s['game']} | {s['noise']:g} | {s['estimator']} | {s['slope']:+.2f} | "
            f"{s['rmse_at_largest_B']:.2e} | {s['bias_at_largest_B']:+.2e} |"
        )
    (OUT / "noisy_estimators.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GAMES), figsize=(5 * len(GAMES), 4), squeeze=False)
    for ax, name in zip(axes[0], GAMES):
        for colour, noise in enumerate(args.noise):
            for estimator, style in (("naive", "--"), ("joint", "-")):
                sel = [
                    c
                    for c in cells
                    if c["game"] == name and c["noise"] == noise and c["estimator"] == estimator
                ]
                ax.loglog(
                    [c["observations"] for c in sel],
                    [c["rmse"] for c in sel],
                    style,
                    color=f"C{colour}",
                    marker="o" if estimator == "joint" else "s",
                    label=f"{estimator}, noise {noise:g}",
                )
        bs = np.array(args.observations, dtype=float)
        ref = [c["rmse"] for c in cells if c["game"] == name and c["estimator"] == "joint"][0]
        ax.loglog(bs, ref * np.sqrt(bs[0] / bs), ":", color="grey", label="1/√B")
        ax.set_title(name)
        ax.set_xlabel("observations B")
        ax.set_ylabel("relative RMSE of θ̂")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "noisy_estimators.png", dpi=120)
    print(f"wrote {OUT}/noisy_estimators.json, .md, .png in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
