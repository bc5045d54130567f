"""Day-ahead price forecasts of the fitted electricity game, its baselines, metrics and backtests.

What ``scripts/forecast_electricity.py``, ``scripts/backtest_electricity.py``,
``scripts/electricity_least_squares.py`` and ``scripts/split_energy_csv.py`` run (they are thin
command lines over it). The rules (DESIGN.md §6): every full day D of TEST is forecast at midnight
of D from every column up to the end of D−1 and, for D, only the day-ahead forecast columns
(:func:`~envs.electricity.features.history_view`). The model's forecast is the fitted game's
equilibrium price in D's contexts (:func:`forecast_day`); at every ``every``-th forecast day the
game is refitted, warm-started, on the history known at that midnight (:class:`Recalibration`).
Baselines on the same inputs: ARIMA on price alone and ARIMAX with the day-ahead forecasts as
regressors (orders chosen once by AIC on TRAIN, state updated with each day's actuals after it is
forecast), seasonal naive (same hour yesterday / a week earlier), and LEAR, the field's open
benchmark (:mod:`~envs.electricity.lear`: per-hour LASSO recalibrated every day on rolling windows,
and their ensemble). Scores (:mod:`~envs.electricity.metrics`): MSE, MAE, RMSE, sMAPE, rMAE for
every forecaster and the Diebold–Mariano test of the model against each of the others.

The model's settings come from the project's Hydra configs (``configs/env/electricity.yaml`` and
``configs/algo/simulacral.yaml``), read from the ``config_dir`` a caller names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from omegaconf import OmegaConf
from torch import Tensor
from tqdm.auto import tqdm

from envs.electricity.data import (
    ALLOWED_AHEAD,
    DEFAULT_DATASET,
    PRICE,
    daily_matrix,
    fill_causal,
    full_days,
    load_energy_csv,
    resolve_data_path,
)
from envs.electricity.features import LAGS, forecast_contexts, history_view
from envs.electricity.lear import ENSEMBLE, WINDOWS, forecast_lear, windows_that_fit
from envs.electricity.market import ElectricityMarket
from envs.electricity.merit import ElectricityMeritMarket, history_days
from envs.electricity.metrics import LOSSES, METRIC_LABELS, POINT_METRICS, dm_tests, point_metrics
from imitgame.config import SimulacralConfig, typed
from imitgame.errors import ImitgameError
from imitgame.game.base import StaticGame
from imitgame.problems.simulacral import equilibrium_regret, fit, problem_from_game, score

FORECASTERS = ("model", "arima", "arimax", "naive_day", "naive_week")  # always forecast
LEAR_PREFIX = "lear_"  # LEAR's columns: lear_<window days>, …, lear_ensemble
ORDERS = ((1, 0, 1), (2, 0, 1), (3, 0, 1), (1, 1, 1), (2, 1, 1), (2, 1, 2))
SELECTION_HOURS = 24 * 60  # AIC order selection on the last 60 days of TRAIN (speed)
EXOG_SCALE = 1e4
FIT_VERSION = 2  # part of a saved fit's key: bump when the fit itself changes


def forecast_day(
    game: StaticGame, theta: Tensor, frame: pd.DataFrame, day: pd.Timestamp
) -> tuple[np.ndarray, Tensor]:
    """The fitted game's equilibrium price for each row of ``day`` ``[rows]`` and the contexts
    ``[rows, context_dim]`` it was computed in (``theta [p]`` or ``[1, p]``): the game's own
    ``forecast_contexts(frame, day)`` where it has one, else
    :func:`~envs.electricity.features.forecast_contexts`."""
    build = getattr(game, "forecast_contexts", None) or forecast_contexts
    context = torch.as_tensor(build(frame, day), dtype=game.dtype, device=game.device)
    theta = theta.reshape(-1)
    with torch.no_grad():
        q = game.equilibrium(theta, context)
        return game.price(q, theta, context).cpu().numpy(), context


# --- data files ----------------------------------------------------------------------------------
def read_raw(name_or_path: str | Path = DEFAULT_DATASET) -> pd.DataFrame:
    """An hourly CSV as text (every cell a string, blanks kept), for :func:`write_days`:
    ``spain`` is the shipped file, anything else a path."""
    return pd.read_csv(resolve_data_path(name_or_path), dtype=str, keep_default_na=False)


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


# --- the model -----------------------------------------------------------------------------------
#: the market games a forecast can fit (``--env``)
MARKETS = {"electricity": ElectricityMarket, "electricity_merit": ElectricityMeritMarket}
#: default days between refits (electricity_merit: 14, validated on two folds inside TRAIN,
#: mean MSE 41.48 against 41.82 keeping TRAIN's fit; its cost level is refiltered every day)
RECALIBRATE_EVERY = {"electricity": 7, "electricity_merit": 14}
#: outer iterations of a warm-started refit: Adam steps (electricity), L-BFGS steps of 20
#: iterations each (electricity_merit, whose tuning fits θ by L-BFGS in 20 steps from cold)
RECALIBRATE_ITERATIONS = {"electricity": 200, "electricity_merit": 10}


def make_game(env: dict, **kwargs) -> StaticGame:
    """The market of ``env`` (its ``_market`` key names a :data:`MARKETS` entry; the rest are
    the constructor's options), with ``kwargs`` on top."""
    options = {k: v for k, v in env.items() if k != "_market"}
    return MARKETS[env.get("_market", "electricity")](**options, **kwargs)


def settings(
    config_dir: Path,
    iterations: int | None = None,
    market: str = "electricity",
    overrides: Sequence[str] = (),
) -> tuple[dict, SimulacralConfig]:
    """The game's keyword arguments (``env/<market>.yaml`` without ``_target_``, ``_market``
    naming it) and the simulacral settings (``algo/simulacral.yaml`` under
    ``tuning/<market>.yaml`` where it exists; ``iterations`` overridden unless None), with
    ``overrides`` (``env.KEY=VALUE`` or ``algo.KEY=VALUE``, VALUE read as YAML) on top."""
    if market not in MARKETS:
        raise ImitgameError(f"--env: unknown market {market!r}; choose from {list(MARKETS)}")
    env = OmegaConf.to_container(OmegaConf.load(Path(config_dir) / f"env/{market}.yaml"))
    env.pop("_target_")
    algo_overrides = {}
    for item in overrides:
        key, equals, value = item.partition("=")
        group, _, name = key.partition(".")
        if not equals or group not in ("env", "algo") or not name:
            raise ImitgameError(f"override {item!r}: write env.KEY=VALUE or algo.KEY=VALUE")
        if group == "env" and name not in env:
            raise ImitgameError(
                f"override {item!r}: {name!r} is not an option of env/{market}.yaml"
            )
        target = env if group == "env" else algo_overrides
        target[name] = yaml.safe_load(value)
    if market != "electricity":
        env["_market"] = market
    algo = OmegaConf.load(Path(config_dir) / "algo/simulacral.yaml")
    tuning = Path(config_dir) / f"tuning/{market}.yaml"
    if tuning.is_file():  # the market's own settings over simulacral.yaml, as train.py has them
        own = OmegaConf.load(tuning)
        own.pop("defaults", None)
        algo = OmegaConf.merge(algo, own)
    for name, value in algo_overrides.items():
        if name not in algo:
            raise ImitgameError(f"override algo.{name}: not a simulacral setting")
        algo[name] = value
    if iterations is not None:
        algo.iterations = iterations
    return env, typed(SimulacralConfig, algo, "algo")


def fit_model(
    train: Path, cache: Path, env: dict, algo: SimulacralConfig, refit: bool
) -> tuple[StaticGame, Tensor, dict]:
    """Fit the game (``env``, ``algo``) on all of the file ``train``, or load the fit saved in
    ``cache`` for the same file bytes and settings."""
    env = {**env, "data_path": str(train), "train_start": None, "train_end": None}
    key = hashlib.sha256(train.read_bytes()).hexdigest()[:16]
    key += (
        "-"
        + hashlib.sha256(
            json.dumps([FIT_VERSION, env, asdict(algo)], sort_keys=True, default=str).encode()
        ).hexdigest()[:8]
    )
    env_key = {k: v for k, v in env.items() if k != "data_path"}
    saved = cache / f"fit-{key}.pt"
    torch.set_default_dtype(torch.float64)
    game = make_game(env)
    if saved.is_file() and not refit:
        state = torch.load(saved, weights_only=False)
        print(f"reusing the fit saved in {saved}")
        return game, state["theta"], state["info"]
    init = algo.theta_init
    own_start = hasattr(game, "learned_start") and init != "game"  # the structural market's
    if own_start and (init is None or len(init) != len(game.learned_start())):
        algo = replace(algo, theta_init="game")
    problem, _ = problem_from_game(game, algo)  # TRAIN's prices, recency-weighted
    started = time.perf_counter()
    fit(problem, progress=True)
    seconds = time.perf_counter() - started
    result = score(problem)
    info = {
        "fit_seconds": seconds,
        "iterations": problem.trainer.step_count,
        "train_hours": int(problem.contexts.shape[1]),
        "regret_weight": problem.regret_weight,
        "exploitability_fitted_profile": float(result.exploitability.mean()),
        "exploitability_equilibrium_train": float(result.equilibrium_exploitability.mean()),
        "observation_loss": float(result.observation_loss.mean()),
        "train_mse_equilibrium": float(result.equilibrium_mse.mean()),
        "env": env_key,
    }
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"theta": result.theta_hat, "info": info}, saved)
    return game, result.theta_hat, info


