"""The structural market's fit with the cost level κ computed once per θ vs at every call.

    python benchmarks/merit_fit.py [--steps 3] [--days 365] [--end 2016-02-29] [ENV_OVERRIDE ...]

``env=electricity_merit`` with its tuning (π the exact clearing, L-BFGS on θ) fitted on the
``--days`` days of the shipped Spanish file up to ``--end``, ``--steps`` outer L-BFGS steps, twice
side by side: as shipped (κ reused for the same θ and contexts within a step: the equilibrium, its
price and the regret's terms each ask for it) and with κ recomputed at every call (the baseline).
Prints both wall times, the ratio, the calls to κ, the relative difference of the gradient of the
price fit at the start (the two differ only in the order gradients are summed) and each fit's
in-sample price MSE (a few L-BFGS steps amplify that rounding: the two paths part).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from envs.electricity.data import load_energy_csv, resolve_data_path
from envs.electricity.forecast import settings
from envs.electricity.merit import ElectricityMeritMarket
from imitgame.problems.simulacral import fit, problem_from_game, score

ROOT = Path(__file__).resolve().parents[1]


def market(env: dict, memo: bool) -> tuple[ElectricityMeritMarket, list]:
    """The market and a list that counts its evaluations of κ; ``memo=False``: κ at every call."""
    game = ElectricityMeritMarket(**env)
    calls = []
    level = game.level
    game.level = lambda *args: calls.append(1) or level(*args)
    if not memo:
        game._memo_level = game.level  # the baseline: no reuse
    return game, calls


def start_gradient(env: dict, memo: bool) -> torch.Tensor:
    """∇θ of the price fit Σ (P(π(θ), θ) − P_obs)² at the start: one θ tensor read by the
    equilibrium and its price, as ``Stabilizer.theta()`` hands it out within a step (so that the
    shipped market reuses κ between them)."""
    game, _ = market(env, memo)
    x, observed = game.observed_contexts(), game.observed_outcomes()[:, 0]
    learned = game.initial_theta().clone().requires_grad_()
    theta = learned * 1.0
    price = game.price(game.equilibrium(theta, x), theta, x)
    return torch.autograd.grad((price - observed).square().sum(), learned)[0]


def timed_fit(env: dict, algo, memo: bool) -> tuple[float, int, float]:
    """Seconds, evaluations of κ and the in-sample price MSE of one fit."""
    game, calls = market(env, memo)
    problem, _ = problem_from_game(game, algo)
    start = time.perf_counter()
    fit(problem)
    seconds = time.perf_counter() - start
    return seconds, len(calls), float(score(problem).equilibrium_mse.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="outer L-BFGS steps")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--end", default="2016-02-29")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="env.KEY=VALUE")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(args.threads)
    env, algo = settings(ROOT / "configs", market="electricity_merit", overrides=args.overrides)
    env.pop("_market")
    start = pd.Timestamp(args.end) - pd.Timedelta(days=args.days)
    frame = load_energy_csv(resolve_data_path("spain"))
    env = {**env, "data_path": None, "window_days": None, "frame": frame}
    env |= {"train_start": str(start.date()), "train_end": args.end}
    algo = replace(algo, iterations=args.steps, eval_every=args.steps)
    memo, base = start_gradient(env, memo=True), start_gradient(env, memo=False)
    gradient_gap = float((memo - base).abs().max() / base.abs().max())
    t_memo, n_memo, mse_memo = timed_fit(env, algo, memo=True)
    t_base, n_base, mse_base = timed_fit(env, algo, memo=False)
    print(
        f"electricity_merit {args.overrides or '(defaults)'}: {args.days} days to {args.end}, "
        f"{args.steps} L-BFGS steps, {args.threads} thread(s)"
    )
    print(f"κ at every call (baseline): {t_base:8.2f} s  ({n_base} evaluations of κ)")
    print(f"κ once per θ (shipped):     {t_memo:8.2f} s  ({n_memo} evaluations of κ)")
    print(f"speed-up:                   {t_base / t_memo:8.2f}x")
    print(f"gradient at the start, largest relative difference: {gradient_gap:.1e}")
    print(f"in-sample price MSE after the fit: {mse_memo:.3f} (shipped), {mse_base:.3f} (baseline)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
