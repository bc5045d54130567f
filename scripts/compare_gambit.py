"""Gambit, side by side: the logit precision λ estimated from the same observed action counts.

    python scripts/compare_gambit.py [--out runs/gambit] [--draws 10000] [--seed 0] [--lam 1]
    python scripts/compare_gambit.py --sweep 1 2 3 4 6 8 [--seeds 5]   # runs/gambit/sweep.json

``--sweep``: the payoffs-unknown error at each λ over ``--seeds`` data sets per game (one batch)
and the smallest QRE probability of any action (how rarely the least-played action is seen).

For each shipped finite game (rock-paper-scissors, security game, coordination, the 3-player
volunteer's dilemma) at its true θ and λ: ``--draws`` actions per player are drawn from the
logit QRE (:func:`imitgame.game.finite.simulate_counts`); then

* ``lambda_gambit`` — pygambit's maximum-likelihood λ, payoffs known (``qre.logit_estimate``);
* ``lambda_ours`` — ours on the same counts, payoffs known (``algo.problem=qre_counts`` learning
  λ alone, from the starts λ = 0.5, 2, 5 as one batch; the lowest objective wins);
* ``payoff_relative_error`` — ours with the payoffs unknown (the game's identified payoff
  entries learned, λ known), which Gambit cannot do: max_k |θ̂_k − θ_k| / |θ_k|;
* ``payoff_relative_sd_bound`` — the Cramér–Rao bound on that error: the largest relative standard
  deviation over the learned payoffs that *any* unbiased estimator has from these draws
  (:func:`imitgame.problems.qre.cramer_rao_sd`), and ``draws_for_2_percent``, the draws per player
  at which an efficient estimator's 95 % range is ±2 % on every learned payoff;
* ``exact_relative_error`` — the inverse problem on exact QRE frequencies (the default
  ``python train.py env=<game>`` path), same measure.

Writes ``<out>/compare.json`` (``{"rows": [...]}``) and ``<out>/compare.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from envs.coordination import Coordination
from envs.rps import RockPaperScissors
from envs.security_game import SecurityGame
from envs.volunteer import Volunteer
from imitgame.config import AlgoConfig
from imitgame.data.observed import ObservedPlay
from imitgame.game.finite import FiniteGame, simulate_counts
from imitgame.game.gambit import gambit_estimate
from imitgame.problems.inverse import solve_inverse
from imitgame.problems.qre import cramer_rao_sd, fit_counts

GAMES = {
    "rps": RockPaperScissors,
    "security_game": SecurityGame,
    "coordination": Coordination,
    "volunteer": Volunteer,
}


#: starting values of λ (payoffs known), run as one batch; the lowest objective wins
LAMBDA_STARTS = torch.tensor([[0.5], [2.0], [5.0]], dtype=torch.float64)


def max_relative_error(theta_hat: torch.Tensor, theta: torch.Tensor, index: list[int]) -> float:
    diff = (theta_hat[index] - theta[index]).abs() / theta[index].abs().clamp(min=1e-12)
    return float(diff.max())


def sweep(names: list[str], lambdas: list[float], draws: int, seeds: int) -> list[dict]:
    """Payoffs-unknown max relative error at each λ over ``seeds`` data sets per game (the seeds
    are instances of one batch): mean and max over the seeds."""
    rows = []
    for name in names:
        for lam in lambdas:
            game: FiniteGame = GAMES[name](qre_lambda=lam)
            theta = game.true_params.expand(seeds, -1).clone()
            generator = torch.Generator().manual_seed(lam_seed(lam))
            counts = simulate_counts(game, theta, draws, generator)
            started = time.perf_counter()
            theta_hat, _ = fit_counts(game, counts, theta_known=theta)
            seconds = time.perf_counter() - started
            learned = [game.param_index(p) for p in game.learned_params]
            errors = [max_relative_error(theta_hat[k], theta[k], learned) for k in range(seeds)]
            rows.append(
                {
                    "game": name,
                    "lambda": lam,
                    "draws_per_player": draws,
                    "seeds": seeds,
                    "min_probability": min_probability(game, theta[:1]),
                    "payoff_relative_error_mean": sum(errors) / seeds,
                    "payoff_relative_error_max": max(errors),
                    "seconds": seconds,
                }
            )
            row = rows[-1]
            print(
                f"{name} λ={lam:g}: payoff rel. error mean {row['payoff_relative_error_mean']:.2e}"
                f" max {row['payoff_relative_error_max']:.2e}, "
                f"min prob. {row['min_probability']:.2e} ({seconds:.1f} s)",
                flush=True,
            )
    return rows


def min_probability(game: FiniteGame, theta: torch.Tensor) -> float:
    """The smallest QRE probability of any real action under ``theta [1, p]``: how rarely the
    least-played action is observed (N·p_min draws of it expected)."""
    sigma = game.equilibrium(theta)[0]
    return float(sigma[game.action_mask].min())


def lam_seed(lam: float) -> int:
    return int(round(1000 * lam))


def compare(name: str, draws: int, seed: int, lam: float = 1.0) -> dict[str, object]:
    game: FiniteGame = GAMES[name](qre_lambda=lam)
    theta = game.true_params.clone()
    generator = torch.Generator().manual_seed(seed)
    counts = simulate_counts(game, theta[None], draws, generator)  # [1, n, A]

    lam_gambit, seconds_gambit = gambit_estimate(game, theta, counts[0])

    known_payoffs: FiniteGame = GAMES[name](learn=["lambda"], qre_lambda=lam)
    started = time.perf_counter()
    theta_lam, _ = fit_counts(known_payoffs, counts, starts=LAMBDA_STARTS)
    seconds_ours = time.perf_counter() - started
    lam_ours = float(theta_lam[0, -1])

    started = time.perf_counter()
    theta_pay, _ = fit_counts(game, counts)
    seconds_unknown = time.perf_counter() - started
    learned = [game.param_index(p) for p in game.learned_params]
    payoff_error = max_relative_error(theta_pay[0], theta, learned)
    relative_sd = float((cramer_rao_sd(game, theta, draws) / theta[learned].abs()).max())

    exact = game.equilibrium(theta[None])[:, None]  # [1, 1, n, A]: exact QRE frequencies
    observed = ObservedPlay(exact, None, theta[None].clone(), theta[None].clone())
    results = solve_inverse(game, observed, AlgoConfig())
    exact_error = max_relative_error(results.theta_hat[0], theta, learned)

    return {
        "game": name,
        "players": game.n_agents,
        "actions": game.n_actions,
        "draws_per_player": draws,
        "lambda_true": float(theta[-1]),
        "lambda_gambit": lam_gambit,
        "lambda_ours": lam_ours,
        "lambda_relative_difference": abs(lam_ours - lam_gambit) / abs(lam_gambit),
        "learned_payoffs": [p for p in game.learned_params],
        "payoff_relative_error": payoff_error,
        "payoff_relative_sd_bound": relative_sd,
        "draws_for_2_percent": math.ceil(draws * (1.96 * relative_sd / 0.02) ** 2),
        "exact_relative_error": exact_error,
        "seconds_gambit": seconds_gambit,
        "seconds_ours": seconds_ours,
        "seconds_ours_payoffs_unknown": seconds_unknown,
    }


def markdown(rows: list[dict[str, object]], wall: float) -> str:
    lines = [
        "| game | λ Gambit | λ ours | rel. diff. | payoff rel. error (unknown payoffs) "
        "| Cramér–Rao rel. sd | draws for ±2 % | exact-frequency rel. error "
        "| s Gambit | s ours | s ours (payoffs unknown) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['game']} | {r['lambda_gambit']:.6f} | {r['lambda_ours']:.6f} "
            f"| {r['lambda_relative_difference']:.2e} | {r['payoff_relative_error']:.2e} "
            f"| {r['payoff_relative_sd_bound']:.2e} | {r['draws_for_2_percent']} "
            f"| {r['exact_relative_error']:.2e} | {r['seconds_gambit']:.3f} "
            f"| {r['seconds_ours']:.2f} | {r['seconds_ours_payoffs_unknown']:.2f} |"
        )
    draws = rows[0]["draws_per_player"] if rows else 0
    lam = rows[0]["lambda_true"] if rows else 1.0
    lines.append("")
    lines.append(
        f"{draws} observed actions per player from the logit QRE at the true θ (λ = {lam:g}); "
        f"whole script {wall:.1f} s."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gambit")
    parser.add_argument("--draws", type=int, default=10000, help="observed actions per player")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=list(GAMES), help="a subset of the games")
    parser.add_argument("--lam", type=float, default=1.0, help="the true (known) λ of the data")
    parser.add_argument("--sweep", nargs="*", type=float, help="λ values: payoffs-unknown error")
    parser.add_argument("--seeds", type=int, default=3, help="data sets per λ in --sweep")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if args.sweep:
        rows = sweep(args.only or list(GAMES), args.sweep, args.draws, args.seeds)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(json.dumps({"rows": rows}, indent=2))
        return 0
    started = time.perf_counter()
    rows = [compare(name, args.draws, args.seed, args.lam) for name in (args.only or list(GAMES))]
    wall = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"rows": rows, "wall_seconds": wall}, indent=2))
    table = markdown(rows, wall)
    (out / "compare.md").write_text(table)
    print(table, end="")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
