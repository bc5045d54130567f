"""Day-ahead price forecasts of a simulacral electricity-market game against ARIMA baselines.

    python scripts/forecast_electricity.py --train TRAIN.csv --test TEST.csv --out DIR

Fits the game (configs/env/electricity.yaml, configs/algo/simulacral.yaml) on all of TRAIN by
simulacral learning — or reuses a saved fit of the same file and settings — then forecasts every
full day D of TEST at midnight of D (DESIGN.md §6): every column up to the end of D−1, for D only
the day-ahead forecast columns. The model's forecast is the fitted game's equilibrium price in D's
contexts. At every ``--recalibrate-every``-th forecast day (TRAIN's own fit serves a first day
that follows TRAIN directly) the game is refitted on the history known at that midnight (the last
``--window-days`` days, recency-weighted), warm-started from the current θ̂ by the same simulacral
GDA: after D, D's actual values join the history, for the game as for the ARIMA filters.
Baselines on the same inputs: ARIMA on price alone and ARIMAX with the day-ahead forecasts as
regressors (orders chosen once by AIC on TRAIN, state updated with each day's actuals
after it is forecast), seasonal naive (same hour yesterday / a week earlier).

Writes DIR/metrics.json, DIR/predictions.csv, DIR/forecast.png (forecasts and residuals) and
DIR/model.pt (θ̂ fitted on TRAIN; the refits' θ̂ are not saved).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs.electricity import LAGS, ElectricityMarket, forecast_day, history_view  # noqa: E402
from imitgame.config import (
    SimulacralConfig,  # noqa: E402
    typed,  # noqa: E402
)
from imitgame.energy import (  # noqa: E402
    ALLOWED_AHEAD,
    PRICE,
    daily_matrix,
    fill_causal,
    full_days,
    load_energy_csv,
)
from imitgame.errors import ImitgameError  # noqa: E402
from imitgame.problems.simulacral import (  # noqa: E402
    equilibrium_regret,
    fit,
    problem_from_game,
    score,
)

FORECASTERS = ("model", "arima", "arimax", "naive_day", "naive_week")
ORDERS = ((1, 0, 1), (2, 0, 1), (3, 0, 1), (1, 1, 1), (2, 1, 1), (2, 1, 2))
SELECTION_HOURS = 24 * 60  # AIC order selection on the last 60 days of TRAIN (speed)
EXOG_SCALE = 1e4
FIT_VERSION = 2  # part of a saved fit's key: bump when the fit itself changes


# --- the model -----------------------------------------------------------------------------------
def settings(iterations: int | None) -> tuple[dict, SimulacralConfig]:
    env = OmegaConf.to_container(OmegaConf.load(ROOT / "configs/env/electricity.yaml"))
    env.pop("_target_")
    algo = OmegaConf.load(ROOT / "configs/algo/simulacral.yaml")
    if iterations is not None:
        algo.iterations = iterations
    return env, typed(SimulacralConfig, algo, "algo")


def fit_model(
    train: Path, cache: Path, iterations: int | None, refit: bool
) -> tuple[ElectricityMarket, torch.Tensor, dict]:
    """Fit on all of TRAIN, or load the fit saved for the same file bytes and settings."""
    env, algo = settings(iterations)
    env.update(data_path=str(train), train_start=None, train_end=None)
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
    game = ElectricityMarket(**env)
    if saved.is_file() and not refit:
        state = torch.load(saved, weights_only=False)
        print(f"reusing the fit saved in {saved}")
        return game, state["theta"], state["info"]
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
    plan: Recalibration, history: pd.DataFrame, day: pd.Timestamp, theta: torch.Tensor
) -> tuple[torch.Tensor, dict]:
    """θ̂ refitted on the ``window_days`` before ``day`` (rows dated before it only), starting
    from ``theta``; with the refit's diagnostics."""
    first = day - pd.Timedelta(days=plan.window_days + LAGS)
    env = {**plan.env, "data_path": None, "train_start": None, "train_end": None}
    window = history[(history["date"] >= first) & (history["date"] < day)]
    game = ElectricityMarket(**env, frame=window)
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
    game: ElectricityMarket,
    theta: torch.Tensor,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    baselines: bool = True,
    orders: tuple = ORDERS,
    recalibration: Recalibration | None = None,
) -> pd.DataFrame:
    """Forecasts of every full TEST day with ``LAGS`` days of history, one row per hour; the
    game refitted on the way when ``recalibration`` says so (``attrs["refits"]``)."""
    # held-out days only: TEST days up to TRAIN's last day are not forecast (the fit saw them)
    frame, test, days, overlap = held_out(train, test)
    if overlap:
        note = f"note: {overlap} TEST day(s) up to TRAIN's last day are not forecast"
        print(note, file=sys.stderr)
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
    names = [n for n in FORECASTERS if n in predictions]
    color = {name: f"C{i}" for i, name in enumerate(FORECASTERS)}  # one colour per forecaster
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
    ax.legend(ncol=6, fontsize=8)
    ax = axes[1]
    ax.axhline(0.0, color="black", linewidth=0.6)
    for name in ("arima", "model"):
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, type=Path, help="CSV the game is fitted on")
    parser.add_argument("--test", required=True, type=Path, help="CSV whose full days are forecast")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--cache",
        type=Path,
        default=ROOT / "runs/electricity_fits",
        help="folder of saved fits, keyed by TRAIN's bytes and the settings",
    )
    parser.add_argument("--iterations", type=int, default=None, help="override algo.iterations")
    parser.add_argument("--refit", action="store_true", help="ignore a saved fit")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--recalibrate-every",
        type=int,
        default=7,
        help="days between warm-started refits on the history known at the forecast origin "
        "(0: keep TRAIN's fit)",
    )
    parser.add_argument(
        "--recalibrate-iterations", type=int, default=200, help="GDA iterations of a refit"
    )
    parser.add_argument(
        "--window-days", type=int, default=365, help="days of history a refit reads"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        train = load_energy_csv(args.train)
        test = load_energy_csv(args.test)
        if args.recalibrate_every < 0 or args.recalibrate_iterations < 1 or args.window_days < 1:
            raise ImitgameError("--recalibrate-every must be >= 0, the others >= 1")
        game, theta, info = fit_model(args.train, args.cache, args.iterations, args.refit)
        env, algo = settings(args.iterations)
        plan = Recalibration(
            env,
            algo,
            every=args.recalibrate_every,
            iterations=args.recalibrate_iterations,
            window_days=args.window_days,
        )
        started = time.perf_counter()
        predictions = forecast_all(game, theta, train, test, recalibration=plan)
        forecast_seconds = time.perf_counter() - started
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(args.out / "predictions.csv", index=False)
    scored = predictions[predictions["actual"].notna()]  # a blank actual price scores nothing
    if scored.empty:
        print("error: TEST has no actual prices to score the forecasts on", file=sys.stderr)
        sys.exit(2)
    err = {n: float(np.mean((scored[n] - scored["actual"]) ** 2)) for n in FORECASTERS}
    metrics = {
        "mse": err,
        "days": int(predictions["date"].nunique()),
        "hours": len(scored),
        "hours_without_actual": len(predictions) - len(scored),
        "equilibrium_regret_test": predictions.attrs["equilibrium_regret"],
        "orders": predictions.attrs.get("orders"),
        "fit": info,
        "forecast_seconds": forecast_seconds,
        "refits": predictions.attrs["refits"],
        "test_days_in_train": predictions.attrs["test_days_in_train"],
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    torch.save({"theta": theta, "param_names": game.param_names}, args.out / "model.pt")  # TRAIN's
    plot(predictions, args.out / "forecast.png")
    print(json.dumps(metrics["mse"], indent=2), f"days: {metrics['days']}")
    return metrics


if __name__ == "__main__":
    main()
