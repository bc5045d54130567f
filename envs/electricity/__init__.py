"""The Spanish day-ahead electricity market as an inverse game (simulacral learning).

- :mod:`~envs.electricity.data`: the hourly ENTSO-E/REE loader, the day-ahead rules and the shipped
  Spanish data set (``spain``; :func:`~envs.electricity.data.resolve_data_path`).
- :mod:`~envs.electricity.features`: the contexts (hour, weekday, features) built under those rules.
- :mod:`~envs.electricity.market`: the game, :class:`ElectricityMarket`.
- :mod:`~envs.electricity.merit`: the structural market, :class:`ElectricityMeritMarket`
  (technologies on a merit order against residual demand).
- :mod:`~envs.electricity.forecast`: forecasts, baselines, metrics and backtests (the scripts'
  library).
"""

from envs.electricity.data import (
    DATASETS,
    SPAIN,
    load_energy_csv,
    resolve_data_path,
)
from envs.electricity.features import (
    CONTEXT_DIM,
    FEATURES,
    LAGS,
    N_FEATURES,
    forecast_contexts,
    history_view,
    training_set,
)
from envs.electricity.forecast import forecast_day
from envs.electricity.market import ElectricityMarket
from envs.electricity.merit import ElectricityMeritMarket

__all__ = [
    "CONTEXT_DIM",
    "DATASETS",
    "FEATURES",
    "LAGS",
    "N_FEATURES",
    "SPAIN",
    "ElectricityMarket",
    "ElectricityMeritMarket",
    "forecast_contexts",
    "forecast_day",
    "history_view",
    "load_energy_csv",
    "resolve_data_path",
    "training_set",
]
