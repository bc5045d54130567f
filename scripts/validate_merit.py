"""Validation of the structural market's settings inside a training file (no test data seen).

    python scripts/validate_merit.py --csv spain --fit-end 2016-02-29 --val 2016-03-01:2016-05-31

Fits ``env=electricity_merit`` (with ``env.KEY=VALUE`` overrides) by simulacral learning on the
days up to ``--fit-end`` and scores the fitted game's equilibrium price on the validation days
(their contexts hold only what is known at midnight of each day: the day-ahead forecasts and the
history before it). Prints and appends to ``--out`` one JSON line: the settings, MAE, MSE, the fit's
seconds and the equilibrium regret on the validation hours.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from envs.electricity.data import load_energy_csv, resolve_data_path
from envs.electricity.forecast import settings
from envs.electricity.merit import ElectricityMeritMarket
from imitgame.errors import ImitgameError
from imitgame.problems.simulacral import equilibrium_regret, fit, problem_from_game, score

ROOT = Path(__file__).resolve().parents[1]
JITTER = 1e-12  # relative move of the start with --start-jitter: rounding-sized


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default="spain")
    parser.add_argument("--fit-end", default="2016-02-29")
    parser.add_argument(
        "--fit-days", type=int, default=None, help="days fitted (default: env.window_days)"
    )
    parser.add_argument("--val", default="2016-03-01:2016-05-31")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/validate_merit.jsonl")
    parser.add_argument(
        "--predictions", type=Path, default=None, help="CSV of date, hour, actual, model"
    )
    parser.add_argument(
        "--start-jitter",
        type=int,
        default=0,
        help="seed: move the start θ₀ by 1e-12 relative (θ₀ (1 + 1e-12 ε)), to measure how far "
        "rounding alone moves the fit (0: the start as configured)",
    )
    parser.add_argument("overrides", nargs="*", help="env.KEY=VALUE or algo.KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    try:
        env, algo_config = settings(
            ROOT / "configs", market="electricity_merit", overrides=args.overrides
        )
    except ImitgameError as err:
        parser.error(str(err))
    env.pop("_market")
    frame = load_energy_csv(resolve_data_path(args.csv))
    first, _, last = args.val.partition(":")
    fit_days = args.fit_days or env["window_days"] or 10_000
    start = pd.Timestamp(args.fit_end) - pd.Timedelta(days=fit_days)
    fit_env = {**env, "data_path": None, "train_start": str(start.date()), "window_days": None}
    fit_env["train_end"] = args.fit_end
    game = ElectricityMeritMarket(**fit_env, frame=frame)
    if args.start_jitter:
        generator = torch.Generator().manual_seed(args.start_jitter)
        noise = torch.randn(game.start_theta.shape, generator=generator)
        game.start_theta.mul_(1 + JITTER * noise)
    started = time.perf_counter()
    problem, _ = problem_from_game(game, algo_config)
    fit(problem)
    seconds = time.perf_counter() - started
    theta = score(problem).theta_hat
    val_env = {**env, "data_path": None, "period": [first, last]}
    val = ElectricityMeritMarket(**val_env, frame=frame)
    x = val.observed_contexts()
    with torch.no_grad():
        q = val.equilibrium(theta, x)
        pred = val.price(q, theta, x)
        regret = float(equilibrium_regret(val, theta, x[None]).max())
    actual = val._outcomes[:, 0]
    if args.predictions is not None:
        labels = val.observation_labels()
        table = pd.DataFrame({**labels, "actual": actual.tolist(), "model": pred.tolist()})
        args.predictions.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.predictions, index=False)
    row = {
        "overrides": args.overrides,
        "start_jitter": args.start_jitter,
        "fit_days": fit_days,
        "val_mae": float((pred - actual).abs().mean()),
        "val_mse": float(((pred - actual) ** 2).mean()),
        "val_days": len(val.train_days),
        "fit_seconds": seconds,
        "regret_val": regret,
        "theta": dict(zip(game.param_names, theta.reshape(-1).tolist())),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "theta"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


if __name__ == "__main__":
    main()
