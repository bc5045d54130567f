"""LEAR, the electricity price forecasting field's open benchmark, under the day-ahead rules.

Lago, Marcjasz, De Schutter & Weron, "Forecasting day-ahead electricity prices: a review of
state-of-the-art algorithms, best practices and an open-access benchmark", Applied Energy 293
(2021), the LASSO Estimated AutoRegressive model: for each hour h of day D a separate linear model
of the price at (D, h), estimated by LASSO with its penalty chosen by an information criterion
(LARS path, AIC: scikit-learn's :class:`~sklearn.linear_model.LassoLarsIC`), on variance-stabilised
data, recalibrated every day on the last W days before D.

Inputs of day D (:func:`design`; ``k`` exogenous series, here the three day-ahead forecast columns
:data:`~envs.electricity.data.ALLOWED_AHEAD`):

* the 24 hourly prices of each of D−1, D−2, D−3 and D−7 (96 regressors);
* each exogenous series at D, D−1 and D−7 (72 regressors per series): D's values are the TSO's
  day-ahead forecasts, published before D;
* 7 weekday indicators (Monday..Sunday; the LASSO's intercept makes one redundant, as in the paper).

With k = 3 that is 96 + 216 + 7 = 319 columns, the same for all 24 hours. Each column but the
indicators, and each hour's price target, is transformed by asinh((x − median)/MAD) with the median
and the normalised MAD (median absolute deviation / Φ⁻¹(3/4) ≈ 0.6745, a consistent estimate of a
Gaussian's standard deviation, as statsmodels' ``robust.mad`` that epftoolbox's "Invariant" scaler
uses) computed on the calibration window (:class:`AsinhMedianScaler`); the forecast is transformed
back. Everything is built from :func:`~envs.electricity.features.history_view` of D: prices up to
D−1, the day-ahead forecast columns up to D. Days are the 24-hour rows of
:func:`~envs.electricity.data.daily_matrix` (a 25-hour day's repeated hour averaged, a 23-hour day's
missing hour filled from the hour before); a day's forecast is read off by its rows' local hours.

The calibration window of W days is the W days D−W..D−1 as targets (their inputs reach back to
D−W−7): a window fits when D has W + 7 days of history (:func:`windows_that_fit`). epftoolbox
instead cuts W·24 hours and loses the first week to the lags (W − 7 target days). The AIC is the
one of scikit-learn < 1.1 that the paper's code ran on, n·MSE/var(y) + 2·df: the noise variance is
taken as the target's variance in the window (``noise_variance=var(y)``), which also keeps the AIC
defined where a window has fewer days than columns (W = 56, 84). The LASSO solution at the chosen
penalty is LARS's own. (epftoolbox refits :class:`~sklearn.linear_model.Lasso` at the chosen
penalty; under scikit-learn < 1.2 its ``LassoLarsIC`` also defaulted to ``normalize=True``, so
that penalty was chosen for columns scaled to unit length and then applied to the unscaled ones,
a far weaker penalty than the one the AIC picked. The inputs here are already on a common scale
and the LASSO is the one the AIC chose, as the paper describes it.)

Speed: the AIC is minimised over the first :data:`LARS_STEPS` steps of the LARS path (one
:class:`~sklearn.linear_model.LassoLarsIC` per hour, day and window). On the Spanish data the
minimum lay at step 43 or earlier in each of 264 fits checked (W = 56, 84, 364, January to August
2016; the full paths have about 120 to 760 steps, and scikit-learn's own default stops at 500)
and the chosen models were identical to the full path's; a fit whose minimum falls in the second
half of those steps is redone on the full path.

The ensemble (:data:`ENSEMBLE`) is the mean of the windows' forecasts, as in the paper.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from envs.electricity.data import ALLOWED_AHEAD, PRICE, daily_matrix
from imitgame.errors import ImitgameError

#: the calibration windows of the paper's family (days); only those that fit the history are used
WINDOWS = (56, 84, 364, 728, 1092)
PRICE_LAGS = (1, 2, 3, 7)  # days before D whose 24 prices are inputs
EXOG_LAGS = (0, 1, 7)  # days before D whose 24 exogenous values are inputs (0: D's forecasts)
MAX_LAG = max(*PRICE_LAGS, *EXOG_LAGS)
MIN_WINDOW = 7  # the shortest calibration window accepted (a week: every weekday once)
#: Φ⁻¹(3/4): the MAD of a standard normal, the normalising constant of the MAD
MAD_NORMAL = 0.6744897501960817
#: LARS steps followed before the AIC is read (see the module's notes); a fit whose AIC minimum
#: lies in the second half of them is redone on the path of up to FULL_PATH_STEPS steps
LARS_STEPS = 100
FULL_PATH_STEPS = 5000
#: the name of the mean of the windows' forecasts
ENSEMBLE = "lear_ensemble"


def lear_name(window: int) -> str:
    """The forecaster name of the window ``window`` (days): ``lear_56``, …"""
    return f"lear_{window}"


def history_needed(window: int) -> int:
    """Days of history before D a calibration window of ``window`` days needs."""
    return window + MAX_LAG


def windows_that_fit(
    windows: Sequence[int], history_days: int, first_day: pd.Timestamp | None = None
) -> tuple[list[int], dict[int, str]]:
    """The windows of ``windows`` (sorted, duplicates dropped) for which ``history_days`` days of
    history before the first forecast day are enough, and a reason for each one skipped. Raises
    :class:`ImitgameError` for a window shorter than :data:`MIN_WINDOW`."""
    short = [w for w in windows if w < MIN_WINDOW]
    if short:
        raise ImitgameError(f"LEAR windows must be at least {MIN_WINDOW} days: {short}")
    where = "" if first_day is None else f" before {first_day.date()}"
    usable, skipped = [], {}
    for window in sorted(set(windows)):
        if history_days >= history_needed(window):
            usable.append(window)
        else:
            skipped[window] = (
                f"needs {history_needed(window)} days of history{where} "
                f"({window} target days + {MAX_LAG} days of lags), {history_days} available"
            )
    return usable, skipped


# --- the variance-stabilising transformation -----------------------------------------------------
@dataclass
class AsinhMedianScaler:
    """x ↦ asinh((x − median)/scale) per column, ``scale`` the normalised MAD (MAD / 0.6745) of the
    data it was fitted on; a column with zero MAD (at least half its values equal) takes its
    standard deviation instead, a constant column scale 1 (it transforms to 0)."""

    median: np.ndarray  # [m]
    scale: np.ndarray  # [m]

    @classmethod
    def fit(cls, data: np.ndarray) -> AsinhMedianScaler:
        """Fitted on ``data [n, m]`` (one column per series)."""
        median = np.median(data, axis=0)
        scale = np.median(np.abs(data - median), axis=0) / MAD_NORMAL
        flat = scale <= 1e-12 * np.maximum(np.abs(median), 1.0)
        if flat.any():
            std = data[:, flat].std(axis=0)
            scale[flat] = np.where(std > 1e-12 * np.maximum(np.abs(median[flat]), 1.0), std, 1.0)
        return cls(median, scale)

    def transform(self, data: np.ndarray) -> np.ndarray:
        """``data [n, m]`` (or ``[m]``) to the stabilised scale, same shape."""
        return np.arcsinh((data - self.median) / self.scale)

    def inverse(self, data: np.ndarray) -> np.ndarray:
        """Back from the stabilised scale: ``data [n, m]`` (or ``[m]``), same shape."""
        return np.sinh(data) * self.scale + self.median


# --- the inputs ----------------------------------------------------------------------------------
@dataclass
class DailyData:
    """Consecutive days ending with the forecast day D, as 24-hour rows."""

    dates: pd.DatetimeIndex  # [T], dates[-1] = D
    price: np.ndarray  # [T, 24]; the row of D is NaN (unknown at midnight of D)
    exog: np.ndarray  # [k, T, 24]; D's row holds D's day-ahead forecasts


def daily_data(
    view: pd.DataFrame, day: pd.Timestamp, days: int, exog: Sequence[str] = ALLOWED_AHEAD
) -> DailyData:
    """The last ``days`` days before ``day`` and ``day`` itself, from ``view`` (what is known at
    midnight of ``day``: :func:`~envs.electricity.features.history_view`). Prices are read from
    the rows dated before ``day`` only; the ``exog`` columns up to ``day``."""
    first = day - pd.Timedelta(days=days)
    seen = view[(view["date"] >= first) & (view["date"] <= day)]
    dates = pd.date_range(first, day, freq="D")
    if seen.empty or seen["date"].min() > first:
        raise ImitgameError(f"LEAR: fewer than {days} days of history before {day.date()}")
    price = daily_matrix(seen[seen["date"] < day], PRICE).reindex(dates).to_numpy(dtype=float)
    tables = [daily_matrix(seen, c).reindex(dates).to_numpy(dtype=float) for c in exog]
    return DailyData(dates, price, np.stack(tables))


def design(data: DailyData, rows: np.ndarray) -> np.ndarray:
    """Inputs ``[len(rows), 96 + 72·k + 7]`` of the days ``data.dates[rows]`` (indices ≥
    :data:`MAX_LAG`): prices of D−1, D−2, D−3, D−7 (24 columns each), then per exogenous series
    its values at D, D−1, D−7 (24 each), then Monday..Sunday indicators."""
    rows = np.asarray(rows)
    if rows.size and rows.min() < MAX_LAG:
        raise ValueError(f"a day's inputs need {MAX_LAG} days before it")
    blocks = [data.price[rows - lag] for lag in PRICE_LAGS]
    for series in data.exog:
        blocks += [series[rows - lag] for lag in EXOG_LAGS]
    blocks.append(np.eye(7)[data.dates[rows].weekday])
    return np.concatenate(blocks, axis=1)


def input_names(exog: Sequence[str] = ALLOWED_AHEAD) -> list[str]:
    """The names of :func:`design`'s columns, in order (``P[D-1,h0]``, …, ``sun``)."""
    names = [f"P[D-{lag},h{h}]" for lag in PRICE_LAGS for h in range(24)]
    for series in exog:
        names += [f"{series}[D-{lag},h{h}]" for lag in EXOG_LAGS for h in range(24)]
    return names + ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# --- calibration and forecast --------------------------------------------------------------------
