"""Split an hourly energy CSV by local date: ``--first``..``--last`` (inclusive) into ``--out``.

    python scripts/split_energy_csv.py ../shared/data/spain_energy_2015-01_2016-08.csv \
        --first 2015-01-01 --last 2016-05-31 --out runs/spain_train.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def write_days(raw: pd.DataFrame, first: str | None, last: str | None, out: Path) -> int:
    """Write the rows of ``raw`` (the CSV read as text) dated ``first``..``last`` (local dates,
    inclusive; None: open) to ``out``; returns the number of rows."""
    local_date = raw["time"].str.slice(0, 10)  # the timestamps are local time with their offset
    keep = pd.Series(True, index=raw.index)
    if first is not None:
        keep &= local_date >= first
    if last is not None:
        keep &= local_date <= last
    out.parent.mkdir(parents=True, exist_ok=True)
    raw[keep].to_csv(out, index=False)
    return int(keep.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--first", required=True, help="first local date, YYYY-MM-DD")
    parser.add_argument("--last", required=True, help="last local date, YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    raw = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    print(f"{write_days(raw, args.first, args.last, args.out)} rows -> {args.out}")


if __name__ == "__main__":
    main()
