"""Rolling-origin backtest of the electricity forecast: several held-out periods, one table.

    python scripts/backtest_electricity.py spain \
        --periods 2015-09-01:2015-11-30 2015-12-01:2016-02-29 2016-03-01:2016-05-31 \
                  2016-06-01:2016-08-31 --out runs/backtest

For each period the game is fitted on every day of the file before it (TRAIN) and forecasts the
period's days under the day-ahead rules, exactly as ``forecast_electricity.py --train TRAIN
--test PERIOD`` does. A single test season says little about a forecaster: prices in a calm
summer and a windy, wet spring behave differently. The file is ``spain`` (the default: the
shipped Spanish file) or a path. LEAR runs with the calibration windows that fit the history
before the earliest period (the same in every period; ``--forecast-args "--lear-windows 56 84"``
or ``"--no-lear"`` to choose). Writes each period's outputs under ``OUT/<first>_<last>/``, and
``OUT/backtest.json`` / ``OUT/backtest.md`` with every period's MSE (and the model's ratio to
ARIMA), MAE and rMAE for every forecaster, LEAR's included, the same pooled over all periods'
hours, and the Diebold–Mariano tests of the model on the pooled days. The work is done by
:mod:`envs.electricity.forecast`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from envs.electricity.data import DEFAULT_DATASET
from envs.electricity.forecast import backtest, forecast_arguments
from imitgame.errors import ImitgameError

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
CACHE = ROOT / "runs/electricity_fits"


def period(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    first, _, last = text.partition(":")
    try:
        bounds = pd.Timestamp(first), pd.Timestamp(last)
    except ValueError:
        bounds = (pd.NaT, pd.NaT)
    if any(pd.isna(b) for b in bounds):
        raise argparse.ArgumentTypeError(f"period {text!r} is not FIRST:LAST (two dates)")
    if bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"period {text!r} ends before it starts")
    return bounds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "csv",
        nargs="?",
        default=DEFAULT_DATASET,
        help="the whole hourly file: spain (the shipped file, default) or a CSV path",
    )
    parser.add_argument("--periods", nargs="+", type=period, required=True, help="FIRST:LAST")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=None, help="override algo.iterations")
    parser.add_argument(
        "--forecast-args", default="", help="more arguments for forecast_electricity.py, quoted"
    )
    args = parser.parse_args(argv)
    forecast = forecast_arguments(CACHE, files=False, prog="--forecast-args").parse_args(
        ["--threads", str(args.threads)]
        + ([] if args.iterations is None else ["--iterations", str(args.iterations)])
        + args.forecast_args.split()
    )
    try:
        summary = backtest(
            args.csv, args.periods, args.out, {**vars(forecast), "config_dir": CONFIG_DIR}
        )
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    return {"periods": summary}


if __name__ == "__main__":
    main()
