"""The yardsticks of electricity price forecasting: point errors and the Diebold–Mariano test.

As the field reports them (Lago, Marcjasz, De Schutter & Weron, Applied Energy 293, 2021, §4):

* MSE, RMSE, MAE;
* sMAPE, the symmetric MAPE, mean of 2|y − ŷ| / (|y| + |ŷ|), here in per cent (a term with
  y = ŷ = 0 counts 0);
* rMAE, the MAE relative to the MAE of a naive forecast on the same hours (here the weekly
  seasonal naive forecast, the same hour a week earlier: the paper's rMAE with m = "W");
* the Diebold–Mariano test in its multivariate daily version: the loss differential of day d is
  the mean over its hours of L(e₁) − L(e₂) (squared or absolute loss, e the forecast error), and
  DM = mean(d) / sqrt(var(d)/N) over the N days (population variance, no autocorrelation
  correction: one-day-ahead forecasts), asymptotically standard normal under equal accuracy. Two
  one-sided p-values: Φ(DM) for "the first forecast is more accurate", 1 − Φ(DM) for "the second
  is" (epftoolbox's ``DM(..., version="multivariate")`` returns the second).

Every function takes the hours as flat arrays ``[n]`` (a day has 23, 24 or 25 rows); an hour
whose actual value is missing (NaN) scores nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

#: the losses of the Diebold–Mariano test
LOSSES = ("squared", "absolute")
#: the point metrics, in the order tables show them (keys of :func:`point_metrics`)
POINT_METRICS = ("mse", "mae", "rmse", "smape", "rmae")
METRIC_LABELS = {"mse": "MSE", "mae": "MAE", "rmse": "RMSE", "smape": "sMAPE %", "rmae": "rMAE"}


def _errors(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Forecast errors ``[m]`` of the hours with an actual value (``actual``, ``forecast``
    ``[n]``)."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    if actual.shape != forecast.shape:
        raise ValueError(f"actual {actual.shape} and forecast {forecast.shape} differ in shape")
    keep = ~np.isnan(actual)
    return forecast[keep] - actual[keep]


def mse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean squared error over the hours with an actual value (``[n]`` each)."""
    return float(np.mean(_errors(actual, forecast) ** 2))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error (``[n]`` each)."""
    return math.sqrt(mse(actual, forecast))


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error (``[n]`` each)."""
    return float(np.mean(np.abs(_errors(actual, forecast))))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in per cent: 100 · mean 2|y − ŷ| / (|y| + |ŷ|) (``[n]`` each; a term with
    y = ŷ = 0 is 0)."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    keep = ~np.isnan(actual)
    y, f = actual[keep], forecast[keep]
    scale = np.abs(y) + np.abs(f)
    terms = np.divide(2 * np.abs(f - y), scale, out=np.zeros_like(y), where=scale > 0)
    return float(100 * np.mean(terms))


def rmae(actual: np.ndarray, forecast: np.ndarray, naive: np.ndarray) -> float:
    """MAE of ``forecast`` over the MAE of the naive forecast ``naive`` on the same hours (``[n]``
    each); NaN where the naive forecast is exact."""
    reference = mae(actual, naive)
    return mae(actual, forecast) / reference if reference > 0 else math.nan


def point_metrics(
    predictions: pd.DataFrame, names: Sequence[str], naive: str = "naive_week"
) -> dict[str, dict[str, float]]:
    """:data:`POINT_METRICS` → forecaster → value, for the columns ``names`` of ``predictions``
    (one row per hour, its ``actual`` column the truth); rMAE relative to the column ``naive``."""
    actual = predictions["actual"].to_numpy(dtype=float)
    out: dict[str, dict[str, float]] = {key: {} for key in POINT_METRICS}
    for name in names:
        forecast = predictions[name].to_numpy(dtype=float)
        out["mse"][name] = mse(actual, forecast)
        out["mae"][name] = mae(actual, forecast)
        out["rmse"][name] = rmse(actual, forecast)
        out["smape"][name] = smape(actual, forecast)
        out["rmae"][name] = rmae(actual, forecast, predictions[naive].to_numpy(dtype=float))
    return out


