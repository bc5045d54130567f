"""A structural day-ahead market: technologies on a merit order against residual demand.

Each hour of day D is one play of a static game among n technologies (default: nuclear, coal,
gas, hydro). Technology j offers q_j ≥ 0 (GW) at marginal cost c_j + κ + d_j q_j, and above its
available capacity K_j (GW, known at midnight of D: the most it produced in the
:data:`CAPACITY_DAYS` days before D) at a scarcity slope M more. Demand is the residual demand
R = load forecast − wind forecast − solar forecast − other must-run output (the TSO's day-ahead
forecasts for D; the small must-run plants, and the technologies named in ``must_run`` (e.g.
nuclear, whose output is set by its refuelling schedule, not by the price), at their output of
D−1), almost inelastic:

    P(Q; x) = α_h + ω_wd + b (R − Q)        (EUR/MWh; h: hour, wd: weekday, b: EUR/MWh per GW)

u_j = P q_j − (c_j + κ) q_j − d_j q_j²/2 + (1 − ν_j) b q_j²/2 − M (q_j − K_j)₊²/2, with ν_j the
conduct of technology j (``conduct``: 1 Cournot, 0 price taking — the (1 − ν_j) term turns the
perceived price impact b into ν_j b, the standard conduct-parameter device). With
s_j = ν_j b + d_j, technology j's equilibrium supply at price P is the merit-order curve
q_j(P − κ) with

    q_j(y) = 0 (y ≤ c_j),  (y − c_j)/s_j (up to K_j),  K_j + (y − c_j − s_j K_j)/(s_j + M) (above),

and y = P − κ solves y = α_h + ω_wd − κ + b (R − Σ_j q_j(y)), a strictly increasing
piecewise-linear equation solved exactly (:func:`clear`): the price is flat where cheap
technologies have room and steep where residual demand nears capacity; more wind lowers R and
never raises P, less capacity never lowers it, a dearer technology never lowers it.

κ is a latent cost level (fuel prices are not in the data; hydro's water value drifts), filtered
from observed history: κ = Σ_k β_k (P_{D−k,h} − y(x_{D−k,h})) (+ Σ_k γ_k of the mean over the
day's 24 hours for ``day_lags``), the residuals of the market without the level (y: its clearing
price at κ = 0) at the same hour on the days ``lags`` before D under the same θ (the contexts carry
those days' inputs and prices). A counterfactual changes D's market only: the lagged markets stay
what was observed.

With ``last_hour``, κ also weighs (δ) the residual at 23:00 of D−1, the freshest pricing error
known at midnight of D; given a list of hours of D−1, one weight δ_k per hour k (a fuller picture of
yesterday's level than the same hour alone).

With ``slope_capacity`` K₀ (GW; one, or one per technology with null for a fixed slope), d_j is
the slope at K_j = K₀ and the day's slope is d_j K₀ / K_j: the fleet's costs span
[c_j, c_j + d_j K₀] whatever share of it is available, so more capacity makes its supply flatter.

With ``weekday_blocks`` B > 1, ω is one markup per weekday and block of 24/B consecutive hours
(ω_wd,h//(24/B)): the night after a weekend is not the working day that follows it.

With ``filter_weekdays``, each filter weight is one per weekday of D (β_k,wd, γ_k,wd, δ_wd): a
Monday's level may lean on the previous Monday rather than on Sunday.

θ = (c_j, d_j, b, α_0..α_23, ω_mon..ω_sat (× B), β_k, γ_k, δ (× 7 with ``filter_weekdays``)).
Observed: the price and, with ``observe_generation``, in training the generation of each
technology (a partial observation of the profile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from envs.electricity.data import (
    LOAD_FORECAST,
    PRICE,
    SOLAR_FORECAST,
    WIND_FORECAST,
    daily_matrix,
    load_energy_csv,
    resolve_data_path,
)
from envs.electricity.market import _unexpanded
from imitgame import StaticGame
from imitgame.errors import ImitgameError

GW = 1000.0  # MW per GW: quantities are in GW
MIN_CAPACITY = 0.1  # GW: K_j below it counts as this in d_j K₀ / K_j (a removed technology)
#: the data columns of each technology a player stands for (summed)
TECHNOLOGIES = {
    "nuclear": ("generation nuclear",),
    "coal": ("generation fossil hard coal", "generation fossil brown coal/lignite"),
    "gas": ("generation fossil gas", "generation fossil oil"),
    "hydro": ("generation hydro water reservoir",),
}
#: small must-run plants, taken at their mean output of D−1 and subtracted from demand
MUST_RUN = (
    "generation biomass",
    "generation hydro run-of-river and poundage",
    "generation waste",
    "generation other",
    "generation other renewable",
)
SEASON_AHEAD = 46  # days from the last fitted day to the middle of the quarter forecast after it
YEAR_DAYS = 365.25
CAPACITY_DAYS = 7  # K_j: the most technology j produced in an hour of the last 7 days
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat")  # ω; Sunday is the reference
DAYS = (*WEEKDAYS, "sun")
BLOCKS = ("costs", "slopes", "demand_slope", "hours", "weekdays", "filter")


@dataclass
class DailyInputs:
    """The market's inputs by day and local hour (24-hour rows, :func:`daily_matrix`)."""

    dates: pd.DatetimeIndex  # [T]
    residual: np.ndarray  # [T, 24] GW: load − wind − solar forecasts − must-run of the day before
    capacity: np.ndarray  # [T, n] GW: K_j from the CAPACITY_DAYS days before
    price: np.ndarray  # [T, 24] EUR/MWh (NaN where unknown)
    generation: np.ndarray  # [T, 24, n] GW (NaN where unknown)


