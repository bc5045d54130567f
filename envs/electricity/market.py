"""A day-ahead electricity market: N generators compete in quantities against hourly demand.

Each hour of day D is one play of a one-shot Cournot game whose *context* x is what is known at
midnight of D: the hour, the weekday and features built from the TSO's day-ahead forecasts for D
(load, onshore wind, solar) and from history up to the end of D−1 (lagged prices, yesterday's
forecasts). Generator i offers q_i ≥ 0; the market clears at the inverse demand

    P(Q; x) = a(x) − b·Q,      a(x) = w_{h(x)} · [1, f(x), weekday(x)]

and generator i earns u_i = P(Q) q_i − c_i q_i − d q_i²/2. With r = 1/(b + d) the equilibrium is

    Q* = n r (a − c̄) / (1 + n b r),  q_i* = r (a − c_i − b Q*),  P* = (a + b r Σc_i) / (1 + n b r)

(interior when P* > max c_i; :meth:`ElectricityMarket.equilibrium` also solves the corners where
dear generators are priced out). θ = (w: 24 hours × (1 + m + 6) demand weights on the m features and
the Monday..Saturday indicators (Sunday is the reference) — or 24 hour intercepts and m + 6 shared
slopes with ``per_hour_slopes=False`` — c_0..c_{n−1}, b, d).

Counterfactual inputs (:mod:`imitgame.run.counterfactual`): ``wind_scale`` multiplies the TSO's
day-ahead wind forecast before the features are built (lagged prices stay the observed ones),
``cost_shift`` adds a constant to every generator's marginal cost, and ``period`` picks the days
whose hours the market plays.
Only prices are observed, so from prices alone the equilibrium pins down the map x ↦ P*(x): the
demand weights are identified for known (c, b, d), and a common cost level only without hour
intercepts. The default learns the demand block; the rest are known normalisations.

The forecast for day D is P* under the fitted θ in D's contexts
(:func:`envs.electricity.forecast.forecast_day`; the contexts: :mod:`envs.electricity.features`).
With ``recency_days`` = τ the observation loss weighs an hour of day t by exp(−(T − t)/τ), T the
last fitted day: the market's level drifts (fuel prices, hydro reserves), and recent days say more
about tomorrow's demand weights than last year's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from envs.electricity.data import load_energy_csv, resolve_data_path
from envs.electricity.features import (
    CONTEXT_DIM,
    FEATURES,
    LAGS,
    N_DESIGN,
    WEEKDAYS,
    scale_wind_features,
    scale_wind_forecast,
    synthetic_contexts,
    training_set,
)
from imitgame import StaticGame
from imitgame.errors import ImitgameError

BLOCKS = ("demand", "costs", "slope", "quadratic")


class ElectricityMarket(StaticGame):
    """Cournot generators against context-dependent demand; see the module docstring.

    The observed hours come from ``data_path`` (``spain``: the shipped Spanish file; else a CSV
    path, see :func:`~envs.electricity.data.resolve_data_path`), or from ``frame`` (a frame of
    :func:`~envs.electricity.data.load_energy_csv`, e.g. the history at a forecast origin), cut to
    ``train_start``..``train_end`` (or to ``period``); with neither, a synthetic market with
    known θ.

    Counterfactual inputs: ``wind_scale`` multiplies the day-ahead onshore wind forecast before
    the features are built (a synthetic market: the same map on its drawn wind features, see
    :func:`~envs.electricity.features.scale_wind_features`); ``cost_shift`` (EUR/MWh) is added to
    every generator's marginal cost c_i wherever costs enter (payoffs, closed forms), so θ's
    c_i stay the fitted values; ``period`` = [first, last] local dates whose hours the market
    plays (it replaces ``train_start``/``train_end``; the ``LAGS`` days before ``first`` are read
    for the lagged features, so the period's first day is played too)."""

    #: constructor options with one entry per generator: a counterfactual that removes a
    #: generator cuts its entry (:mod:`imitgame.run.counterfactual`)
    agent_options = ("costs",)

    def __init__(
        self,
        n_firms: int = 3,
        costs: Sequence[float] = (0.0, 1.0, 2.0),
        slope: float = 1.0,
        quadratic: float = 1.0,
        learn: Sequence[str] = ("demand",),
        per_hour_slopes: bool = True,
        data_path: str | None = None,
        train_start: str | None = None,
        train_end: str | None = None,
        recency_days: float | None = None,
        demand_bounds: Sequence[float] = (-1000.0, 1000.0),
        cost_bounds: Sequence[float] = (-100.0, 200.0),
        slope_bounds: Sequence[float] = (0.01, 10.0),
        quadratic_bounds: Sequence[float] = (0.0, 10.0),
        max_quantity: float = 1000.0,
        synthetic_hours: int = 2000,
        synthetic_seed: int = 0,
        frame: pd.DataFrame | None = None,
        wind_scale: float = 1.0,
        cost_shift: float = 0.0,
        period: Sequence[str] | None = None,
    ) -> None:
        if n_firms < 1:
            raise ImitgameError(f"n_firms must be >= 1, got {n_firms}")
        if len(costs) != n_firms:
            raise ImitgameError(f"costs has {len(costs)} entries for n_firms={n_firms}")
        unknown = [b for b in learn if b not in BLOCKS]
        if unknown:
            raise ImitgameError(f"learn: unknown block(s) {unknown}; choose from {list(BLOCKS)}")
        if recency_days is not None and recency_days <= 0:
            raise ImitgameError(f"recency_days must be > 0 or null, got {recency_days}")
        if wind_scale < 0:
            raise ImitgameError(f"wind_scale must be >= 0, got {wind_scale}")
        if period is not None and len(period) != 2:
            raise ImitgameError(f"period must be [first, last] dates, got {list(period)}")
        self.wind_scale = float(wind_scale)
        self.cost_shift = float(cost_shift)
        self.n_firms = int(n_firms)
        self.per_hour_slopes = bool(per_hour_slopes)
        self.recency_days = recency_days
        slopes = (*FEATURES, *WEEKDAYS)
        demand = (
            [f"w[{h}]{j}" for h in range(24) for j in ("1", *slopes)]
            if per_hour_slopes
            else [f"w[{h}]1" for h in range(24)] + [f"w{j}" for j in slopes]
        )
        self.n_demand = len(demand)
        names = [*demand, *(f"c_{i}" for i in range(n_firms)), "b", "d"]
        blocks = ["demand"] * self.n_demand + ["costs"] * n_firms + ["slope"] + ["quadratic"]
        low = [demand_bounds[0]] * self.n_demand + [cost_bounds[0]] * n_firms
        high = [demand_bounds[1]] * self.n_demand + [cost_bounds[1]] * n_firms
        low += [slope_bounds[0], quadratic_bounds[0]]
        high += [slope_bounds[1], quadratic_bounds[1]]

        self.data_path = data_path
        self.frame: pd.DataFrame | None = None
        true = None
        generator = torch.Generator().manual_seed(synthetic_seed)
        if data_path is None and frame is None:
            # synthetic market: random contexts and demand weights, prices from the equilibrium
            w = 5.0 * torch.randn(self.n_demand, generator=generator)
            intercepts = torch.arange(24) * (1 + N_DESIGN) if per_hour_slopes else torch.arange(24)
            w[intercepts] += 125.0 + 10.0 * torch.randn(24, generator=generator)
            true = [*w.tolist(), *costs, slope, quadratic]
        super().__init__(
            n_agents=n_firms,
            action_dim=1,
            action_low=0.0,
            action_high=max_quantity,
            param_names=names,
            param_low=low,
            param_high=high,
            true_params=true,
            context_dim=CONTEXT_DIM,
            agent_names=[f"generator_{i}" for i in range(n_firms)],
        )
        self.param_blocks = blocks
        self.learned_params = [n for n, b in zip(names, blocks) if b in learn]
        self.register_buffer(
            "fixed_theta", torch.tensor([*[0.0] * self.n_demand, *costs, slope, quadratic])
        )
        self.train_days: list[pd.Timestamp] = []
        if data_path is None and frame is None:
            contexts = synthetic_contexts(synthetic_hours, generator)
            self.register_buffer("_contexts", scale_wind_features(contexts, self.wind_scale))
            return
        source = "the given frame"
        if frame is None:
            path = resolve_data_path(data_path)
            source = str(path)
            frame = load_energy_csv(path)
        if period is not None:  # the period's days, and the days its lagged features read
            train_start = str(pd.Timestamp(period[0]) - pd.Timedelta(days=LAGS))
            train_end = str(period[1])
        if train_start is not None:
            frame = frame[frame["date"] >= pd.Timestamp(train_start)]
        if train_end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(train_end)]
        if frame.empty:
            raise ImitgameError(f"{source}: no rows between {train_start} and {train_end}")
        frame = scale_wind_forecast(frame, self.wind_scale)
        self.frame = frame
        contexts, prices, days = training_set(frame)
        self.train_days = days
        self.register_buffer("_contexts", torch.as_tensor(contexts))
        self.register_buffer("_prices", torch.as_tensor(prices))
        # each context row's day, in days before the last fitted day (for recency weights)
        day_index = pd.DatetimeIndex(days)
        age = (day_index[-1] - day_index).days.to_numpy(dtype=float)
        rows = frame[frame["date"].isin(set(days))].groupby("date").size().reindex(day_index)
        self.register_buffer("_age_days", torch.as_tensor(np.repeat(age, rows.to_numpy())))

    # --- simulacral data hooks ---------------------------------------------------------------
    def observed_contexts(self) -> Tensor:
        """Contexts ``[M, context_dim]`` of the observed (or synthetic) hours."""
        return self._contexts

    def observed_outcomes(self) -> Tensor | None:
        """Observed prices ``[M, 1]`` of a data-backed market (None: synthetic)."""
        return self._prices[:, None] if self.frame is not None else None

    def observation_weights(self) -> Tensor | None:
        """Weights ``[M]`` (mean 1) of the observed hours: exp(−age/τ) with ``recency_days`` = τ,
        None (uniform) without it or for a synthetic market."""
        if self.frame is None or self.recency_days is None:
            return None
        weights = torch.exp(-self._age_days / self.recency_days)
        return weights / weights.mean()

    def initial_theta(self) -> Tensor:
        """Known entries: the normalisations (costs, b, d); demand weights start at 0."""
        return self.fixed_theta

    def observation_labels(self) -> dict[str, list]:
        """Labels of the rows of :meth:`observed_contexts` for reports: ``hour`` (local hour of
        the day) and, for a market built from data, ``date`` (ISO local date)."""
        hours = self._contexts[:, :24].argmax(-1).tolist()
        if self.frame is None:
            return {"hour": hours}
        rows = self.frame[self.frame["date"].isin(set(self.train_days))]
        return {"date": [d.date().isoformat() for d in rows["date"]], "hour": hours}

    # --- the game ------------------------------------------------------------------------------
    def _split(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(demand weights, marginal costs c + ``cost_shift``, b, d) from ``theta [..., p]``."""
        n, nd = self.n_firms, self.n_demand
        c = theta[..., nd : nd + n]
        if self.cost_shift:
            c = c + self.cost_shift
        return theta[..., :nd], c, theta[..., nd + n], theta[..., nd + n + 1]

    def intercept(self, theta: Tensor, context: Tensor) -> Tensor:
        """a(x) ``[...]`` from ``theta [..., p]`` and ``context [..., CONTEXT_DIM]``."""
        w = self._split(theta)[0]
        batch = context.shape[:-1]
        context = _unexpanded(context)
        hour = context[..., :24]
        # slopes apply to the features and the Monday..Saturday indicators (Sunday: reference)
        design = torch.cat([context[..., 31:], context[..., 24:30]], -1)
        if self.per_hour_slopes:
            a = _per_hour(w.unflatten(-1, (24, 1 + N_DESIGN)), hour, design)
        else:
            a = (hour * w[..., :24]).sum(-1) + (design * w[..., 24:]).sum(-1)
        return a.expand(torch.broadcast_shapes(a.shape, batch))  # a view: the full batch shape

    def price(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        """Market-clearing price P = a(x) − b Q ``[...]``."""
        b = self._split(theta)[2]
        return self.intercept(theta, context) - b * actions.sum((-2, -1))

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        _, c, _, d = self._split(theta)
        q = actions[..., 0]
        p = self.price(actions, theta, self._context(context))
        return (p.unsqueeze(-1) - c) * q - 0.5 * d.unsqueeze(-1) * q**2

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """The Cournot equilibrium ``[..., n, 1]``, corners included: the k cheapest generators
        produce q_i = r (P − c_i) at P_k = (a + b r Σ_{j≤k} c_(j)) / (1 + k b r), k the largest
        count whose dearest member covers its cost, c_(k) < P_k (an initial segment of the
        sorted costs: once a generator is priced out, so are the dearer ones); the rest offer 0.
        """
        _, c, b, d = self._split(theta)
        a = self.intercept(theta, self._context(context)).unsqueeze(-1)  # [..., 1]
        br = (b / (b + d)).unsqueeze(-1)
        costs = c.sort(-1).values
        count = torch.arange(1, self.n_firms + 1, dtype=a.dtype, device=a.device)
        price_k = (a + br * costs.cumsum(-1)) / (1 + count * br)  # [..., n]: k = 1..n active
        active = (costs < price_k).sum(-1, keepdim=True)
        chosen = price_k.gather(-1, (active - 1).clamp(min=0))
        price = torch.where(active > 0, chosen, a)  # nobody covers its cost: Q = 0, P = a
        q = (price - c).clamp(min=0) / (b + d).unsqueeze(-1)
        return self.project_actions(q.unsqueeze(-1))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        _, c, b, d = self._split(theta)
        a = self.intercept(theta, self._context(context))
        q = actions[..., 0]
        others = q.sum(-1, keepdim=True) - q
        br = (a.unsqueeze(-1) - c - b.unsqueeze(-1) * others) / (2 * b + d).unsqueeze(-1)
        return self.project_actions(br.unsqueeze(-1))

    def profile_from_observations(
        self, observations: Tensor, theta: Tensor, context: Tensor
    ) -> Tensor:
        """Quantities ``[..., n, 1]`` consistent with observed prices ``[..., 1]``: each generator's
        first-order condition at the observed price, q_i = (p − c_i) / (b + d) (a start for π)."""
        _, c, b, d = self._split(theta)
        q = (observations - c) / (b + d).unsqueeze(-1)
        return self.project_actions(q.unsqueeze(-1))

    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        """What is observed of a play: the price ``[..., 1]``."""
        return self.price(actions, theta, context).unsqueeze(-1)

    def _context(self, context: Tensor | None) -> Tensor:
        if context is None:
            raise ImitgameError("the electricity market needs a context (hour, weekday, features)")
        return context


def _unexpanded(context: Tensor) -> Tensor:
    """``context`` with every broadcast (stride-0) leading dimension cut to size 1: the regret
    estimator expands the observed contexts over its n + 1 deviation rows, and a(x) need only be
    computed once per context (:meth:`ElectricityMarket.intercept` expands the result back)."""
    for dim in range(context.dim() - 1):
        if context.stride(dim) == 0 and context.shape[dim] > 1:
            context = context.narrow(dim, 0, 1)
    return context


def _per_hour(w: Tensor, hour: Tensor, feats: Tensor) -> Tensor:
    """Σ_h hour_h (w_h0 + w_h · f): ``w [..., 24, 1 + m]``, ``hour [..., 24]``, ``feats [..., m]``.

    The weights are applied to all 24 hours as one matmul over the observations and the hour
    picked afterwards: θ comes as ``[K, 1, p]`` against contexts ``[..., K, B, s]``, and
    broadcasting w over B would copy it B times."""
    ones = torch.ones_like(feats[..., :1])
    design = torch.cat([ones, feats], -1)
    if w.dim() == 2:
        values = design @ w.transpose(-1, -2)
    elif w.shape[-3] == 1 and design.dim() >= 2:
        values = torch.einsum("...bj,...jh->...bh", design, w.squeeze(-3).transpose(-1, -2))
    else:
        values = torch.einsum("...j,...hj->...h", design, w)
    return (values * hour).sum(-1)
