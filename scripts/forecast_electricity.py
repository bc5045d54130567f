"""Day-ahead price forecasts of a simulacral electricity-market game against ARIMA and LEAR.

    python scripts/forecast_electricity.py --train TRAIN.csv --test TEST.csv --out DIR

Fits the game (configs/env/electricity.yaml, configs/algo/simulacral.yaml) on all of TRAIN by
simulacral learning — or reuses a saved fit of the same file and settings — then forecasts every
full day D of TEST at midnight of D (DESIGN.md §6): every column up to the end of D−1, for D only
the day-ahead forecast columns. The model's forecast is the fitted game's equilibrium price in D's
contexts. At every ``--recalibrate-every``-th forecast day (TRAIN's own fit serves a first day
that follows TRAIN directly) the game is refitted on the history known at that midnight (the last
``--window-days`` days, recency-weighted), warm-started from the current θ̂ by the same simulacral
GDA: after D, D's actual values join the history, for the game as for the ARIMA filters.
Baselines on the same inputs: ARIMA on price alone and ARIMAX with the day-ahead forecasts as
regressors (orders chosen once by AIC on TRAIN, state updated with each day's actuals
after it is forecast), seasonal naive (same hour yesterday / a week earlier), and LEAR (Lago et
al., Applied Energy 2021): per hour a LASSO chosen by AIC on asinh-median/MAD-transformed prices
of D−1, D−2, D−3, D−7, the day-ahead forecasts of D, D−1, D−7 and weekday indicators,
recalibrated every day on the last W days (``lear_W``; ``--lear-windows``, default every one of
56 84 364 728 1092 that fits the history before the first forecast day) and the mean of those
windows' forecasts (``lear_ensemble``); ``--no-lear`` leaves it out.
TRAIN and TEST are paths, or ``spain`` (the shipped Spanish file; split it first with
``scripts/split_energy_csv.py spain ...``).

Prints a table of every forecaster's MSE, MAE, RMSE, sMAPE (%) and rMAE (MAE over the weekly
naive forecast's) and the one-sided p-values of the multivariate Diebold–Mariano test of the model
against it (squared and absolute loss). Writes DIR/metrics.json (the same figures and the run's
details), DIR/predictions.csv (a column per forecaster), DIR/forecast.png (forecasts and
residuals) and DIR/model.pt (θ̂ fitted on TRAIN; the refits' θ̂ are not saved). The work is done
by :mod:`envs.electricity.forecast`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from envs.electricity.forecast import forecast_arguments, run_forecast, scores_table
from imitgame.errors import ImitgameError

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
CACHE = ROOT / "runs/electricity_fits"


def main(argv: list[str] | None = None) -> dict:
    parser = forecast_arguments(CACHE, description=__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    try:
        metrics = run_forecast(**vars(args), config_dir=CONFIG_DIR)
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(scores_table(metrics))
    lear = metrics["lear"]
    note = f"days: {metrics['days']}, forecast {metrics['forecast_seconds']:.0f} s"
    if lear["windows"]:
        note += f" (LEAR {lear['seconds']:.0f} s, windows {lear['windows']})"
    print(note)
    return metrics


if __name__ == "__main__":
    main()
