"""Hourly power-market data: a loader for the ENTSO-E / REE schema and the day-ahead rules.

The file has one row per hour with a ``time`` column carrying its UTC offset (``+01:00`` in
winter, ``+02:00`` in summer), so a local day has 23, 24 or 25 rows across daylight-saving
changes. :func:`load_energy_csv` returns a frame indexed by UTC time with the local ``date`` and
``hour`` (0–23; the repeated hour of a 25-hour day keeps its local hour) and a ``day_hours``
column (the number of hours that local day has on the clock).

The forecasting rules (DESIGN.md §6): at midnight of day D a forecaster may use every column up to
the end of D−1 and, for D itself, only the day-ahead forecast columns in :data:`ALLOWED_AHEAD`.

The package ships one such file, Spain 2015-01-01..2016-08-31 (:data:`SPAIN`, see
``data/README.md`` beside this module for its source and terms); :func:`resolve_data_path` turns
the name ``spain`` into it and any other text into a user's own path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from imitgame.errors import ImitgameError

PRICE = "price actual"
PRICE_DAY_AHEAD = "price day ahead"
LOAD_ACTUAL = "total load actual"
LOAD_FORECAST = "total load forecast"
WIND_FORECAST = "forecast wind onshore day ahead"
SOLAR_FORECAST = "forecast solar day ahead"
#: columns published the day before: the only ones a forecaster may read for the day it forecasts
ALLOWED_AHEAD = (LOAD_FORECAST, WIND_FORECAST, SOLAR_FORECAST)
#: the columns every loaded file must have (beyond ``time``)
REQUIRED = (PRICE, PRICE_DAY_AHEAD, LOAD_ACTUAL, *ALLOWED_AHEAD)
TIMEZONE = "Europe/Madrid"

#: the folder of the data files shipped with the package
DATA_DIR = Path(__file__).resolve().parent / "datasets"
#: hourly Spanish data 2015-01-01..2016-08-31 (xz-compressed; pandas reads it as it is)
SPAIN = DATA_DIR / "spain_energy_2015-01_2016-08.csv.xz"
#: names of the shipped data sets (what ``env.data_path`` and the scripts accept besides a path)
DATASETS = {"spain": SPAIN}
DEFAULT_DATASET = "spain"


def resolve_data_path(name_or_path: str | Path = DEFAULT_DATASET) -> Path:
    """The file behind ``name_or_path``: a name of :data:`DATASETS` (``spain``: the shipped Spanish
    file), else a user's own path (relative to the working directory). Raises
    :class:`ImitgameError` (one line) when the file does not exist."""
    text = str(name_or_path).strip()
    if text in DATASETS:
        path = DATASETS[text]
        if not path.is_file():
            raise ImitgameError(
                f"the shipped data set {text!r} is missing: {path} (a broken install?)"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        names = ", ".join(DATASETS)
        raise ImitgameError(f"energy data file not found: {path} (or name a shipped set: {names})")
    return path


def forbidden_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a forecaster must not read for the day it forecasts (prices, actual load,
    actual generation)."""
    gen = [c for c in frame.columns if c.startswith("generation ")]
    return [PRICE, PRICE_DAY_AHEAD, LOAD_ACTUAL, *gen]


def load_energy_csv(
    path: str | Path, required: Sequence[str] = REQUIRED, timezone: str = TIMEZONE
) -> pd.DataFrame:
    """Read an hourly ENTSO-E/REE CSV into a frame indexed by UTC time, sorted, one row per hour.

    Blanks in numeric columns stay NaN (use :func:`fill_causal` to fill them without looking
    ahead). Raises :class:`ImitgameError` (one line) for a missing file, a missing column, a
    timestamp or number that does not parse, or a duplicated hour.
    """
    path = Path(path)
    if not path.is_file():
        raise ImitgameError(f"energy data file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ImitgameError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in ("time", *required) if c not in raw.columns]
    if missing:
        raise ImitgameError(f"{path}: missing column(s) {missing}")
    times = pd.to_datetime(raw["time"].str.strip(), utc=True, errors="coerce", format="ISO8601")
    bad = times.isna()
    if bool(bad.any()):
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ImitgameError(
            f"{path}: unparsable timestamp {raw['time'].iloc[row]!r} in row {row + 2}"
        )
    frame = pd.DataFrame(index=pd.DatetimeIndex(times, name="time_utc"))
    for col in raw.columns:
        if col == "time":
            continue
        text = raw[col].str.strip()
        blank = text.eq("") | text.str.lower().isin(("nan", "na", "null"))
        values = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = values.isna() & ~blank
        if bool(bad.any()):
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ImitgameError(
                f"{path}: unparsable value {raw[col].iloc[row]!r} in column {col!r}, row {row + 2}"
            )
        frame[col] = values.to_numpy(dtype=float)
    if frame.index.duplicated().any():
        dup = frame.index[frame.index.duplicated()][0]
        raise ImitgameError(f"{path}: duplicated hour {dup.isoformat()}")
    frame = frame.sort_index()
    return add_calendar(frame, timezone)


def add_calendar(frame: pd.DataFrame, timezone: str = TIMEZONE) -> pd.DataFrame:
    """Add local ``date`` (a Timestamp at local midnight, naive), ``hour``, ``weekday`` and
    ``day_hours`` (hours on the clock that local day: 23, 24 or 25)."""
    local = frame.index.tz_convert(timezone)
    out = frame.copy()
    out["date"] = local.tz_localize(None).normalize()
    out["hour"] = local.hour
    out["weekday"] = local.weekday
    days = pd.DatetimeIndex(out["date"].unique())
    start = days.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
    end = (days + pd.Timedelta(days=1)).tz_localize(
        timezone, ambiguous=False, nonexistent="shift_forward"
    )
    hours = pd.Series(((end - start) / pd.Timedelta(hours=1)).astype(int), index=days)
    out["day_hours"] = out["date"].map(hours).to_numpy()
    return out


def full_days(frame: pd.DataFrame) -> list[pd.Timestamp]:
    """Local dates whose every clock hour is present (23, 24 or 25 rows)."""
    counts = frame.groupby("date").size()
    expected = frame.groupby("date")["day_hours"].first()
    return [d for d in counts.index if counts[d] == expected[d]]


def fill_causal(series: pd.Series) -> pd.Series:
    """Fill blanks from the past only (forward fill); leading blanks take the first value."""
    return series.ffill().bfill()


def daily_matrix(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``[days, 24]`` table of ``column`` by local date and hour: the two rows of a 25-hour day's
    repeated hour are averaged, the missing hour of a 23-hour day is filled from the hour before,
    and missing days (gaps) are filled from the day before."""
    table = frame.groupby(["date", "hour"])[column].mean().unstack("hour")
    table = table.reindex(columns=range(24))
    days = pd.date_range(table.index.min(), table.index.max(), freq="D")
    table = table.reindex(days)
    table = table.ffill(axis=1).bfill(axis=1)
    return table.ffill()
