"""The least-squares fit of the electricity game's price map: what an exact fit would forecast.

    python scripts/electricity_least_squares.py --train TRAIN.csv --test TEST.csv \
        [--metrics DIR/metrics.json]

While every generator produces, the fitted game's equilibrium price P*(x) = (a(x) + b r Σc) /
(1 + n b r) is affine in its demand intercept a(x), and a(x) is linear in the demand weights
(envs/electricity/market.py): the game's price map is a per-hour linear function of its features.
The recency-weighted least-squares fit of that function — on the same inputs, under the same
day-ahead rules, the same days and the same refit schedule as ``forecast_electricity.py`` — is
what the simulacral fit approaches when it converges (it also carries λ·regret and Θ's bounds).
Its forecast error is a reference for the model class: the error an exact fit of this game makes.
It is a diagnostic, not a forecaster of its own: with ``--metrics`` it prints its MSE beside the
five MSEs of a forecast run. TRAIN and TEST are paths, or ``spain`` (the shipped Spanish file).
The work is done by :func:`envs.electricity.forecast.least_squares_mse`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from envs.electricity.data import load_energy_csv, resolve_data_path
from envs.electricity.forecast import least_squares_mse
from imitgame.errors import ImitgameError

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"


def main(argv: list[str] | None = None) -> dict:
    env = OmegaConf.load(CONFIG_DIR / "env/electricity.yaml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="CSV (spain: the shipped Spanish file)")
    parser.add_argument("--test", required=True, help="CSV (spain: the shipped Spanish file)")
    parser.add_argument("--metrics", type=Path, help="metrics.json of a forecast run, to compare")
    parser.add_argument("--recalibrate-every", type=int, default=7, help="days; 0: fit once")
    parser.add_argument("--window-days", type=int, default=365, help="history a refit reads")
    parser.add_argument(
        "--recency-days",
        type=lambda text: None if text.lower() == "none" else float(text),
        default=env.get("recency_days"),
        help="τ of the recency weights (none: uniform); default: configs/env/electricity.yaml",
    )
    parser.add_argument("--ridge", type=float, default=1e-8, help="ridge, per observation")
    args = parser.parse_args(argv)
    try:
        if args.metrics is not None and not args.metrics.is_file():
            raise ImitgameError(f"metrics file not found: {args.metrics}")
        train = load_energy_csv(resolve_data_path(args.train))
        test = load_energy_csv(resolve_data_path(args.test))
        mse = least_squares_mse(
            train, test, args.recalibrate_every, args.window_days, args.recency_days, args.ridge
        )
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    out = {"least_squares": mse}
    print(f"least-squares fit of the game's price map: MSE {mse:.3f}")
    if args.metrics is not None:
        metrics = json.loads(args.metrics.read_text())["mse"]
        out["ratios_to_arima"] = {k: v / metrics["arima"] for k, v in {**metrics, **out}.items()}
        for name, value in {**metrics, **out}.items():
            if name != "ratios_to_arima":
                print(f"  {name:14s} MSE {value:7.3f}   / ARIMA {value / metrics['arima']:.3f}")
    return out


if __name__ == "__main__":
    main()
