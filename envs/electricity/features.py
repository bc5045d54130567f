"""Contexts of the electricity market: the features of an hour, built under the day-ahead rules.

A context x ``[CONTEXT_DIM]`` is what is known at midnight of day D about one hour of D: the hour
(24 indicators), the weekday (7 indicators) and the :data:`FEATURES` built from the TSO's
day-ahead forecasts for D (load, onshore wind, solar) and from history up to the end of D−1
(lagged prices, yesterday's forecasts), centred and scaled to O(1). Day D's features need
:data:`LAGS` days of history before it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from envs.electricity.data import (
    ALLOWED_AHEAD,
    LOAD_FORECAST,
    PRICE,
    SOLAR_FORECAST,
    WIND_FORECAST,
    daily_matrix,
    forbidden_columns,
    full_days,
)
from imitgame.errors import ImitgameError

#: the numeric context features, in order (P: price actual, L/W/S: load/wind/solar day-ahead
#: forecast; [D−k, h] = day D−k, same hour; "last": 23:00)
FEATURES = (
    "P[D-1,h]",
    "P[D-2,h]",
    "P[D-7,h]",
    "mean P[D-1]",
    "P[D-1,last]",
    "min P[D-1]",
    "max P[D-1]",
    "L[D,h]",
    "W[D,h]",
    "S[D,h]",
    "L[D,h]-L[D-1,h]",
    "W[D,h]-W[D-1,h]",
    "mean W[D]",
    "mean L[D]",
)
N_FEATURES = len(FEATURES)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat")  # indicators; Sunday is the reference
N_DESIGN = N_FEATURES + len(WEEKDAYS)  # slopes per hour: the features and the weekday indicators
CONTEXT_DIM = 24 + 7 + N_FEATURES
# fixed centring/scaling of raw units (EUR/MWh, MW) so that features are O(1)
_PRICE = (50.0, 20.0)
_LOAD = (28000.0, 4000.0)
_WIND = (6000.0, 3000.0)
_SOLAR = (1500.0, 1000.0)
LAGS = 7  # days of history a day's features need


def synthetic_contexts(hours: int, generator: torch.Generator) -> Tensor:
    """Random contexts ``[hours, CONTEXT_DIM]``: uniform hour and weekday, N(0, 1) features."""
    hour = torch.randint(0, 24, (hours,), generator=generator)
    day = torch.randint(0, 7, (hours,), generator=generator)
    feats = torch.randn(hours, N_FEATURES, generator=generator)
    return torch.cat(
        [
            torch.nn.functional.one_hot(hour, 24).to(feats.dtype),
            torch.nn.functional.one_hot(day, 7).to(feats.dtype),
            feats,
        ],
        -1,
    )


# --- counterfactual inputs -----------------------------------------------------------------------
def scale_wind_forecast(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    """A copy of ``frame`` with the day-ahead onshore wind forecast multiplied by ``factor`` (a
    counterfactual input: "more wind"), applied before any feature is built, so every wind
    feature (the hour's forecast, its change from D−1, the day's mean) sees it. Lagged prices
    stay the observed ones."""
    if factor < 0:
        raise ImitgameError(f"wind_scale must be >= 0, got {factor}")
    if factor == 1.0:
        return frame
    return frame.assign(**{WIND_FORECAST: frame[WIND_FORECAST] * factor})


def scale_wind_features(contexts: Tensor, factor: float) -> Tensor:
    """Contexts ``[..., CONTEXT_DIM]`` whose wind features are those of a wind forecast
    multiplied by ``factor``: the features are affine in the raw forecast W (x = (W − m) / s),
    so W → f·W maps x to f·x + (f − 1)·m / s, and the day-on-day change to f times itself. On
    contexts built from data this equals :func:`scale_wind_forecast` before the features; it is
    how a synthetic market (whose features are drawn, not built) takes the same input."""
    if factor < 0:
        raise ImitgameError(f"wind_scale must be >= 0, got {factor}")
    if factor == 1.0:
        return contexts
    out = contexts.clone()
    shift = (factor - 1.0) * _WIND[0] / _WIND[1]
    for name, offset in (("W[D,h]", shift), ("W[D,h]-W[D-1,h]", 0.0), ("mean W[D]", shift)):
        column = CONTEXT_DIM - N_FEATURES + FEATURES.index(name)
        out[..., column] = factor * contexts[..., column] + offset
    return out


# --- features from the data under the day-ahead rules -------------------------------------------
def _scaled(table: pd.DataFrame, centre_scale: tuple[float, float]) -> np.ndarray:
    return (table.to_numpy(dtype=float) - centre_scale[0]) / centre_scale[1]


def day_features(frame: pd.DataFrame) -> dict[pd.Timestamp, np.ndarray]:
    """Feature rows ``[24, N_FEATURES]`` (by local hour) for every day of ``frame`` that has
    ``LAGS`` days of history before it. Day D's row reads prices only from D−1 and earlier, and
    the day-ahead forecast columns of D and D−1."""
    price = _scaled(daily_matrix(frame, PRICE), _PRICE)
    load = _scaled(daily_matrix(frame, LOAD_FORECAST), _LOAD)
    wind = _scaled(daily_matrix(frame, WIND_FORECAST), _WIND)
    solar = _scaled(daily_matrix(frame, SOLAR_FORECAST), _SOLAR)
    days = daily_matrix(frame, LOAD_FORECAST).index
    out: dict[pd.Timestamp, np.ndarray] = {}
    ones = np.ones(24)
    for i in range(LAGS, len(days)):
        yesterday = price[i - 1]
        out[days[i]] = np.column_stack(
            [
                yesterday,
                price[i - 2],
                price[i - 7],
                yesterday.mean() * ones,
                yesterday[-1] * ones,
                yesterday.min() * ones,
                yesterday.max() * ones,
                load[i],
                wind[i],
                solar[i],
                load[i] - load[i - 1],
                wind[i] - wind[i - 1],
                wind[i].mean() * ones,
                load[i].mean() * ones,
            ]
        )
    return out


def contexts_for(frame: pd.DataFrame, day: pd.Timestamp, feats: np.ndarray) -> np.ndarray:
    """Contexts ``[rows of day, CONTEXT_DIM]`` for each row (local hour) of ``day`` in ``frame``."""
    rows = frame[frame["date"] == day]
    hours = rows["hour"].to_numpy()
    hour = np.eye(24)[hours]
    weekday = np.eye(7)[rows["weekday"].to_numpy()]
    return np.concatenate([hour, weekday, feats[hours]], axis=1)


def training_set(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[pd.Timestamp]]:
    """Contexts ``[M, CONTEXT_DIM]`` and prices ``[M]`` of every full day with enough history."""
    for col in ALLOWED_AHEAD:
        frame = frame.assign(**{col: frame[col].ffill().bfill()})
    feats = day_features(frame)
    complete = set(full_days(frame))
    contexts, prices, days = [], [], []
    for day, f in feats.items():
        if day not in complete:
            continue
        rows = frame[frame["date"] == day]
        price = rows[PRICE].to_numpy(dtype=float)
        if np.isnan(price).any():
            continue
        contexts.append(contexts_for(frame, day, f))
        prices.append(price)
        days.append(day)
    if not contexts:
        raise ImitgameError(f"no full day with {LAGS} days of history in the training data")
    return np.concatenate(contexts), np.concatenate(prices), days


def history_view(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """What a forecaster may see at midnight of ``day``: every row before it, and for ``day``
    only the calendar and the day-ahead forecast columns (the rest is blanked)."""
    past = frame[frame["date"] < day]
    today = frame[frame["date"] == day].copy()
    today[forbidden_columns(frame)] = np.nan
    keep = [*ALLOWED_AHEAD, "date", "hour", "weekday", "day_hours"]
    drop = [c for c in today.columns if c not in keep]
    today[drop] = np.nan
    view = pd.concat([past, today])
    for col in ALLOWED_AHEAD:
        view[col] = view[col].ffill().bfill()
    return view


def forecast_contexts(frame: pd.DataFrame, day: pd.Timestamp) -> np.ndarray:
    """Contexts ``[rows, CONTEXT_DIM]`` of ``day`` from :func:`history_view` only."""
    view = history_view(frame, day)
    start = day - pd.Timedelta(days=LAGS + 1)
    view = view[view["date"] >= start]
    feats = day_features(view)
    if day not in feats:
        raise ImitgameError(f"day {day.date()} has fewer than {LAGS} days of history before it")
    return contexts_for(view, day, feats[day])
