"""Batched vs one-at-a-time inverse solving on the paper's 500-instance Cournot protocol.

    python benchmarks/static_inverse.py [--instances 500] [--loop-subset 25] [--threads 1]

Both sides run the same algorithm (the Table 2 Cournot row of :mod:`experiments.table2`: exact
best-response oracle, Adam, cosine schedule, per-instance stopping on exploitability) through the
same :func:`imitgame.problems.inverse.build_inverse` / GDA; the batched side solves all K instances
as one batch, the loop side one instance per problem. The loop is timed on a subset and extrapolated
linearly to K (printed as such). Prints both times, the ratio, and that the answers agree.
"""

from __future__ import annotations

import argparse
import time

import torch

from experiments.table2 import cournot_paper, rows, warm_up
from imitgame.data.observed import ObservedPlay, simulate_observed
from imitgame.problems.inverse import build_inverse, score


def solve(game, observed: ObservedPlay, algo) -> torch.Tensor:
    problem = build_inverse(game, observed, algo)
    for _ in problem.trainer.iterate(progress=False):
        pass
    return score(problem).theta_hat


def subset(observed: ObservedPlay, i: int) -> ObservedPlay:
    pick = slice(i, i + 1)
    return ObservedPlay(
        observed.actions[pick],
        None if observed.context is None else observed.context[pick],
        observed.theta_true[pick],
        observed.theta_known[pick],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--loop-subset", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(args.threads)
    algo = next(r.algo for r in rows(None) if r.make is cournot_paper)
    game, theta = cournot_paper(args.instances, torch.Generator().manual_seed(args.seed))
    observed = simulate_observed(game, theta)
    warm_up("cpu")

    start = time.perf_counter()
    batched = solve(game, observed, algo)
    t_batch = time.perf_counter() - start

    m = min(args.loop_subset, args.instances)
    start = time.perf_counter()
    looped = torch.cat([solve(game, subset(observed, i), algo) for i in range(m)])
    t_subset = time.perf_counter() - start
    t_loop = t_subset * args.instances / m

    agree = torch.allclose(looped, batched[:m], rtol=1e-9, atol=1e-12)
    print(
        f"Cournot paper protocol, K = {args.instances} instances, {algo.iterations} iterations max"
    )
    print(f"batched (one problem, K = {args.instances}):  {t_batch:8.3f} s")
    print(
        f"loop (one problem per instance):     {t_loop:8.3f} s  "
        f"(timed on {m} instances: {t_subset:.3f} s, extrapolated linearly to {args.instances})"
    )
    print(f"ratio loop / batched:                {t_loop / t_batch:8.1f}x")
    print(f"answers agree on the {m} looped instances: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