def daily_inputs(
    frame: pd.DataFrame,
    technologies: Sequence[str],
    capacity_margin: float,
    wind_scale: float = 1.0,
    must_run: Sequence[str] = (),
) -> DailyInputs:
    """:class:`DailyInputs` of every day of ``frame``. Day t's residual demand reads t's
    day-ahead forecasts and t−1's must-run output (:data:`MUST_RUN` and the ``must_run``
    technologies); its capacity the generation of t−7..t−1 (× ``capacity_margin``).
    ``wind_scale`` multiplies the wind forecast."""
    must_run_columns = [*MUST_RUN, *(c for t in must_run for c in TECHNOLOGIES[t])]
    missing = [c for t in technologies for c in TECHNOLOGIES[t] if c not in frame.columns]
    missing += [c for c in must_run_columns if c not in frame.columns]
    if missing:
        raise ImitgameError(f"the structural market needs the generation column(s) {missing}")

    def table(column: str) -> pd.DataFrame:
        return daily_matrix(frame, column)

    load, wind, solar = table(LOAD_FORECAST), table(WIND_FORECAST), table(SOLAR_FORECAST)
    dates = load.index
    wind = wind * wind_scale
    # generation and prices: the known rows only (daily_matrix fills a blank day from the last)
    known = frame.dropna(subset=[PRICE])
    known_dates = set(known["date"].unique())
    mask = np.array([d in known_dates for d in dates])

    def known_table(column: str) -> np.ndarray:
        values = daily_matrix(known, column).reindex(dates).to_numpy(dtype=float, copy=True)
        values[~mask] = np.nan
        return values

    must_run = pd.DataFrame(sum(known_table(c) for c in must_run_columns)).mean(axis=1)
    must_run_yesterday = must_run.shift(1).ffill().to_numpy()
    residual = (load - wind - solar).to_numpy(dtype=float) - must_run_yesterday[:, None]
    generation = np.stack(
        [sum(known_table(c) for c in TECHNOLOGIES[t]) for t in technologies], axis=-1
    )
    daily_max = pd.DataFrame(generation.max(axis=1))  # [T, n]; NaN where the day is unknown
    capacity = daily_max.shift(1).rolling(CAPACITY_DAYS, min_periods=1).max().to_numpy()
    return DailyInputs(
        pd.DatetimeIndex(dates),
        residual / GW,
        capacity_margin * capacity / GW,
        known_table(PRICE),
        generation / GW,
    )


def hour_contexts(
    inputs: DailyInputs,
    day: int,
    lags: Sequence[int],
    observed: DailyInputs | None = None,
    day_lags: Sequence[int] = (),
    last_hours: Sequence[int] = (),
) -> np.ndarray:
    """Contexts ``[24, 31 + 1 + n + L (7 + 1 + n + 1)]`` of the 24 hours of day index ``day``:
    hour and weekday indicators, R, K, then per lag k the weekday, R, K and price of day − k,
    read from ``observed`` (the inputs as they were; default ``inputs``): a counterfactual
    changes the played day, not the markets the cost level was filtered from. Then per
    ``day_lags`` entry k the weekday, K, and the 24 residual demands and 24 prices of day − k
    (the same for every hour). Last, per hour k of ``last_hours``, the weekday, R, K and price
    of hour k of day − 1 (the same for every hour)."""
    observed = inputs if observed is None else observed

    def block(source: DailyInputs, t: int) -> list[np.ndarray]:
        weekday = np.repeat(np.eye(7)[source.dates[t].weekday()][None], 24, 0)
        capacity = np.repeat(source.capacity[t][None], 24, 0)
        return [weekday, source.residual[t][:, None], capacity]

    parts = [np.eye(24), *block(inputs, day)]
    for k in lags:
        parts += [*block(observed, day - k), observed.price[day - k][:, None]]
    for k in day_lags:
        weekday, _, capacity = block(observed, day - k)
        whole = np.concatenate([observed.residual[day - k], observed.price[day - k]])
        parts += [weekday, capacity, np.repeat(whole[None], 24, 0)]
    for k in last_hours:
        weekday, residual, capacity = block(observed, day - 1)
        price = np.repeat(observed.price[day - 1][None, k : k + 1], 24, 0)
        parts += [weekday, np.repeat(residual[None, k], 24, 0), capacity, price]
    return np.concatenate(parts, axis=1)