def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Calibrate the 24 hourly LASSOs on ``x_train [n, m]`` (last 7 columns: weekday indicators,
    left untransformed) and ``y_train [n, 24]``, and forecast the day of ``x_new [m]``: ``[24]``.
    Inputs and each hour's target are transformed by :class:`AsinhMedianScaler` fitted on the
    training rows; each hour's penalty is chosen by AIC on the LARS path."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoLarsIC

    x_scaler = AsinhMedianScaler.fit(x_train[:, :-7])
    y_scaler = AsinhMedianScaler.fit(y_train)
    x = np.concatenate([x_scaler.transform(x_train[:, :-7]), x_train[:, -7:]], axis=1)
    new = np.concatenate([x_scaler.transform(x_new[:-7]), x_new[-7:]])[None]
    y = y_scaler.transform(y_train)
    out = np.empty(24)
    for h in range(24):
        target = y[:, h]
        variance = float(target.var())
        if variance <= 1e-12:  # a constant target: nothing to regress
            out[h] = float(target.mean())
            continue
        for steps in (LARS_STEPS, FULL_PATH_STEPS):
            model = LassoLarsIC(criterion="aic", noise_variance=variance, max_iter=steps)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # LARS's degenerate steps
                model.fit(x, target)
            truncated = model.n_iter_ >= steps
            if not truncated or int(np.argmin(model.criterion_)) <= steps // 2:
                break
        out[h] = float(model.predict(new)[0])
    return y_scaler.inverse(out)


