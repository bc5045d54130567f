"""R bootstrap replicates solved as one batch vs one fit of the same data.

    python benchmarks/bootstrap.py [--replicates 1000] [--observations 100] [--problem P]

One 100-observation noisy Cournot instance (3 firms, costs learned, noise 10 % of the mean
quantity). Side by side in one run: one fit of the instance alone, and the instance with its R
resampled replicates as K = 1 + R instances of one batch (``data.bootstrap=R``), both through the
registry's builder and the one trainer with the same settings. Prints both wall times and the ratio
(target: at most 10x for R = 1000), and the 95 % percentile interval.
"""

from __future__ import annotations

import argparse
import time

import torch

from envs.cournot import Cournot
from imitgame.config import DataConfig, typed
from imitgame.problems import problem_spec


def fit(game: Cournot, problem: str, data: DataConfig, seed: int):
    spec = problem_spec(problem, game)
    algo = typed(spec.config, {"problem": problem}, "algo")
    wired = spec.build(game, algo, data, seed)
    for record in wired.trainer.iterate(progress=False):
        wired.on_record(record)
    return wired.results()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--problem", default="noisy_inverse")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(args.threads)
    game = Cournot()
    common = {"noise_std": args.noise, "observations": args.observations}
    fit(game, args.problem, DataConfig(**common), args.seed)  # warm-up (imports, allocator)

    start = time.perf_counter()
    one = fit(game, args.problem, DataConfig(**common), args.seed)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    boot = fit(game, args.problem, DataConfig(**common, bootstrap=args.replicates), args.seed)
    t_boot = time.perf_counter() - start

    same = torch.allclose(one.theta_hat, boot.theta_hat, rtol=1e-6)
    print(
        f"Cournot, 3 firms, {args.observations} noisy observations (noise {args.noise}), "
        f"algo.problem={args.problem} with its defaults"
    )
    print(f"one fit (K = 1):                           {t_one:8.3f} s  ({one.iterations} it.)")
    print(
        f"fit + {args.replicates} replicates, one batch (K = {1 + args.replicates}): "
        f"{t_boot:8.3f} s  ({boot.iterations} it.)"
    )
    print(f"ratio bootstrap / one fit:                 {t_boot / t_one:8.2f}x  (target <= 10x)")
    print(f"point estimate equal in both runs:         {same}")
    for name, (low, high) in (boot.intervals or {}).items():
        estimate = float(one.theta_hat[0, game.param_index(name)])
        print(f"  {name}: {estimate:.4f} [{low:.4f}, {high:.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