@dataclass
class Recalibration:
    """Warm-started refits of the game during the forecast (``every`` = 0: never)."""

    env: dict
    algo: SimulacralConfig
    every: int = 7  # days between refits
    iterations: int = 200  # GDA iterations of a refit
    lr_theta: float = 1.0  # θ step size of a refit (the warm start is already close)
    window_days: int = 365  # days of history a refit reads


def recalibrate(
    plan: Recalibration, history: pd.DataFrame, day: pd.Timestamp, theta: Tensor
) -> tuple[Tensor, dict]:
    """θ̂ refitted on the ``window_days`` before ``day`` (rows dated before it only), starting
    from ``theta``; with the refit's diagnostics."""
    lead = LAGS
    if plan.env.get("_market") == "electricity_merit":  # its contexts read further back
        lead = history_days(plan.env["lags"], plan.env.get("day_lags") or ())
    first = day - pd.Timedelta(days=plan.window_days + lead)
    env = {**plan.env, "data_path": None, "train_start": None, "train_end": None}
    window = history[(history["date"] >= first) & (history["date"] < day)]
    game = make_game(env, frame=window)
    learned = [game.param_names.index(name) for name in game.learned_params]
    algo = replace(
        plan.algo,
        iterations=plan.iterations,
        lr_theta=plan.lr_theta,
        eval_every=plan.iterations,
        theta_init=theta.reshape(-1)[learned].tolist(),
    )
    problem, _ = problem_from_game(game, algo)
    fit(problem)
    result = score(problem)
    info = {
        "day": day.date().isoformat(),
        "train_hours": int(problem.contexts.shape[1]),
        "exploitability_fitted_profile": float(result.exploitability.mean()),
        "exploitability_equilibrium_train": float(result.equilibrium_exploitability.mean()),
        "train_mse_equilibrium": float(result.equilibrium_mse.mean()),
    }
    return result.theta_hat.reshape(-1), info


