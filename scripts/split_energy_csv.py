"""Split an hourly energy CSV by local date: ``--first``..``--last`` (inclusive) into ``--out``.

    python scripts/split_energy_csv.py ../shared/data/spain_energy_2015-01_2016-08.csv \
        --first 2015-01-01 --last 2016-05-31 --out runs/spain_train.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--first", required=True, help="first local date, YYYY-MM-DD")
    parser.add_argument("--last", required=True, help="last local date, YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    raw = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    local_date = raw["time"].str.slice(0, 10)  # the timestamps are local time with their offset
    keep = (local_date >= args.first) & (local_date <= args.last)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    raw[keep].to_csv(args.out, index=False)
    print(f"{int(keep.sum())} rows -> {args.out}")


if __name__ == "__main__":
    main()
