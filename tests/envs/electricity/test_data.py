"""The hourly energy CSV loader: DST days, blanks, one-line errors for bad input, and the shipped
Spanish data set."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envs.electricity.data import (
    DATASETS,
    PRICE,
    REQUIRED,
    SPAIN,
    daily_matrix,
    forbidden_columns,
    full_days,
    load_energy_csv,
    resolve_data_path,
)
from imitgame.errors import ImitgameError

HEADER = ["time", "generation nuclear", *REQUIRED]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def hour_rows(start: str, hours: int) -> list[list[str]]:
    times = pd.date_range(start, periods=hours, freq="h", tz="UTC").tz_convert("Europe/Madrid")
    return [
        [t.isoformat(sep=" "), "7000", "50", "45", "25000", "26000", "5000", "1000"] for t in times
    ]


def test_dst_days_have_23_and_25_hours(tmp_path):
    # 2016-03-27: clocks go forward (23 h); 2016-10-30: back (25 h)
    spring = hour_rows("2016-03-25 23:00", 24 * 4)
    autumn = hour_rows("2016-10-28 22:00", 24 * 4)
    frame = load_energy_csv(write(tmp_path / "dst.csv", spring + autumn))
    counts = frame.groupby("date").size()
    assert counts[pd.Timestamp("2016-03-27")] == 23
    assert counts[pd.Timestamp("2016-10-30")] == 25
    assert frame.groupby("date")["day_hours"].first()[pd.Timestamp("2016-10-30")] == 25
    days = full_days(frame)
    assert pd.Timestamp("2016-03-27") in days and pd.Timestamp("2016-10-30") in days
    table = daily_matrix(frame, PRICE)
    assert table.shape[1] == 24 and not table.isna().any().any()


def test_blanks_are_nan_and_partial_days_are_not_full(tmp_path):
    rows = hour_rows("2016-01-01 23:00", 30)
    rows[3][2] = ""  # a blank price
    frame = load_energy_csv(write(tmp_path / "blank.csv", rows))
    assert frame[PRICE].isna().sum() == 1
    assert full_days(frame) == [pd.Timestamp("2016-01-02")]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_file", "not found"),
        ("missing_column", "missing column"),
        ("bad_value", "unparsable value"),
        ("bad_time", "unparsable timestamp"),
    ],
)
def test_bad_input_is_one_line(tmp_path, case, message):
    rows = hour_rows("2016-01-01 23:00", 5)
    path = tmp_path / "bad.csv"
    if case == "missing_file":
        path = tmp_path / "nowhere.csv"
    elif case == "missing_column":
        write(path, [r[:-1] for r in rows], HEADER[:-1])
    elif case == "bad_value":
        rows[2][2] = "12.5x"
        write(path, rows)
    else:
        rows[1][0] = "yesterday"
        write(path, rows)
    with pytest.raises(ImitgameError, match=message) as info:
        load_energy_csv(path)
    assert "\n" not in str(info.value)


def test_shipped_file_schema():
    frame = load_energy_csv(resolve_data_path("spain"))
    assert len(frame) == 14615
    assert frame["date"].min() == pd.Timestamp("2015-01-01")
    assert frame["date"].max() == pd.Timestamp("2016-08-31")
    assert set(frame["day_hours"].unique()) == {23, 24, 25}
    assert frame["total load actual"].isna().sum() == 31  # blanks survive as NaN
    assert np.isfinite(frame[PRICE]).all()
    assert "generation nuclear" in forbidden_columns(frame)


def test_resolve_data_path(tmp_path, monkeypatch):
    """``spain`` names the shipped file (inside the package, wherever the cwd); anything else is
    a path relative to the cwd; a missing file is a one-line error."""
    assert resolve_data_path("spain") == SPAIN == DATASETS["spain"]
    assert resolve_data_path() == SPAIN
    assert SPAIN.is_absolute() and SPAIN.is_file()
    assert (SPAIN.parent / "README.md").is_file()  # the source and terms beside the data
    own = write(tmp_path / "own.csv", hour_rows("2016-01-01 23:00", 5))
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("own.csv") == Path("own.csv")
    assert resolve_data_path(own) == own
    assert resolve_data_path("spain") == SPAIN
    for missing in ("nowhere.csv", "spain.csv", tmp_path / "nowhere.csv"):
        with pytest.raises(ImitgameError, match="not found") as info:
            resolve_data_path(missing)
        assert "\n" not in str(info.value)