def fit_predict_cached(
    x_train: np.ndarray, y_train: np.ndarray, x_new: np.ndarray, cache: Path | None
) -> np.ndarray:
    """:func:`fit_predict`, its ``[24]`` answer saved under ``cache`` keyed by the bytes of its
    inputs (content-addressed: the same inputs give the same forecast; None: no cache)."""
    if cache is None:
        return fit_predict(x_train, y_train, x_new)
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_new):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        digest.update(str(array.shape).encode())
    path = Path(cache) / f"{digest.hexdigest()[:32]}.npy"
    if path.is_file():
        return np.load(path)
    out = fit_predict(x_train, y_train, x_new)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def forecast_lear(
    view: pd.DataFrame, day: pd.Timestamp, windows: Sequence[int], cache: Path | None = None
) -> dict[str, np.ndarray]:
    """LEAR's forecasts ``[24]`` (by local hour) of ``day`` for each calibration window of
    ``windows`` (``lear_W``), recalibrated on the W days before ``day``, and their mean
    (:data:`ENSEMBLE`). ``view``: what is known at midnight of ``day``
    (:func:`~envs.electricity.features.history_view`); it must reach back
    :func:`history_needed` days for the longest window. ``cache``: a folder of saved
    calibrations (:func:`fit_predict_cached`; None: none)."""
    windows = sorted(set(windows))
    if not windows:
        raise ImitgameError("LEAR: no calibration window")
    data = daily_data(view, day, history_needed(windows[-1]))
    last = len(data.dates) - 1  # the row of `day`
    x_new = design(data, np.array([last]))[0]
    out = {}
    for window in windows:
        rows = np.arange(last - window, last)
        x_train = design(data, rows)
        if np.isnan(x_train).any() or np.isnan(x_new).any():
            raise ImitgameError(f"LEAR: missing inputs in the window before {day.date()}")
        out[lear_name(window)] = fit_predict_cached(x_train, data.price[rows], x_new, cache)
    out[ENSEMBLE] = np.mean([out[lear_name(w)] for w in windows], axis=0)
    return out