class ElectricityMeritMarket(StaticGame):
    """Technologies on a merit order against residual demand; see the module docstring.

    Observed hours: ``data_path`` (``spain`` or a CSV path) or ``frame``, cut to
    ``train_start``..``train_end`` (or ``period``); with neither, a synthetic market with known θ
    (random inputs, prices and generation from its equilibrium).
    Counterfactual inputs, applied to the played days' markets only (the lagged markets the
    cost level κ is filtered from stay as observed): ``wind_scale`` (the day-ahead wind
    forecast), ``cost_shift`` (EUR/MWh added to c_j: one number for all, or one per technology,
    e.g. dearer gas), ``capacity_scale`` (one factor per technology on K_j: 0 removes it),
    ``period``. (A change of θ's ``c_j`` by name also re-filters κ from history: use
    ``cost_shift`` for a cost counterfactual.)"""

    #: no per-agent options for ``remove_agent``: a technology is removed by its capacity,
    #: ``capacity_scale`` 0 (θ keeps its entries; the lagged markets keep it, as observed)
    agent_options = ()

    def __init__(
        self,
        technologies: Sequence[str] = ("nuclear", "coal", "gas", "hydro"),
        must_run: Sequence[str] = (),
        conduct: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        costs: Sequence[float] = (5.0, 35.0, 45.0, 30.0),
        slopes: Sequence[float] = (3.0, 3.0, 3.0, 3.0),
        demand_slope: float = 20.0,
        lags: Sequence[int] = (1, 7),
        day_lags: Sequence[int] = (),
        last_hour: bool | Sequence[int] = False,
        weekday_effect: str = "demand",
        weekday_blocks: int = 1,
        filter_weekdays: bool = False,
        learn: Sequence[str] = BLOCKS,
        observe_generation: bool = False,
        capacity_margin: float = 1.0,
        scarcity_slope: float = 200.0,
        slope_capacity: float | Sequence[float | None] | None = None,
        data_path: str | None = None,
        train_start: str | None = None,
        train_end: str | None = None,
        recency_days: float | None = None,
        season_days: float | None = None,
        window_days: int | None = None,
        cost_bounds: Sequence[float] = (-100.0, 200.0),
        slope_bounds: Sequence[float] = (0.05, 100.0),
        demand_slope_bounds: Sequence[float] = (0.1, 200.0),
        intercept_bounds: Sequence[float] = (-200.0, 200.0),
        filter_bounds: Sequence[float] = (0.0, 1.0),
        max_quantity: float = 40.0,
        synthetic_days: int = 200,
        synthetic_seed: int = 0,
        frame: pd.DataFrame | None = None,
        wind_scale: float = 1.0,
        cost_shift: float | Sequence[float] = 0.0,
        capacity_scale: Sequence[float] | None = None,
        period: Sequence[str] | None = None,
    ) -> None:
        technologies = list(technologies)
        n = len(technologies)
        unknown = [t for t in technologies if t not in TECHNOLOGIES]
        if n < 1 or unknown:
            raise ImitgameError(
                f"technologies: unknown {unknown or 'none given'}; choose from {list(TECHNOLOGIES)}"
            )
        must_run = list(must_run)
        bad_must_run = [t for t in must_run if t not in TECHNOLOGIES or t in technologies]
        if bad_must_run:
            raise ImitgameError(
                f"must_run: {bad_must_run} must be technologies of {list(TECHNOLOGIES)} "
                "that are not players"
            )
        for name, values in (("conduct", conduct), ("costs", costs), ("slopes", slopes)):
            if len(values) != n:
                raise ImitgameError(f"{name} has {len(values)} entries for {n} technologies")
        capacity_scale = [1.0] * n if capacity_scale is None else list(capacity_scale)
        if len(capacity_scale) != n or min(capacity_scale) < 0:
            raise ImitgameError(f"capacity_scale needs {n} entries >= 0, got {capacity_scale}")
        if any(not 0.0 <= v <= 1.0 for v in conduct):
            raise ImitgameError(f"conduct entries must lie in [0, 1], got {list(conduct)}")
        if weekday_effect not in ("demand", "cost"):
            raise ImitgameError(f"weekday_effect: demand or cost, got {weekday_effect!r}")
        if weekday_blocks < 1 or 24 % weekday_blocks:
            raise ImitgameError(f"weekday_blocks must divide 24, got {weekday_blocks}")
        bad = [b for b in learn if b not in BLOCKS]
        if bad:
            raise ImitgameError(f"learn: unknown block(s) {bad}; choose from {list(BLOCKS)}")
        if any(k < 1 for k in [*lags, *day_lags]) or not lags:
            raise ImitgameError(f"lags, day_lags: days >= 1 (lags not empty), got {list(lags)}")
        if isinstance(last_hour, bool):
            last_hours = [23] if last_hour else []
        elif isinstance(last_hour, int):
            last_hours = [last_hour]
        else:
            last_hours = [int(k) for k in last_hour]
        if any(not 0 <= k <= 23 for k in last_hours) or len(set(last_hours)) < len(last_hours):
            raise ImitgameError(f"last_hour: true, false or distinct hours 0..23, got {last_hour}")
        if (day_lags or last_hours) and data_path is None and frame is None:
            raise ImitgameError("day_lags, last_hour need data (the synthetic market has none)")
        if wind_scale < 0 or capacity_margin <= 0 or scarcity_slope <= 0:
            raise ImitgameError("wind_scale >= 0, capacity_margin > 0, scarcity_slope > 0 needed")
        if slope_capacity is None or np.isscalar(slope_capacity):
            slope_capacity = [slope_capacity] * n
        reference = [0.0 if v is None else float(v) for v in slope_capacity]
        if len(reference) != n or any(v <= 0 for v in slope_capacity if v is not None):
            raise ImitgameError(
                f"slope_capacity must be > 0 GW or null, once or per technology ({n}), "
                f"got {slope_capacity}"
            )
        if recency_days is not None and recency_days <= 0:
            raise ImitgameError(f"recency_days must be > 0 or null, got {recency_days}")
        if season_days is not None and season_days <= 0:
            raise ImitgameError(f"season_days must be > 0 or null, got {season_days}")
        if window_days is not None and window_days < 1:
            raise ImitgameError(f"window_days must be >= 1 or null, got {window_days}")
        if period is not None and len(period) != 2:
            raise ImitgameError(f"period must be [first, last] dates, got {list(period)}")
        self.technologies = technologies
        self.must_run = must_run
        self.n_tech = n
        self.lags = [int(k) for k in lags]
        self.day_lags = [int(k) for k in day_lags]
        self.last_hours = last_hours
        self.weekday_effect = weekday_effect
        self.weekday_blocks = int(weekday_blocks)
        self.filter_weekdays = bool(filter_weekdays)
        n_omega = 6 * self.weekday_blocks
        self.observe_generation = bool(observe_generation)
        self.capacity_margin = float(capacity_margin)
        self.scarcity = float(scarcity_slope)
        self.wind_scale = float(wind_scale)
        shift = [float(cost_shift)] * n if np.isscalar(cost_shift) else list(cost_shift)
        if len(shift) != n:
            raise ImitgameError(f"cost_shift: one number or {n} (one per technology)")
        self.recency_days = recency_days
        self.season_days = season_days
        names = [f"c_{t}" for t in technologies] + [f"d_{t}" for t in technologies] + ["b"]
        names += [f"alpha[{h}]" for h in range(24)] + self._omega_names()
        filters = [f"beta[{k}]" for k in self.lags] + [f"gamma[{k}]" for k in self.day_lags]
        filters += ["delta"] if last_hours == [23] else [f"delta[{k}]" for k in last_hours]
        if self.filter_weekdays:  # one weight per weekday of D
            filters = [f"{name}_{d}" for name in filters for d in DAYS]
        names += filters
        blocks = ["costs"] * n + ["slopes"] * n + ["demand_slope"] + ["hours"] * 24
        n_filter = len(filters)
        blocks += ["weekdays"] * n_omega + ["filter"] * n_filter
        bounds = {
            "costs": cost_bounds,
            "slopes": slope_bounds,
            "demand_slope": demand_slope_bounds,
            "hours": intercept_bounds,
            "weekdays": intercept_bounds,
            "filter": filter_bounds,
        }
        low = [bounds[b][0] for b in blocks]
        high = [bounds[b][1] for b in blocks]
        start = [*costs, *slopes, demand_slope, *[0.0] * (24 + n_omega)]
        start += [0.5 * len(DAYS) ** self.filter_weekdays / n_filter] * n_filter
        self.context_width = 32 + n + len(self.lags) * (9 + n) + len(self.day_lags) * (55 + n)
        self.context_width += (9 + n) * len(last_hours)
        generator = torch.Generator().manual_seed(synthetic_seed)
        true = None
        if data_path is None and frame is None:  # a synthetic market with known θ
            alpha = (5.0 * torch.randn(24, generator=generator)).tolist()
            omega = (2.0 * torch.randn(n_omega, generator=generator)).tolist()
            true = [*costs, *slopes, demand_slope, *alpha, *omega]
            true += [0.6 / len(self.lags)] * len(self.lags) * len(DAYS) ** self.filter_weekdays
        super().__init__(
            n_agents=n,
            action_dim=1,
            action_low=0.0,
            action_high=max_quantity,
            param_names=names,
            param_low=low,
            param_high=high,
            true_params=true,
            context_dim=self.context_width,
            agent_names=technologies,
        )
        self.param_blocks = blocks
        self.learned_params = [nm for nm, b in zip(names, blocks) if b in learn]
        self.register_buffer("start_theta", torch.tensor(start))
        self._level_memo: dict[tuple, tuple[Tensor | None, Tensor, Tensor, Tensor]] = {}
        self.register_buffer("conduct", torch.tensor([float(v) for v in conduct]))
        self.register_buffer("capacity_scale", torch.tensor([float(v) for v in capacity_scale]))
        self.register_buffer("cost_shift", torch.tensor(shift))
        self.register_buffer("slope_capacity", torch.tensor(reference))  # K₀_j (GW; 0: d_j fixed)
        self._scaled_slopes = any(reference)  # a Python bool: no device sync on the hot path
        self.frame: pd.DataFrame | None = None
        self.train_days: list[pd.Timestamp] = []
        if data_path is None and frame is None:
            self._synthetic(synthetic_days, generator)
            return
        source = "the given frame"
        if frame is None:
            path = resolve_data_path(data_path)
            source = str(path)
            frame = load_energy_csv(path)
        if period is not None:
            train_start = str(pd.Timestamp(period[0]) - pd.Timedelta(days=self.history_days))
            train_end = str(period[1])
        if train_start is not None:
            frame = frame[frame["date"] >= pd.Timestamp(train_start)]
        if train_end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(train_end)]
        if window_days is not None and period is None:  # the last window_days played days
            first = frame["date"].max() - pd.Timedelta(days=window_days + self.history_days - 1)
            frame = frame[frame["date"] >= first]
        if frame.empty:
            raise ImitgameError(f"{source}: no rows between {train_start} and {train_end}")
        self.frame = frame
        first_played = None if period is None else pd.Timestamp(period[0])
        inputs, observed = self.inputs(frame)
        contexts, outcomes, days = [], [], []
        for t in range(self.history_days, len(inputs.dates)):
            if first_played is not None and inputs.dates[t] < first_played:
                continue
            x = hour_contexts(inputs, t, self.lags, observed, self.day_lags, self.last_hours)
            y = np.concatenate([inputs.price[t][:, None], inputs.generation[t]], axis=1)
            if np.isfinite(x).all() and np.isfinite(y).all():
                contexts.append(x)
                outcomes.append(y)
                days.append(inputs.dates[t])
        if not contexts:
            raise ImitgameError(f"{source}: no day with {self.history_days} days of history")
        self.train_days = days
        self.register_buffer("_contexts", torch.as_tensor(np.concatenate(contexts)))
        self.register_buffer("_outcomes", torch.as_tensor(np.concatenate(outcomes)))
        age = (pd.DatetimeIndex(days)[-1] - pd.DatetimeIndex(days)).days.to_numpy(dtype=float)
        self.register_buffer("_age_days", torch.as_tensor(np.repeat(age, 24)))

    @property
    def history_days(self) -> int:
        """Days of history before a played day its context reads."""
        return history_days(self.lags, self.day_lags)

    def inputs(self, frame: pd.DataFrame) -> tuple[DailyInputs, DailyInputs]:
        """:func:`daily_inputs` under this market's options: with the counterfactual wind scale
        (the played days' own inputs) and as observed (the lagged markets')."""
        margin, must_run = self.capacity_margin, self.must_run
        scaled = daily_inputs(frame, self.technologies, margin, self.wind_scale, must_run)
        if self.wind_scale == 1.0:
            return scaled, scaled
        return scaled, daily_inputs(frame, self.technologies, margin, 1.0, must_run)

    def forecast_contexts(self, view: pd.DataFrame, day: pd.Timestamp) -> np.ndarray:
        """Contexts ``[rows of day, context_dim]`` of ``day`` from ``view`` (what is known at
        midnight of ``day``: :func:`~envs.electricity.features.history_view`)."""
        first = day - pd.Timedelta(days=self.history_days)
        seen = view[(view["date"] >= first) & (view["date"] <= day)]
        inputs, observed = self.inputs(seen)
        t = inputs.dates.get_loc(day) if day in inputs.dates else -1
        if t < self.history_days:
            raise ImitgameError(f"{day.date()}: fewer than {self.history_days} days of history")
        x = hour_contexts(inputs, t, self.lags, observed, self.day_lags, self.last_hours)
        if not np.isfinite(x).all():
            raise ImitgameError(f"{day.date()}: missing inputs in the days before it")
        return x[view.loc[view["date"] == day, "hour"].to_numpy()]

    def _synthetic(self, days: int, generator: torch.Generator) -> None:
        """Random inputs, and prices and generation from the equilibrium under θ*."""
        n, lags = self.n_tech, self.lags
        shape = (days, 24)

        def uniform(low: float, high: float, size: tuple) -> Tensor:
            return low + (high - low) * torch.rand(size, generator=generator)

        hour = torch.eye(24).expand(days, 24, 24)
        parts = []
        for _ in range(1 + len(lags)):
            weekday = torch.eye(7)[torch.randint(0, 7, (days,), generator=generator)]
            residual = uniform(12.0, 30.0, shape)
            capacity = uniform(3.0, 10.0, (days, n))
            parts.append((weekday, residual, capacity))
        theta = self.true_params
        blocks = [hour]
        for weekday, residual, capacity in parts[:1]:
            blocks += [weekday[:, None].expand(days, 24, 7), residual[..., None]]
            blocks += [capacity[:, None].expand(days, 24, n)]
        for weekday, residual, capacity in parts[1:]:
            lagged = [hour, weekday[:, None].expand(days, 24, 7), residual[..., None]]
            lagged.append(capacity[:, None].expand(days, 24, n))
            pad = torch.zeros(days, 24, self.context_width - 32 - n)
            price = self.base_price(theta, torch.cat([*lagged, pad], -1))
            price = price + uniform(-5.0, 5.0, shape)  # the latent level of that day
            blocks += [*lagged[1:], price[..., None]]
        contexts = torch.cat(blocks, -1).reshape(days * 24, -1).to(torch.get_default_dtype())
        self.register_buffer("_contexts", contexts)
        self.register_buffer("_age_days", torch.zeros(days * 24))

    # --- simulacral data hooks ------------------------------------------------------------------
    def observed_contexts(self) -> Tensor:
        """Contexts ``[M, context_dim]`` of the observed (or synthetic) hours."""
        return self._contexts

    def observed_outcomes(self) -> Tensor | None:
        """Observed ``[M, 1 + n]`` (price, generation by technology in GW), or ``[M, 1]`` with
        ``observe_generation=False``; None for a synthetic market."""
        if self.frame is None:
            return None
        return self._outcomes if self.observe_generation else self._outcomes[:, :1]

    def observation_weights(self) -> Tensor | None:
        """exp(−age/τ) with ``recency_days`` = τ, times exp(−s²/2σ²) with ``season_days`` = σ
        and s the days of the year between an hour and the quarter after the last fitted day
        (its middle, SEASON_AHEAD days on); mean 1; None: uniform."""
        if self.frame is None or (self.recency_days is None and self.season_days is None):
            return None
        weights = torch.ones_like(self._age_days)
        if self.recency_days is not None:
            weights = weights * torch.exp(-self._age_days / self.recency_days)
        if self.season_days is not None:
            ahead = (self._age_days + SEASON_AHEAD) % YEAR_DAYS
            apart = torch.minimum(ahead, YEAR_DAYS - ahead)
            weights = weights * torch.exp(-0.5 * (apart / self.season_days) ** 2)
        return weights / weights.mean()

    def initial_theta(self) -> Tensor:
        """The configured costs, slopes and b; intercepts 0; the filter weights share 0.5."""
        return self.start_theta

    def learned_start(self) -> list[float]:
        """:meth:`initial_theta`'s learned entries (``algo.theta_init`` for a fit: the default
        start of a learned entry is the centre of Θ, far from a market's costs)."""
        return [float(self.start_theta[self.param_names.index(n)]) for n in self.learned_params]

    def observation_labels(self) -> dict[str, list]:
        """``hour`` of each observed row and, from data, its ``date``."""
        hours = self._contexts[:, :24].argmax(-1).tolist()
        if self.frame is None:
            return {"hour": hours}
        dates = [d.date().isoformat() for d in self.train_days for _ in range(24)]
        return {"date": dates, "hour": hours}

    # --- the game ---------------------------------------------------------------------------------
    def _omega_names(self) -> list[str]:
        """ω's names: ``omega_mon`` .. (one per weekday) or ``omega_mon[0]`` .. (per block)."""
        if self.weekday_blocks == 1:
            return [f"omega_{d}" for d in WEEKDAYS]
        return [f"omega_{d}[{i}]" for d in WEEKDAYS for i in range(self.weekday_blocks)]

    def _split(self, theta: Tensor) -> dict[str, Tensor]:
        n, lags, days = self.n_tech, len(self.lags), len(self.day_lags)
        width = len(DAYS) if self.filter_weekdays else 1  # filter weights per entry
        lags, days = lags * width, days * width
        filters = 2 * n + 25 + 6 * self.weekday_blocks  # where β starts
        last = filters + lags + days
        return {
            "c": theta[..., :n],
            "d": theta[..., n : 2 * n],
            "b": theta[..., 2 * n],
            "alpha": theta[..., 2 * n + 1 : 2 * n + 25],
            "omega": theta[..., 2 * n + 25 : filters].unflatten(-1, (6, self.weekday_blocks)),
            "beta": theta[..., filters : filters + lags],
            "gamma": theta[..., filters + lags : last],
            "delta": theta[..., last : last + len(self.last_hours) * width],
        }

    def _market(
        self, p: dict[str, Tensor], context: Tensor, offset: int, played: bool
    ) -> dict[str, Tensor]:
        """Intercept ``base`` = α_h + ω_wd + b R ``[...]``, capacities K ``[..., n]`` and costs
        c ``[..., n]`` (``weekday_effect=cost``: base = α_h + b R and costs c_j + ω_wd) of the
        market whose weekday block starts at column ``offset`` (24: day D's own); the
        counterfactual ``capacity_scale`` and ``cost_shift`` change the ``played`` market only (a
        lagged one is history)."""
        n = self.n_tech
        hour = context[..., :24]
        weekday = context[..., offset : offset + 6]  # mon..sat
        residual = context[..., offset + 7]
        capacity = context[..., offset + 8 : offset + 8 + n]
        cost = p["c"]
        if played:
            capacity = capacity * self.capacity_scale
            cost = cost + self.cost_shift
        # ω of the market's weekday and hour block [..., 6] (B = 1: one markup per weekday)
        block = hour.unflatten(-1, (self.weekday_blocks, -1)).sum(-1)
        omega = (p["omega"] * block[..., None, :]).sum(-1)
        shift = (weekday * omega).sum(-1)
        base = (hour * p["alpha"]).sum(-1) + p["b"] * residual
        if self.weekday_effect == "demand":
            base = base + shift
        else:  # a weekday markup on every technology's marginal cost
            cost = cost + shift[..., None]
        return {"base": base, "capacity": capacity, "c": cost}

    def _cost_slope(self, p: dict[str, Tensor], capacity: Tensor) -> Tensor:
        """The marginal-cost slope of the day ``[..., n]``: d_j, or with ``slope_capacity`` K₀
        d_j K₀ / K_j (a fleet whose costs span [c_j, c_j + d_j K₀] whatever share of it is
        available: more capacity, a flatter supply)."""
        if not self._scaled_slopes:
            return p["d"]
        spread = self.slope_capacity / capacity.clamp(min=MIN_CAPACITY)
        return p["d"] * torch.where(self.slope_capacity > 0, spread, torch.ones_like(spread))

    def _supply_slope(self, p: dict[str, Tensor]) -> Tensor:
        """s_j = ν_j b + d_j ``[..., n]``."""
        return self.conduct * p["b"][..., None] + p["d"]

    def base_price(
        self, theta: Tensor, context: Tensor, offset: int = 24, played: bool = True
    ) -> Tensor:
        """y ``[...]``: the clearing price of the market at ``offset`` without the level κ."""
        p = self._split(theta)
        market = self._market(p, context, offset, played)
        slope = self._supply_slope({**p, "d": self._cost_slope(p, market["capacity"])})
        return clear(market["base"], p["b"], market["c"], slope, market["capacity"], self.scarcity)

    def level(self, theta: Tensor, context: Tensor) -> Tensor:
        """κ = Σ_k β_k r_{D−k,h} + Σ_k γ_k mean_h' r_{D−k,h'} + Σ_k δ_k r_{D−1,k} ``[...]``,
        with r_{t,h} = P_{t,h} − y(x_{t,h}): the filtered latent cost level (``lags``,
        ``day_lags``; δ_k with ``last_hour``: hour k of D − 1, 23:00 the freshest pricing error
        known at midnight)."""
        p = self._split(theta)
        kappa = torch.zeros(context.shape[:-1], dtype=context.dtype, device=context.device)
        width = 9 + self.n_tech
        for i in range(len(self.lags)):
            offset = 32 + self.n_tech + i * width
            block = context[..., offset : offset + width]
            weight = self._filter_weight(p["beta"], i, context)
            kappa = kappa + weight * self._residual(theta, context[..., :24], block)
        start = 32 + self.n_tech + len(self.lags) * width
        hours = torch.eye(24, dtype=context.dtype, device=context.device)
        for i in range(len(self.day_lags)):  # the mean residual over the 24 hours of day − k
            offset = start + i * (55 + self.n_tech)
            block = context[..., offset : offset + 55 + self.n_tech]
            mean = self._day_mean_residual(theta, block)
            kappa = kappa + self._filter_weight(p["gamma"], i, context) * mean
        start = start + len(self.day_lags) * (55 + self.n_tech)  # the last_hours blocks
        for i, k in enumerate(self.last_hours):  # hour k of D − 1
            offset = start + i * width
            hour = hours[k].expand(*context.shape[:-1], 24)
            block = context[..., offset : offset + width]
            weight = self._filter_weight(p["delta"], i, context)
            kappa = kappa + weight * self._residual(theta, hour, block)
        return kappa

    def _day_mean_residual(self, theta: Tensor, block: Tensor) -> Tensor:
        """mean_h r_{t,h} ``[...]`` over the 24 hours of a lagged day t, from a ``day_lags``
        context block ``[..., 55 + n]`` (its weekday, K, 24 residual demands and 24 prices). The
        24 hours of a played day share the block: with one θ, each run of equal blocks (a day's
        hours are consecutive rows) is cleared once (24 markets) and gathered back, not 24 times."""
        n = self.n_tech
        shared = theta.shape[:-1].numel() == 1
        rows = block
        if shared:
            flat = block.reshape(-1, block.shape[-1])
            rows, inverse = torch.unique_consecutive(flat, dim=0, return_inverse=True)
            theta = theta.reshape(-1)
        lead = rows.shape[:-1]
        hours = torch.eye(24, dtype=block.dtype, device=block.device).expand(*lead, 24, 24)
        lagged = torch.cat(
            [
                hours,
                rows[..., None, :7].expand(*lead, 24, 7),
                rows[..., 7 + n : 31 + n, None],
                rows[..., None, 7 : 7 + n].expand(*lead, 24, n),
            ],
            -1,
        )
        base = self.base_price(theta[..., None, :], lagged, offset=24, played=False)
        mean = (rows[..., 31 + n : 55 + n] - base).mean(-1)
        return mean[inverse].reshape(block.shape[:-1]) if shared else mean

    def _filter_weight(self, weights: Tensor, i: int, context: Tensor) -> Tensor:
        """The i-th filter weight of a block ``[...]``; with ``filter_weekdays``, the one of D's
        weekday (the context's weekday indicator, mon..sun)."""
        if not self.filter_weekdays:
            return weights[..., i]
        per_day = weights.unflatten(-1, (-1, len(DAYS)))[..., i, :]
        return (per_day * context[..., 24:31]).sum(-1)

    def _residual(self, theta: Tensor, hour: Tensor, block: Tensor) -> Tensor:
        """r = P − y(x) ``[...]`` of a lagged market: ``hour [..., 24]`` its hour indicator,
        ``block [..., 9 + n]`` its weekday, R, K and observed price (a context lag block)."""
        lagged = torch.cat([hour, block[..., :-1]], -1)
        return block[..., -1] - self.base_price(theta, lagged, offset=24, played=False)

    def _memo_level(self, theta: Tensor, context: Tensor) -> Tensor:
        """:meth:`level`, computed once per θ and contexts (the same storage, unmodified): one
        step of a fit asks for κ of the same hours several times (the equilibrium, its price,
        the regret's payoffs and best responses), and κ clears every lagged market. A θ that
        carries a gradient is matched by identity (the same tensor, or a view of it, as
        ``Stabilizer.theta()`` hands out within a step: its identity says where the gradient
        flows) and by value; one without, by value. A κ that carries a graph is dropped as soon
        as a backward pass runs through it (its graph is then freed). Under a ``torch.func``
        transform (vmap, grad: the identifiability check) the tensors have no storage to key on,
        and κ is computed afresh."""
        transforms_active = getattr(torch._C, "_are_functorch_transforms_active", None)
        if transforms_active is not None and transforms_active():
            return self.level(theta, context)
        source = theta._base if theta._base is not None else theta
        tracked = theta.requires_grad
        key = (
            context.data_ptr(), tuple(context.shape), context.stride(), context._version,
            tuple(theta.shape), theta.stride(), theta.dtype, theta.device, tracked,
            torch.is_grad_enabled(), id(source) if tracked else None,
            source._version if tracked else None, theta.storage_offset() if tracked else None,
        )  # fmt: skip
        hit = self._level_memo.get(key)
        # values compared too: a write through ``.data`` (gradcheck's) leaves the version as is
        same = hit is not None and hit[0] is (source if tracked else None)
        if same and torch.equal(hit[1], theta):
            return hit[3]
        kappa = self.level(theta, context)
        # the context and θ's source are held, so that neither storage nor id can be reused
        # while the key lives
        entry = (source if tracked else None, theta.detach().clone(), context, kappa)
        if kappa.requires_grad:

            def forget(grad: Tensor) -> None:
                if self._level_memo.get(key) is entry:
                    del self._level_memo[key]

            kappa.register_hook(forget)
        if len(self._level_memo) >= 8:
            self._level_memo.clear()
        self._level_memo[key] = entry
        return kappa

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, "_level_memo": {}}  # a copy starts without the graphs of this one

    def _state(self, theta: Tensor, context: Tensor) -> dict[str, Tensor]:
        """The per-hour quantities, computed once per distinct context (the regret estimator
        broadcasts contexts over its deviation rows) and expanded back."""
        batch = torch.broadcast_shapes(theta.shape[:-1], context.shape[:-1])
        context = _unexpanded(context)
        p = self._split(theta)
        market = self._market(p, context, 24, played=True)
        kappa = self._memo_level(theta, context)
        full = market["capacity"].shape[:-1]
        n_batch = torch.broadcast_shapes(batch, full)
        state = {
            **p,
            "base": market["base"].expand(n_batch),
            "capacity": market["capacity"].expand(*n_batch, self.n_tech),
            "kappa": kappa.expand(n_batch),
            "c": market["c"].expand(*n_batch, self.n_tech),
        }
        if self._scaled_slopes:  # else d_j as θ holds it (a fixed slope: the same rounding)
            slope = self._cost_slope(p, market["capacity"])
            state["d"] = slope.expand(*n_batch, self.n_tech)
        return state

    def price(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        """P = α_h + ω_wd + b (R − Q) ``[...]``."""
        s = self._state(theta, context)
        return s["base"] - s["b"] * actions.sum((-2, -1))

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        context = self._context(context)
        s = self._state(theta, context)
        q = actions[..., 0]
        price = s["base"] - s["b"] * q.sum(-1)
        over = (q - s["capacity"]).clamp(min=0)
        cost = (s["c"] + s["kappa"][..., None]) * q + 0.5 * s["d"] * q**2
        rebate = 0.5 * (1 - self.conduct) * s["b"][..., None] * q**2
        return price[..., None] * q - cost + rebate - 0.5 * self.scarcity * over**2

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """q_j(y*) ``[..., n, 1]`` at the clearing y* of :func:`clear`."""
        context = self._context(context)
        s = self._state(theta, context)
        slope = self._supply_slope(s)
        y = clear(s["base"] - s["kappa"], s["b"], s["c"], slope, s["capacity"], self.scarcity)
        q = supply(y[..., None], s["c"], slope, s["capacity"], self.scarcity)
        return self.project_actions(q.unsqueeze(-1))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """argmax_q of u_j against the others: (base − b Q₋ⱼ − c_j)/((1 + ν_j) b + d_j), over
        K_j (num + M K_j)/(den + M); clipped to [0, max_quantity]."""
        context = self._context(context)
        s = self._state(theta, context)
        q = actions[..., 0]
        others = q.sum(-1, keepdim=True) - q
        b = s["b"][..., None]
        num = s["base"][..., None] - b * others - s["c"] - s["kappa"][..., None]
        den = (1 + self.conduct) * b + s["d"]
        inner = num / den
        above = (num + self.scarcity * s["capacity"]) / (den + self.scarcity)
        br = torch.where(inner <= s["capacity"], inner.clamp(min=0), above)
        return self.project_actions(br.unsqueeze(-1))

    def profile_from_observations(
        self, observations: Tensor, theta: Tensor, context: Tensor
    ) -> Tensor:
        """The observed generation ``[..., n, 1]`` where observed, else the equilibrium."""
        if observations.shape[-1] == 1 + self.n_tech:
            return self.project_actions(observations[..., 1:, None])
        return self.equilibrium(theta, context)

    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        """The price, and with ``observe_generation`` each technology's output:
        ``[..., 1 + n]`` (else ``[..., 1]``)."""
        price = self.price(actions, theta, context)[..., None]
        if not self.observe_generation:
            return price
        q = actions[..., 0]
        return torch.cat([price.expand(*q.shape[:-1], 1), q], -1)

    def _context(self, context: Tensor | None) -> Tensor:
        if context is None:
            raise ImitgameError("the merit-order market needs a context (hour, inputs, lags)")
        return context


def history_days(lags: Sequence[int], day_lags: Sequence[int] = ()) -> int:
    """Days of history before a played day its context reads: the longest lag, then the
    :data:`CAPACITY_DAYS` before that day that give its capacities, and one more."""
    return max([*lags, *day_lags]) + CAPACITY_DAYS + 1


def supply(y: Tensor, c: Tensor, s: Tensor, capacity: Tensor, scarcity: float) -> Tensor:
    """q_j(y) ``[..., n]``: 0 below c_j, (y − c_j)/s_j up to K_j, then slope 1/(s_j + M)."""
    inner = ((y - c) / s).clamp(min=0)
    above = capacity + (y - c - s * capacity) / (s + scarcity)
    return torch.where(inner <= capacity, inner, above)


def clear(
    base: Tensor, b: Tensor, c: Tensor, s: Tensor, capacity: Tensor, scarcity: float
) -> Tensor:
    """The y ``[...]`` solving y = base − b Σ_j q_j(y) (:func:`supply`): h(y) = y − base +
    b Σ q_j(y) is increasing and piecewise linear with kinks at c_j and c_j + s_j K_j; the root
    is found by evaluating h at the sorted kinks and solving the linear piece that holds it,
    exactly (differentiable in every input within the piece)."""
    c, s, capacity = torch.broadcast_tensors(c, s, capacity)
    kinks = torch.cat([c, c + s * capacity], -1)
    batch = torch.broadcast_shapes(base.shape, kinks.shape[:-1])
    kinks = kinks.expand(*batch, kinks.shape[-1]).sort(-1).values
    b_ = b[..., None]
    q = supply(kinks[..., None], c[..., None, :], s[..., None, :], capacity[..., None, :], scarcity)
    h = kinks - base[..., None] + b_ * q.sum(-1)
    below = (h < 0).sum(-1, keepdim=True)  # kinks left of the root
    m = kinks.shape[-1]
    left = kinks.gather(-1, (below - 1).clamp(min=0))
    right = kinks.gather(-1, below.clamp(max=m - 1))
    middle = torch.where(below == m, left + 1.0, 0.5 * (left + right))
    probe = torch.where(below == 0, right - 1.0, middle).squeeze(-1).detach()[..., None]
    inner = (probe > c) & (probe < c + s * capacity)
    over = probe >= c + s * capacity
    slope = torch.where(inner, 1 / s, torch.where(over, 1 / (s + scarcity), torch.zeros_like(s)))
    at = torch.where(
        inner, -c / s, torch.where(over, capacity - (c + s * capacity) / (s + scarcity), 0 * s)
    )
    return (base - b * at.sum(-1)) / (1 + b * slope.sum(-1))