# --- the Diebold–Mariano test --------------------------------------------------------------------
def loss(errors: np.ndarray, kind: str) -> np.ndarray:
    """Elementwise loss of ``errors`` (any shape): ``squared`` or ``absolute``."""
    if kind == "squared":
        return errors**2
    if kind == "absolute":
        return np.abs(errors)
    raise ValueError(f"loss must be one of {LOSSES}, not {kind!r}")


def daily_loss_differential(
    actual: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    days: np.ndarray,
    kind: str = "squared",
) -> pd.Series:
    """Per day, the mean over its hours of L(first − actual) − L(second − actual): a Series
    ``[days]`` indexed by the day labels. Inputs ``[n]`` (one per hour, ``days`` its day's label);
    hours without an actual value are left out, days without any dropped."""
    actual = np.asarray(actual, dtype=float)
    keep = ~np.isnan(actual)
    diff = loss(np.asarray(first, dtype=float)[keep] - actual[keep], kind) - loss(
        np.asarray(second, dtype=float)[keep] - actual[keep], kind
    )
    return pd.Series(diff).groupby(np.asarray(days)[keep]).mean()


@dataclass
class DieboldMariano:
    """The multivariate Diebold–Mariano test of a first forecast against a second."""

    statistic: float  # mean(d)/sqrt(var(d)/N); ±inf when d is a nonzero constant; NaN for N < 2
    p_first_better: float  # Φ(DM): small when the first forecast's losses are smaller
    p_second_better: float  # 1 − Φ(DM)
    days: int  # N
    mean_differential: float  # mean(d): negative when the first forecast is more accurate

    def as_dict(self, first: str = "first", second: str = "second") -> dict:
        """JSON-safe: the p-values as ``p_<first>_better`` / ``p_<second>_better``; a statistic
        that is not finite (or a NaN) becomes None."""

        def finite(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "statistic": finite(self.statistic),
            f"p_{first}_better": finite(self.p_first_better),
            f"p_{second}_better": finite(self.p_second_better),
            "days": self.days,
            "mean_differential": finite(self.mean_differential),
        }


def diebold_mariano(differential: np.ndarray | pd.Series) -> DieboldMariano:
    """The DM test on the daily loss differentials ``[N]`` (first minus second). Degenerate
    cases: N < 2 leaves everything NaN; a differential that is 0 every day gives DM = 0 (p-values
    1/2: no evidence either way); a nonzero constant gives DM = ±inf (p-values 0 and 1)."""
    d = np.asarray(differential, dtype=float)
    n = int(d.size)
    if n < 2:
        return DieboldMariano(math.nan, math.nan, math.nan, n, float(d.mean()) if n else math.nan)
    mean = float(d.mean())
    spread = float(d.var())  # ddof=0, as the paper's code
    if spread <= 1e-24 * max(mean**2, 1e-300):
        statistic = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        statistic = mean / math.sqrt(spread / n)
    return DieboldMariano(statistic, float(norm.cdf(statistic)), float(norm.sf(statistic)), n, mean)


def dm_tests(
    predictions: pd.DataFrame,
    reference: str,
    others: Sequence[str],
    losses: Sequence[str] = LOSSES,
) -> dict[str, dict[str, dict]]:
    """Loss → other forecaster → :meth:`DieboldMariano.as_dict` of ``reference`` (first) against
    it (p-values ``p_<reference>_better`` and ``p_other_better``), on ``predictions`` (one row per
    hour: ``actual``, ``date`` and a column per forecaster)."""
    actual = predictions["actual"].to_numpy(dtype=float)
    days = predictions["date"].astype(str).to_numpy()
    first = predictions[reference].to_numpy(dtype=float)
    out: dict[str, dict[str, dict]] = {}
    for kind in losses:
        out[kind] = {}
        for other in others:
            if other == reference:
                continue
            d = daily_loss_differential(
                actual, first, predictions[other].to_numpy(dtype=float), days, kind
            )
            out[kind][other] = diebold_mariano(d).as_dict(reference, "other")
    return out
