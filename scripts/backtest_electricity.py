"""Rolling-origin backtest of the electricity forecast: several held-out periods, one table.

    python scripts/backtest_electricity.py ../shared/data/spain_energy_2015-01_2016-08.csv \
        --periods 2015-09-01:2015-11-30 2015-12-01:2016-02-29 2016-03-01:2016-05-31 \
                  2016-06-01:2016-08-31 --out runs/backtest

For each period the game is fitted on every day of the file before it (TRAIN) and forecasts the
period's days under the day-ahead rules, exactly as ``forecast_electricity.py --train TRAIN
--test PERIOD`` does (it is called for each). A single test season says little about a
forecaster: prices in a calm summer and a windy, wet spring behave differently. Writes each
period's outputs under ``OUT/<first>_<last>/``, and ``OUT/backtest.json`` / ``OUT/backtest.md``
with every period's five MSEs, their ratios to ARIMA, and the MSEs pooled over all periods' hours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imitgame.energy import load_energy_csv  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from scripts import forecast_electricity  # noqa: E402
from scripts.split_energy_csv import write_days  # noqa: E402

NAMES = forecast_electricity.FORECASTERS


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


def table(rows: list[dict]) -> str:
    head = "| period | days | " + " | ".join(NAMES) + " | model / ARIMA | model < ARIMAX |"
    lines = [head, "|" + "---|" * (len(NAMES) + 4)]
    for row in rows:
        mse = row["mse"]
        cells = " | ".join(f"{mse[n]:.2f}" for n in NAMES)
        ratio = mse["model"] / mse["arima"]
        below = "yes" if mse["model"] < mse["arimax"] else "no"
        lines.append(f"| {row['period']} | {row['days']} | {cells} | {ratio:.3f} | {below} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="the whole hourly file")
    parser.add_argument("--periods", nargs="+", type=period, required=True, help="FIRST:LAST")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=None, help="override algo.iterations")
    parser.add_argument(
        "--forecast-args", default="", help="more arguments for forecast_electricity.py, quoted"
    )
    args = parser.parse_args(argv)
    try:
        load_energy_csv(args.csv)  # one-line errors for a bad file before any work
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    raw = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    rows, pooled, hours = [], dict.fromkeys(NAMES, 0.0), 0
    for first, last in args.periods:
        name = f"{first.date()}_{last.date()}"
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        train, test = folder / "train.csv", folder / "test.csv"
        day_before = (first - pd.Timedelta(days=1)).date().isoformat()
        write_days(raw, None, day_before, train)
        write_days(raw, first.date().isoformat(), last.date().isoformat(), test)
        metrics = forecast_electricity.main(
            ["--train", str(train), "--test", str(test), "--out", str(folder)]
            + ["--threads", str(args.threads)]
            + ([] if args.iterations is None else ["--iterations", str(args.iterations)])
            + args.forecast_args.split()
        )
        n = metrics["hours"]
        hours += n
        for key in NAMES:
            pooled[key] += metrics["mse"][key] * n
        rows.append({"period": f"{first.date()}..{last.date()}", **metrics})
    pooled = {k: v / hours for k, v in pooled.items()}
    rows.append({"period": "pooled", "days": sum(r["days"] for r in rows), "mse": pooled})
    args.out.mkdir(parents=True, exist_ok=True)
    summary = [{k: r[k] for k in ("period", "days", "mse")} for r in rows]
    (args.out / "backtest.json").write_text(json.dumps(summary, indent=2))
    markdown = table(rows)
    (args.out / "backtest.md").write_text(markdown + "\n")
    print(markdown)
    return {"periods": summary}


if __name__ == "__main__":
    main()