# --- ARIMA baselines -----------------------------------------------------------------------------
class StateSpaceForecaster:
    """ARIMA(X) with orders and coefficients from TRAIN; its filter state is extended with each
    day's actual values only after that day was forecast."""

    def __init__(self, price: np.ndarray, exog: np.ndarray | None, orders: tuple = ORDERS) -> None:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        self.use_exog = exog is not None
        tail = slice(-SELECTION_HOURS, None)
        best = None
        for order in orders:
            trend = "c" if order[1] == 0 else "n"
            model = SARIMAX(
                price[tail], exog=None if exog is None else exog[tail], order=order, trend=trend
            )
            aic = model.fit(disp=False).aic
            if best is None or aic < best[0]:
                best = (aic, order, trend)
        _, self.order, trend = best
        self.results = SARIMAX(price, exog=exog, order=self.order, trend=trend).fit(disp=False)

    def forecast(self, steps: int, exog: np.ndarray | None) -> np.ndarray:
        return np.asarray(self.results.forecast(steps, exog=exog if self.use_exog else None))

    def extend(self, price: np.ndarray, exog: np.ndarray | None) -> None:
        if len(price):
            self.results = self.results.extend(price, exog=exog if self.use_exog else None)


@contextmanager
def quiet_statsmodels() -> Iterator[None]:
    """Silence the ARIMA fits' start-value and convergence notes. statsmodels adds "always"
    filters for its warning classes when first imported, ahead of any set before: import first."""
    import statsmodels.tsa.statespace.sarimax  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def exog_of(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([fill_causal(frame[c]).to_numpy() / EXOG_SCALE for c in ALLOWED_AHEAD])


# --- the forecasting loop ------------------------------------------------------------------------
def held_out(
    train: pd.DataFrame, test: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp], int]:
    """TRAIN followed by TEST's rows after TRAIN's last day (one frame), those TEST rows, the full
    days among them with ``LAGS`` days of history (the days to forecast), and the number of TEST
    days dropped for lying inside TRAIN (the fit saw them)."""
    seen = test["date"].le(train["date"].max())
    overlap = int(test.loc[seen, "date"].nunique())
    test = test[~seen]
    if test.empty:
        raise ImitgameError(f"TEST has no day after TRAIN's last day {train['date'].max().date()}")
    frame = pd.concat([train, test]).sort_index()
    history = set(frame["date"].unique())
    days = [
        d
        for d in full_days(test)
        if all((d - pd.Timedelta(days=k)) in history for k in range(1, LAGS + 1))
    ]
    return frame, test, days, overlap


