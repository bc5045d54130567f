"""The least-squares fit of the electricity game's price map: what an exact fit would forecast.

    python scripts/electricity_least_squares.py --train TRAIN.csv --test TEST.csv \
        [--metrics DIR/metrics.json]

While every generator produces, the fitted game's equilibrium price P*(x) = (a(x) + b r Σc) /
(1 + n b r) is affine in its demand intercept a(x), and a(x) is linear in the demand weights
(envs/electricity.py): the game's price map is a per-hour linear function of its features. The
recency-weighted least-squares fit of that function — on the same inputs, under the same
day-ahead rules, the same days and the same refit schedule as ``forecast_electricity.py`` — is
what the simulacral fit approaches when it converges (it also carries λ·regret and Θ's bounds).
Its forecast error is a reference for the model class: the error an exact fit of this game makes.
It is a diagnostic, not a forecaster of its own: with ``--metrics`` it prints its MSE beside the
five MSEs of a forecast run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs.electricity import LAGS, ElectricityMarket, forecast_contexts  # noqa: E402
from imitgame.energy import PRICE, load_energy_csv  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from scripts.forecast_electricity import held_out  # noqa: E402


def design(contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of each row ``[M]`` and the regressors ``[M, 1 + m + 6]`` of a(x): 1, the features,
    the Monday..Saturday indicators (the game's per-hour design)."""
    ones = np.ones((len(contexts), 1))
    return contexts[:, :24].argmax(1), np.hstack([ones, contexts[:, 31:], contexts[:, 24:30]])


def fit_hours(
    contexts: np.ndarray, prices: np.ndarray, weights: np.ndarray, ridge: float
) -> np.ndarray:
    """Per-hour weighted least squares of price on the design: ``[24, 1 + m + 6]``."""
    hour, x = design(contexts)
    coef = np.zeros((24, x.shape[1]))
    for h in range(24):
        rows = hour == h
        xw = x[rows] * weights[rows, None]
        gram = x[rows].T @ xw + ridge * rows.sum() * np.eye(x.shape[1])
        coef[h] = np.linalg.lstsq(gram, xw.T @ prices[rows], rcond=None)[0]
    return coef


def least_squares_mse(
    train: pd.DataFrame,
    test: pd.DataFrame,
    every: int,
    window_days: int,
    recency_days: float | None,
    ridge: float,
) -> float:
    """MSE over TEST's forecastable days of the least-squares price map, refitted every
    ``every`` days (0: once) on the ``window_days`` before the forecast day."""
    frame, _, days, _ = held_out(train, test)
    coef, errors = None, []
    for number, day in enumerate(days):
        if coef is None or (every and number % every == 0):
            first = day - pd.Timedelta(days=(window_days if coef is not None else 10**5) + LAGS)
            seen = frame[(frame["date"] >= first) & (frame["date"] < day)]
            game = ElectricityMarket(frame=seen, recency_days=recency_days)  # the fit's data
            contexts = game.observed_contexts().numpy()
            prices = game.observed_outcomes()[:, 0].numpy()
            weights = game.observation_weights()
            weights = np.ones_like(prices) if weights is None else weights.numpy()
            coef = fit_hours(contexts, prices, weights, ridge)
        hour, x = design(forecast_contexts(frame, day))
        actual = frame.loc[frame["date"] == day, PRICE].to_numpy()
        errors.append((coef[hour] * x).sum(1) - actual)
    return float(np.nanmean(np.concatenate(errors) ** 2))  # a blank actual scores nothing


def main(argv: list[str] | None = None) -> dict:
    env = OmegaConf.load(ROOT / "configs/env/electricity.yaml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--test", required=True, type=Path)
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
        train, test = load_energy_csv(args.train), load_energy_csv(args.test)
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
