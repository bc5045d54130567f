"""Split an hourly energy CSV by local date: ``--first``..``--last`` (inclusive) into ``--out``.

    python scripts/split_energy_csv.py spain --first 2015-01-01 --last 2016-05-31 \
        --out runs/spain_train.csv

The source is ``spain`` (the default: the Spanish file shipped in envs/electricity/data/) or the
path of an hourly CSV of the same schema.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from envs.electricity.data import DEFAULT_DATASET
from envs.electricity.forecast import read_raw, write_days
from imitgame.errors import ImitgameError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_DATASET,
        help="spain (the shipped file, default) or a CSV path",
    )
    parser.add_argument("--first", required=True, help="first local date, YYYY-MM-DD")
    parser.add_argument("--last", required=True, help="last local date, YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        raw = read_raw(args.source)
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"{write_days(raw, args.first, args.last, args.out)} rows -> {args.out}")


if __name__ == "__main__":
    main()