def forecast_all(
    game: StaticGame,
    theta: Tensor,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    baselines: bool = True,
    orders: tuple = ORDERS,
    recalibration: Recalibration | None = None,
    lear_windows: Sequence[int] = (),
    lear_cache: Path | None = None,
) -> pd.DataFrame:
    """Forecasts of every full TEST day with ``LAGS`` days of history, one row per hour; the
    game refitted on the way when ``recalibration`` says so (``attrs["refits"]``); LEAR for each
    window of ``lear_windows`` that fits the history at the first forecast day, and their
    ensemble (``attrs["lear"]``: the windows used, those skipped and why, the seconds taken;
    ``lear_cache``: a folder of saved LEAR calibrations, keyed by their inputs)."""
    # held-out days only: TEST days up to TRAIN's last day are not forecast (the fit saw them)
    frame, test, days, overlap = held_out(train, test)
    if overlap:
        note = f"note: {overlap} TEST day(s) up to TRAIN's last day are not forecast"
        print(note, file=sys.stderr)
    windows: list[int] = []
    lear_info: dict = {"windows": [], "skipped": {}, "seconds": 0.0}
    if lear_windows and days:
        history_days = int((days[0] - frame["date"].min()).days)
        windows, skipped = windows_that_fit(lear_windows, history_days, days[0])
        lear_info["windows"] = windows
        lear_info["skipped"] = {str(w): reason for w, reason in skipped.items()}
        for window, reason in skipped.items():
            print(f"note: LEAR window {window} skipped: {reason}", file=sys.stderr)
    arima = arimax = None
    n_train = len(train)
    if baselines:
        price_train = fill_causal(train[PRICE]).to_numpy()
        with quiet_statsmodels():
            arima = StateSpaceForecaster(price_train, None, orders)
            arimax = StateSpaceForecaster(price_train, exog_of(train), orders)
    consumed = n_train  # rows of `frame` the ARIMA states have seen (train rows come first)
    out, regrets, refits = [], [], []
    theta = theta.reshape(-1)
    for number, day in enumerate(tqdm(days, desc="forecast days", dynamic_ncols=True)):
        view = history_view(frame, day)
        rows = view[view["date"] == day]
        due = recalibration is not None and recalibration.every > 0
        due = due and number % recalibration.every == 0
        if due and day > train["date"].max() + pd.Timedelta(days=1):  # else TRAIN's fit is current
            theta, info = recalibrate(recalibration, frame[frame["date"] < day], day, theta)
            refits.append(info)
        start = int(np.searchsorted(frame.index, rows.index[0]))
        model_price, context = forecast_day(game, theta, view, day)
        pred = {"model": model_price}
        # the game's regret where it forecast: exact exploitability of the equilibrium it played
        regret = equilibrium_regret(game, theta.reshape(1, -1), context[None])
        regrets.append(float(regret) * len(rows))
        prices = daily_matrix(view[view["date"] < day], PRICE)
        hours = rows["hour"].to_numpy()
        pred["naive_day"] = prices.loc[day - pd.Timedelta(days=1)].to_numpy()[hours]
        pred["naive_week"] = prices.loc[day - pd.Timedelta(days=7)].to_numpy()[hours]
        if baselines:
            with quiet_statsmodels():
                past = view.iloc[consumed:start]
                past_price = fill_causal(view[PRICE].iloc[:start]).to_numpy()[consumed:start]
                for model in (arima, arimax):
                    model.extend(
                        past_price, exog_of(view.iloc[:start])[consumed:] if len(past) else None
                    )
                consumed = start
                exog_day = exog_of(view)[start : start + len(rows)]
                pred["arima"] = arima.forecast(len(rows), None)
                pred["arimax"] = arimax.forecast(len(rows), exog_day)
        if windows:
            started = time.perf_counter()
            for name, values in forecast_lear(view, day, windows).items():
                pred[name] = values[hours]
            lear_info["seconds"] += time.perf_counter() - started
        local = rows.index.tz_convert("Europe/Madrid")
        table = pd.DataFrame({"timestamp": [t.isoformat() for t in local]})
        table["date"] = day.date().isoformat()
        table["actual"] = frame.loc[rows.index, PRICE].to_numpy()
        for name, values in pred.items():
            table[name] = np.asarray(values, dtype=float)
        out.append(table)
    if not out:
        raise ImitgameError(f"TEST has no full day with {LAGS} days of history before it")
    table = pd.concat(out, ignore_index=True)
    table.attrs["equilibrium_regret"] = sum(regrets) / len(table)
    table.attrs["refits"] = refits
    table.attrs["test_days_in_train"] = overlap
    table.attrs["lear"] = lear_info
    if baselines:
        table.attrs["orders"] = {"arima": arima.order, "arimax": arimax.order}
    return table


