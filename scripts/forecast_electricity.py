"""Day-ahead price forecasts of a simulacral electricity-market game against ARIMA baselines.

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
after it is forecast), seasonal naive (same hour yesterday / a week earlier).
TRAIN and TEST are paths, or ``spain`` (the shipped Spanish file; split it first with
``scripts/split_energy_csv.py spain ...``).

Writes DIR/metrics.json, DIR/predictions.csv, DIR/forecast.png (forecasts and residuals) and
DIR/model.pt (θ̂ fitted on TRAIN; the refits' θ̂ are not saved). The work is done by
:mod:`envs.electricity.forecast`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from envs.electricity.forecast import forecast_arguments, run_forecast
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
    print(json.dumps(metrics["mse"], indent=2), f"days: {metrics['days']}")
    return metrics


if __name__ == "__main__":
    main()