def plot(predictions: pd.DataFrame, path: Path, zoom_days: int = 14) -> None:
    """Three panels: the last ``zoom_days`` of forecasts against actuals (all forecasters), the
    model's and ARIMA's residuals over the whole test, and every forecaster's daily MSE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = pd.to_datetime(predictions["timestamp"], utc=True).dt.tz_convert("Europe/Madrid")
    shown = (*FORECASTERS, ENSEMBLE)  # LEAR's windows are left out of the picture, not its ensemble
    names = [n for n in shown if n in predictions]
    color = {name: f"C{i}" for i, name in enumerate(shown)}  # one colour per forecaster
    fig, axes = plt.subplots(3, 1, figsize=(14, 10))
    days = sorted(predictions["date"].unique())
    recent = predictions["date"].isin(days[-zoom_days:]).to_numpy()
    ax = axes[0]
    ax.plot(x[recent], predictions["actual"][recent], color="black", linewidth=1.4, label="actual")
    for name in names:
        width = 1.2 if name == "model" else 0.7
        ax.plot(
            x[recent], predictions[name][recent], color=color[name], linewidth=width, label=name
        )
    ax.set_ylabel("price actual (EUR/MWh)")
    ax.set_title(f"the last {min(zoom_days, len(days))} test days")
    ax.legend(ncol=7, fontsize=8)
    ax = axes[1]
    ax.axhline(0.0, color="black", linewidth=0.6)
    for name in ("arima", ENSEMBLE, "model"):
        if name in predictions:
            residual = predictions[name] - predictions["actual"]
            ax.plot(x, residual, color=color[name], linewidth=0.6, label=name)
    ax.set_ylabel("forecast − actual")
    ax.set_title("residuals over the whole test")
    ax.legend(fontsize=8)
    ax = axes[2]
    squared = predictions[names].sub(predictions["actual"], axis=0) ** 2
    daily = squared.groupby(predictions["date"]).mean()
    for name in names:
        label = f"{name} (MSE {squared[name].mean():.2f})"
        width = 1.4 if name == "model" else 0.8
        ax.plot(pd.to_datetime(daily.index), daily[name], color=color[name], lw=width, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("daily MSE")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- a forecast run: fit, forecast, score, write -------------------------------------------------
def forecast_arguments(cache: Path, files: bool = True, **parser_kwargs) -> argparse.ArgumentParser:
    """A parser of the options of a forecast run, :func:`run_forecast`'s keyword arguments but
    ``config_dir`` (``scripts/forecast_electricity.py``; the backtest reads its
    ``--forecast-args`` with ``files=False``: without ``--train``, ``--test`` and ``--out``)."""
    parser = argparse.ArgumentParser(**parser_kwargs)
    if files:
        data = "(spain: the shipped Spanish file)"
        parser.add_argument("--train", required=True, help=f"CSV the game is fitted on {data}")
        parser.add_argument(
            "--test", required=True, help=f"CSV whose full days are forecast {data}"
        )
        parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--cache",
        type=Path,
        default=cache,
        help="folder of saved fits, keyed by TRAIN's bytes and the settings",
    )
    parser.add_argument("--iterations", type=int, default=None, help="override algo.iterations")
    parser.add_argument("--refit", action="store_true", help="ignore a saved fit")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--recalibrate-every",
        type=int,
        default=None,
        help="days between warm-started refits on the history known at the forecast origin "
        "(0: keep TRAIN's fit; default: 7 for electricity, 14 for electricity_merit)",
    )
    parser.add_argument(
        "--recalibrate-iterations",
        type=int,
        default=None,
        help="outer GDA iterations of a refit (default: 200 for electricity, 10 L-BFGS steps "
        "for electricity_merit)",
    )
    parser.add_argument(
        "--window-days", type=int, default=365, help="days of history a refit reads"
    )
    parser.add_argument(
        "--lear-windows",
        type=int,
        nargs="+",
        default=None,
        metavar="DAYS",
        help="LEAR calibration windows in days (default: every one of "
        f"{' '.join(map(str, WINDOWS))} that fits the history before the first forecast day)",
    )
    parser.add_argument("--no-lear", action="store_true", help="do not run the LEAR benchmark")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="env.KEY=VALUE",
        help="settings of the market (configs/env/<market>.yaml) or of its fit (algo.KEY=VALUE)",
    )
    parser.add_argument(
        "--env",
        default="electricity",
        choices=sorted(MARKETS),
        help="the market game forecasting as `model`: electricity (demand affine in features) "
        "or electricity_merit (the structural merit-order market)",
    )
    return parser


def forecaster_columns(predictions: pd.DataFrame) -> list[str]:
    """The forecasters in ``predictions``: :data:`FORECASTERS`, then LEAR's columns (its windows,
    then the ensemble) where it ran."""
    lear = [c for c in predictions.columns if str(c).startswith(LEAR_PREFIX)]
    return [n for n in FORECASTERS if n in predictions] + lear


def scores(predictions: pd.DataFrame) -> dict:
    """Every forecaster's :data:`~envs.electricity.metrics.POINT_METRICS` (``mse``, ``mae``,
    ``rmse``, ``smape`` in %, ``rmae`` against ``naive_week``: metric → forecaster → value) and
    ``diebold_mariano``: loss (squared, absolute) → other forecaster → the multivariate DM test of
    the model against it (statistic, ``p_model_better``, ``p_other_better``, days)."""
    names = forecaster_columns(predictions)
    out: dict = point_metrics(predictions, names)
    out["diebold_mariano"] = dm_tests(predictions, "model", names)
    return out


def scores_table(metrics: dict) -> str:
    """Markdown: one row per forecaster with its point metrics and the DM p-values of the model
    against it (p(model better) / p(other better), squared and absolute loss)."""
    names = list(metrics["mse"])
    dm = metrics.get("diebold_mariano", {})
    labels = [METRIC_LABELS[k] for k in POINT_METRICS]
    head = ["forecaster", *labels]
    head += [f"DM {kind}: p(model better) / p(other better)" for kind in LOSSES if kind in dm]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def p(value: float | None) -> str:
        return "—" if value is None else f"{value:.3g}"

    for name in names:
        cells = [name] + [f"{metrics[k][name]:.3f}" for k in POINT_METRICS]
        for kind in LOSSES:
            if kind not in dm:
                continue
            test = dm[kind].get(name)
            if test is None:
                cells.append("")
            else:
                cells.append(f"{p(test['p_model_better'])} / {p(test['p_other_better'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_forecast(
    train: str | Path,
    test: str | Path,
    out: Path,
    *,
    config_dir: Path,
    cache: Path,
    iterations: int | None = None,
    refit: bool = False,
    threads: int = 1,
    recalibrate_every: int | None = None,
    recalibrate_iterations: int | None = None,
    window_days: int = 365,
    lear_windows: Sequence[int] | None = None,
    no_lear: bool = False,
    env: str = "electricity",
    overrides: Sequence[str] = (),
) -> dict:
    """Fit on all of TRAIN (or reuse a saved fit), forecast every full day of TEST, refitting
    every ``recalibrate_every`` days, with the baselines and LEAR (calibration windows
    ``lear_windows``, default :data:`~envs.electricity.lear.WINDOWS`; those that do not fit the
    history are skipped; ``no_lear``: none); write ``out``/metrics.json, predictions.csv,
    forecast.png and model.pt (θ̂ fitted on TRAIN; the refits' θ̂ are not saved). Returns the
    metrics (:func:`scores` and the run's details). TRAIN and TEST: ``spain`` or paths;
    ``overrides``: ``env.KEY=VALUE`` / ``algo.KEY=VALUE`` (:func:`settings`). Raises
    :class:`ImitgameError` for bad input."""
    torch.set_num_threads(threads)
    train_path, test_path = resolve_data_path(train), resolve_data_path(test)
    train_frame = load_energy_csv(train_path)
    test_frame = load_energy_csv(test_path)
    if recalibrate_every is None:
        recalibrate_every = RECALIBRATE_EVERY.get(env, 7)
    if recalibrate_iterations is None:
        recalibrate_iterations = RECALIBRATE_ITERATIONS.get(env, 200)
    if recalibrate_every < 0 or recalibrate_iterations < 1 or window_days < 1:
        raise ImitgameError("--recalibrate-every must be >= 0, the others >= 1")
    market = env
    env, algo = settings(config_dir, iterations, market, overrides)
    game, theta, info = fit_model(train_path, Path(cache), env, algo, refit)
    plan = Recalibration(
        env,
        algo,
        every=recalibrate_every,
        iterations=recalibrate_iterations,
        window_days=window_days,
    )
    windows = () if no_lear else tuple(WINDOWS if lear_windows is None else lear_windows)
    started = time.perf_counter()
    predictions = forecast_all(
        game,
        theta,
        train_frame,
        test_frame,
        recalibration=plan,
        lear_windows=windows,
        lear_cache=Path(cache) / "lear",
    )
    forecast_seconds = time.perf_counter() - started
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out / "predictions.csv", index=False)
    hours = int(predictions["actual"].notna().sum())
    if not hours:
        raise ImitgameError("TEST has no actual prices to score the forecasts on")
    metrics = {
        **scores(predictions),
        "market": market,
        "days": int(predictions["date"].nunique()),
        "hours": hours,
        "hours_without_actual": len(predictions) - hours,
        "equilibrium_regret_test": predictions.attrs["equilibrium_regret"],
        "orders": predictions.attrs.get("orders"),
        "fit": info,
        "forecast_seconds": forecast_seconds,
        "lear": predictions.attrs["lear"],
        "refits": predictions.attrs["refits"],
        "test_days_in_train": predictions.attrs["test_days_in_train"],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    torch.save({"theta": theta, "param_names": game.param_names}, out / "model.pt")  # TRAIN's
    plot(predictions, out / "forecast.png")
    return metrics


# --- rolling-origin backtest ---------------------------------------------------------------------
def _columns(rows: list[dict]) -> list[str]:
    """The forecasters of any row, in order of first appearance."""
    names: list[str] = []
    for row in rows:
        names += [n for n in row["mse"] if n not in names]
    return names


def backtest_table(rows: list[dict]) -> str:
    """Markdown: the MSE table (one row per period and the pooled row, a column per forecaster,
    the model's ratio to ARIMA and whether it beats ARIMAX), then the same layout for MAE and
    rMAE, then the pooled Diebold–Mariano tests of the model. A forecaster a period lacks shows
    "—"."""
    names = _columns(rows)

    def table(metric: str, extra: bool) -> list[str]:
        head = ["period", "days", *names] + (["model / ARIMA", "model < ARIMAX"] if extra else [])
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            values = row[metric]
            cells = [row["period"], str(row["days"])]
            cells += [f"{values[n]:.3f}" if n in values else "—" for n in names]
            if extra:
                cells += [
                    f"{values['model'] / values['arima']:.3f}",
                    "yes" if values["model"] < values["arimax"] else "no",
                ]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    lines = ["### MSE", "", *table("mse", True)]
    for metric in ("mae", "rmae"):
        lines += ["", f"### {METRIC_LABELS[metric]}", "", *table(metric, False)]
    pooled = rows[-1]
    if "diebold_mariano" in pooled:
        lines += ["", "### Diebold–Mariano, model against each forecaster (pooled days)", ""]
        lines += ["p(model better) / p(other better), one-sided, multivariate daily test", ""]
        head = ["loss", *[n for n in names if n != "model"]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for kind, tests in pooled["diebold_mariano"].items():
            cells = [kind]
            for name in head[1:]:
                test = tests.get(name)
                if test is None or test["p_model_better"] is None:
                    cells.append("—")
                else:
                    cells.append(f"{test['p_model_better']:.3g} / {test['p_other_better']:.3g}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def backtest(
    source: str | Path,
    periods: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    out: Path,
    forecast: dict,
) -> list[dict]:
    """For each period FIRST..LAST: fit on every day of ``source`` (``spain`` or a path) before
    FIRST and forecast the period (:func:`run_forecast` with the keyword arguments ``forecast``),
    outputs under ``out/<first>_<last>/``. LEAR's windows, unless ``forecast`` names them, are
    those that fit before the earliest period (the same in every period). Writes
    ``out``/backtest.json and backtest.md (every period's scores, and the scores of all periods'
    hours pooled: the forecasters every period has; windows named in ``forecast`` that a period
    cannot fit are skipped there, and its ``lear_ensemble`` averages the windows it has);
    returns the summary rows."""
    path = resolve_data_path(source)
    start = load_energy_csv(path)["date"].min()  # one-line errors for a bad file before any work
    raw = read_raw(path)
    forecast = dict(forecast)
    if not forecast.get("no_lear") and forecast.get("lear_windows") is None:
        earliest = min(first for first, _ in periods)
        windows, skipped = windows_that_fit(WINDOWS, int((earliest - start).days), earliest)
        forecast["lear_windows"] = windows
        for window, reason in skipped.items():
            print(f"note: LEAR window {window} left out of the backtest: {reason}", file=sys.stderr)
    rows, tables = [], []
    for first, last in periods:
        folder = out / f"{first.date()}_{last.date()}"
        folder.mkdir(parents=True, exist_ok=True)
        train, test = folder / "train.csv", folder / "test.csv"
        day_before = (first - pd.Timedelta(days=1)).date().isoformat()
        write_days(raw, None, day_before, train)
        write_days(raw, first.date().isoformat(), last.date().isoformat(), test)
        metrics = run_forecast(train, test, folder, **forecast)
        print(scores_table(metrics), f"\ndays: {metrics['days']}")
        tables.append(pd.read_csv(folder / "predictions.csv"))
        rows.append({"period": f"{first.date()}..{last.date()}", **metrics})
    common = [n for n in _columns(rows) if all(n in r["mse"] for r in rows)]
    every = pd.concat([t[["date", "actual", *common]] for t in tables], ignore_index=True)
    rows.append({"period": "pooled", "days": sum(r["days"] for r in rows), **scores(every)})
    out.mkdir(parents=True, exist_ok=True)
    keys = ("period", "days", *POINT_METRICS, "diebold_mariano")
    summary = [{k: r[k] for k in keys if k in r} for r in rows]
    (out / "backtest.json").write_text(json.dumps(summary, indent=2))
    markdown = backtest_table(rows)
    (out / "backtest.md").write_text(markdown + "\n")
    print(markdown)
    return summary


# --- the least-squares reference -----------------------------------------------------------------
def least_squares_design(contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of each row ``[M]`` and the regressors ``[M, 1 + m + 6]`` of a(x): 1, the features,
    the Monday..Saturday indicators (the game's per-hour design)."""
    ones = np.ones((len(contexts), 1))
    return contexts[:, :24].argmax(1), np.hstack([ones, contexts[:, 31:], contexts[:, 24:30]])


def fit_hours(
    contexts: np.ndarray, prices: np.ndarray, weights: np.ndarray, ridge: float
) -> np.ndarray:
    """Per-hour weighted least squares of price on the design: ``[24, 1 + m + 6]``."""
    hour, x = least_squares_design(contexts)
    coef = np.zeros((24, x.shape[1]))
    for h in range(24):
        rows = hour == h
        xw = x[rows] * weights[rows, None]
        gram = x[rows].T @ xw + ridge * rows.sum() * np.eye(x.shape[1])
        coef[h] = np.linalg.lstsq(gram, xw.T @ prices[rows], rcond=None)[0]
    return coef


def least_squares_mse(
    train: pd.DataFrame,
    test: pd.DataFrame,
    every: int,
    window_days: int,
    recency_days: float | None,
    ridge: float,
) -> float:
    """MSE over TEST's forecastable days of the least-squares fit of the game's price map (while
    every generator produces, P*(x) is affine in a(x), a(x) linear in the demand weights: a
    per-hour linear function of the features), refitted every ``every`` days (0: once) on the
    ``window_days`` before the forecast day, recency-weighted like the game's fit."""
    frame, _, days, _ = held_out(train, test)
    coef, errors = None, []
    for number, day in enumerate(days):
        if coef is None or (every and number % every == 0):
            first = day - pd.Timedelta(days=(window_days if coef is not None else 10**5) + LAGS)
            seen = frame[(frame["date"] >= first) & (frame["date"] < day)]
            game = ElectricityMarket(frame=seen, recency_days=recency_days)  # the fit's data
            contexts = game.observed_contexts().numpy()
            prices = game.observed_outcomes()[:, 0].numpy()
            weights = game.observation_weights()
            weights = np.ones_like(prices) if weights is None else weights.numpy()
            coef = fit_hours(contexts, prices, weights, ridge)
        hour, x = least_squares_design(forecast_contexts(frame, day))
        actual = frame.loc[frame["date"] == day, PRICE].to_numpy()
        errors.append((coef[hour] * x).sum(1) - actual)
    return float(np.nanmean(np.concatenate(errors) ** 2))  # a blank actual scores nothing
