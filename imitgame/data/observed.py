"""Observed behaviour: the typed container, synthetic observations, and loading from files.

Layout: K instances (independent inverse problems), each with B observations (markets, noisy
repeats) of a one-shot game: actions ``[K, B, n, d]`` and contexts ``[K, B, context_dim]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from imitgame.errors import ImitgameError, check_finite
from imitgame.game.base import MarkovGame, StaticGame


@dataclass
class ObservedPlay:
    """Observed equilibrium play of a one-shot game.

    ``actions [K, B, n, d]``; ``context [K, B, context_dim]`` or None; ``theta_true [K, p]``
    (synthetic data) or None; ``theta_known [K, p]`` holds values for the entries of θ that are
    not learned (taken from the game's configuration when a file does not give them).
    """

    actions: Tensor
    context: Tensor | None
    theta_true: Tensor | None
    theta_known: Tensor

    @property
    def n_instances(self) -> int:
        return self.actions.shape[0]

    @property
    def n_observations(self) -> int:
        return self.actions.shape[1]

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ObservedPlay:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        return ObservedPlay(
            move(self.actions), move(self.context), move(self.theta_true), move(self.theta_known)
        )

    def validate(self, game: StaticGame) -> ObservedPlay:
        """Check shapes and values against ``game``; raise one-line ImitgameErrors."""
        n, d = game.n_agents, game.action_dim
        if self.actions.dim() != 4 or tuple(self.actions.shape[2:]) != (n, d):
            raise ImitgameError(
                f"observed actions have shape {list(self.actions.shape)}, expected "
                f"[instances, observations, {n}, {d}] for {type(game).__name__}"
            )
        check_finite("observed actions", self.actions)
        low, high = game.action_low, game.action_high
        tol = 1e-6 * (1 + high.abs())
        outside = (self.actions < low - tol) | (self.actions > high + tol)
        if bool(outside.any()):
            raise ImitgameError(
                f"{int(outside.sum())} observed action(s) lie outside the action bounds "
                f"[{low.min().item():g}, {high.max().item():g}]"
            )
        if game.context_dim:
            if self.context is None:
                raise ImitgameError(
                    f"{type(game).__name__} needs a context of {game.context_dim} column(s) "
                    "per observation"
                )
            want = (*self.actions.shape[:2], game.context_dim)
            if tuple(self.context.shape) != want:
                raise ImitgameError(
                    f"observed context has shape {list(self.context.shape)}, expected {list(want)}"
                )
            check_finite("observed context", self.context)
        want_theta = (self.n_instances, game.param_dim)
        if self.theta_known.shape != want_theta:
            raise ImitgameError(
                f"known parameters have shape {list(self.theta_known.shape)}, expected "
                f"{list(want_theta)}"
            )
        if self.theta_true is not None and self.theta_true.shape != want_theta:
            raise ImitgameError(
                f"true parameters have shape {list(self.theta_true.shape)}, expected "
                f"{list(want_theta)}"
            )
        return self


def simulate_observed(
    game: StaticGame,
    theta: Tensor,
    *,
    contexts: Tensor | None = None,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    solver: object | None = None,
    repeats: int = 1,
) -> ObservedPlay:
    """Equilibrium play under ``theta [K, p]`` in each context ``[M, context_dim]`` (each context
    observed ``repeats`` times, B = M·repeats, with independent noise).

    Uses the game's closed-form equilibrium when it has one and ``solver(game, theta, state0)``
    (the forward solver) otherwise. ``noise_std`` adds Gaussian noise relative to the action
    scale (observation error), clipped to the action bounds.
    """
    k = theta.shape[0]
    if contexts is None:
        contexts = game.observed_contexts()
    state0 = None
    m = 1
    if contexts is not None:
        m = contexts.shape[0]
        state0 = contexts.to(theta)[None].expand(k, m, contexts.shape[-1])
    state = state0 if state0 is not None else game.default_context().expand(k, m, game.state_dim)
    if game.has_equilibrium:
        actions = game.equilibrium_in(state, theta[:, None, :])
    elif solver is not None:
        actions = solver(game, theta, state0)
    else:
        raise ImitgameError(f"{type(game).__name__} has no closed-form equilibrium and no solver")
    actions = actions.expand(k, m, game.n_agents, game.action_dim).detach().clone()
    if repeats > 1:
        actions = actions.repeat(1, repeats, 1, 1)
        state0 = None if state0 is None else state0.repeat(1, repeats, 1)
    if noise_std > 0:
        scale = actions.abs().mean().clamp(min=1e-8)
        noise = torch.randn(actions.shape, generator=generator, dtype=actions.dtype)
        actions = game.project_actions(actions + noise_std * scale * noise.to(actions.device))
    return ObservedPlay(
        actions=actions,
        context=state0.clone() if state0 is not None else None,
        theta_true=theta.detach().clone(),
        theta_known=theta.detach().clone(),
    )


def load_observed(path: str | Path, game: StaticGame) -> ObservedPlay:
    """Load observed play from ``.npz`` or ``.csv``; a malformed file raises a one-line error.

    * ``.npz``: ``actions`` ``[K, B, n, d]`` (or ``[B, n, d]``, ``[n, d]``); optional
      ``context`` ``[K, B, c]`` (the same leading shape as ``actions``), ``theta_true`` and
      ``theta_known`` ``[p]`` (one θ for every instance) or ``[K, p]``.
    * ``.csv``: one row per observation; an optional ``instance`` column (0..K-1); one column
      per agent named as the game's agents (``<agent>_<j>`` when ``action_dim > 1``); context
      columns ``context_<j>`` (``j < context_dim``); no other columns. The instances must have
      equal numbers of rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ImitgameError(f"observed data file not found: {path}")
    if path.suffix not in (".npz", ".csv"):
        raise ImitgameError(f"unsupported data file type {path.suffix!r}: use .npz or .csv")
    check_not_empty(path)
    known = None if game.true_params is None else game.true_params.detach().cpu()
    if path.suffix == ".npz":
        actions, context_t, theta_true_t, known_t = _read_npz_play(path, game)
    else:
        actions, context_t = _read_csv(path, game)
        theta_true_t, known_t = None, None
    k, p = actions.shape[0], game.param_dim
    if known_t is None:
        if known is None:
            raise ImitgameError(
                f"{path.name} gives no theta_known and the game has no configured parameters"
            )
        known_t = known.double()
    known_t = known_t.reshape(-1, p).expand(k, p).clone()
    if theta_true_t is not None:
        theta_true_t = theta_true_t.reshape(-1, p).expand(k, p).clone()
    observed = ObservedPlay(actions, context_t, theta_true_t, known_t)
    return observed.to(game.device, game.dtype).validate(game)


def check_not_empty(path: Path) -> None:
    """Raise a one-line ImitgameError when the file at ``path`` has no bytes."""
    if path.stat().st_size == 0:
        raise ImitgameError(f"{path.name} is empty (holds no observations)")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``; an unreadable file raises a one-line
    ImitgameError (numpy raises several types for a corrupt file)."""
    check_not_empty(path)
    try:
        data = np.load(path)
    except Exception as err:
        raise ImitgameError(f"cannot read {path}: {_first_line(err)}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ImitgameError(f"{path.name} is not an .npz archive (write one with numpy.savez)")
    try:
        with data:
            return {key: data[key] for key in data.files}
    except Exception as err:
        raise ImitgameError(f"cannot read {path}: {_first_line(err)}") from None


def float_array(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    """``values`` as float64, or a one-line ImitgameError naming the array ``name``."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImitgameError(
            f"{path.name}: {name} must be numeric (found dtype {values.dtype})"
        ) from None


def read_theta(
    path: Path,
    name: str,
    values: np.ndarray,
    game: MarkovGame,
    n_instances: int | None = None,
    *,
    only_known: bool = False,
) -> Tensor:
    """Validate a θ array read from ``path``; returns it as float64 in its stored shape.

    Accepts ``[p]`` (one θ for every instance) or ``[K, p]`` (``K`` = ``n_instances``, or any
    when None; ``[1, p]`` also broadcasts); the values must be finite and inside the parameter
    bounds (only the entries the game does not learn when ``only_known``).
    """
    theta = float_array(path, name, values)
    p = game.param_dim
    if theta.ndim == 1:
        ok = theta.shape[0] == p
    elif theta.ndim == 2:
        rows = theta.shape[0]
        ok = theta.shape[1] == p and rows >= 1
        ok = ok and (n_instances is None or rows in (1, n_instances))
    else:
        ok = False
    if not ok:
        k = "K" if n_instances is None else str(n_instances)
        raise ImitgameError(
            f"{path.name}: {name} has shape {list(theta.shape)} ({_count(theta.size, 'value')}); "
            f"expected [p] or [K, p] = [{p}] or [{k}, {p}] for {type(game).__name__} "
            f"(params {_listing(game.param_names)})"
        )
    bad = int((~np.isfinite(theta)).sum())
    if bad:
        raise ImitgameError(f"{path.name}: {name} contains {_count(bad, 'NaN/inf value')}")
    table = theta.reshape(-1, p)
    low = game.param_low.detach().cpu().double().numpy()
    high = game.param_high.detach().cpu().double().numpy()
    tol = 1e-6 * (1 + np.maximum(np.abs(low), np.abs(high)))
    outside = (table < low - tol) | (table > high + tol)
    if only_known:
        outside &= np.array([n not in game.learned_params for n in game.param_names])
    if outside.any():
        hits = np.argwhere(outside)
        where = [
            f"{game.param_names[j]}={table[i, j]:g}"
            + (f" (instance {i})" if table.shape[0] > 1 else "")
            + f" not in [{low[j]:g}, {high[j]:g}]"
            for i, j in hits[:3]
        ]
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        raise ImitgameError(
            f"{path.name}: {name} lies outside the parameter bounds: {', '.join(where)}{more}"
        )
    return torch.as_tensor(theta)


def _read_npz_play(
    path: Path, game: StaticGame
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """``actions [K, B, n, d]``, ``context [K, B, c]``, ``theta_true`` and ``theta_known``
    (``[p]`` or ``[K, p]``) from an ``.npz``; shapes are checked (and reported) as stored."""
    arrays = read_npz(path)
    if "actions" not in arrays:
        raise ImitgameError(f"{path.name} has no 'actions' array (found: {sorted(arrays)})")
    raw = float_array(path, "actions", arrays["actions"])
    n, d = game.n_agents, game.action_dim
    if raw.size == 0:
        raise ImitgameError(
            f"{path.name} holds no observations (actions have shape {list(raw.shape)})"
        )
    if not 2 <= raw.ndim <= 4 or raw.shape[-2:] != (n, d):
        raise ImitgameError(
            f"{path.name}: actions have shape {list(raw.shape)}, expected [K, B, n, d], "
            f"[B, n, d] or [n, d] with n = {n}, d = {d} for {type(game).__name__}"
        )
    lead = (1,) * (4 - raw.ndim) + raw.shape[:-2]
    actions = torch.as_tensor(raw).reshape(*lead, n, d)
    context_t = None
    if "context" in arrays:
        c = game.context_dim
        if not c:
            raise ImitgameError(
                f"{path.name} has a 'context' array but {type(game).__name__} takes no context"
            )
        ctx = float_array(path, "context", arrays["context"])
        ctx_lead = (1,) * (3 - ctx.ndim) + ctx.shape[:-1] if 1 <= ctx.ndim <= 3 else None
        if ctx_lead != lead or ctx.shape[-1] != c:
            raise ImitgameError(
                f"{path.name}: context has shape {list(ctx.shape)} but actions have shape "
                f"{list(raw.shape)}; expected {[*raw.shape[:-2], c]} (the actions' leading "
                f"shape, then context_dim = {c})"
            )
        context_t = torch.as_tensor(ctx).reshape(*lead, c)
    k = actions.shape[0]
    theta_true_t, known_t = None, None
    if "theta_true" in arrays:
        theta_true_t = read_theta(path, "theta_true", arrays["theta_true"], game, k)
    if "theta_known" in arrays:
        known_t = read_theta(path, "theta_known", arrays["theta_known"], game, k, only_known=True)
    return actions, context_t, theta_true_t, known_t


def _read_csv(path: Path, game: StaticGame) -> tuple[Tensor, Tensor | None]:
    """``actions [K, B, n, d]`` and ``context [K, B, c]`` (or None) from a ``.csv``."""
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ImitgameError(f"{path.name} is empty (holds no observations)") from None
    except Exception as err:
        raise ImitgameError(f"cannot read {path}: {_first_line(err)}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the surplus fields an index
        raise ImitgameError(
            f"{path.name}: rows have more fields than the header's {len(frame.columns)} column(s)"
        )
    d = game.action_dim
    names = [name if d == 1 else f"{name}_{j}" for name in game.possible_agents for j in range(d)]
    context_cols = [f"context_{j}" for j in range(game.context_dim)]
    expected = names + context_cols
    problems = []
    missing = [c for c in names if c not in frame.columns]
    if missing:
        problems.append(f"is missing action column(s) {missing}")
    missing_ctx = [c for c in context_cols if c not in frame.columns]
    if missing_ctx:
        problems.append(f"is missing context column(s) {missing_ctx}")
    unknown = [c for c in frame.columns if c not in expected and c != "instance"]
    if unknown:
        problems.append(f"has unknown column(s) {unknown}")
    if problems:
        raise ImitgameError(
            f"{path.name} {' and '.join(problems)}; expected columns {_listing(expected)} "
            "and optionally instance"
        )
    if frame.empty:
        raise ImitgameError(f"{path.name} holds no observations (header only)")
    numeric = frame[expected].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame[expected].notna()
    if bool(bad.to_numpy().any()):
        row, col = np.argwhere(bad.to_numpy())[0]
        raise ImitgameError(
            f"{path.name}: unparsable value {frame[expected].iat[row, col]!r} "
            f"in column {expected[col]!r}, row {row + 2}"
        )
    if "instance" in frame.columns:
        blank = int(frame["instance"].isna().sum())
        if blank:
            raise ImitgameError(f"{path.name}: column 'instance' is blank in {blank} row(s)")
        instance = frame["instance"].to_numpy()
    else:
        instance = np.zeros(len(frame))
    ids, counts = np.unique(instance, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise ImitgameError(
            f"{path.name}: instances have unequal numbers of rows {counts.tolist()}"
        )
    order = np.argsort(instance, kind="stable")
    values = numeric.to_numpy(dtype=np.float64)[order]
    k, b = len(ids), int(counts[0])
    actions = torch.as_tensor(values[:, : len(names)]).reshape(k, b, game.n_agents, d)
    context = None
    if context_cols:
        context = torch.as_tensor(values[:, len(names) :]).reshape(k, b, game.context_dim)
    return actions, context


def _first_line(err: Exception) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _count(number: int, noun: str) -> str:
    """``"1 value"``, ``"3 values"``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _listing(names: list[str], limit: int = 10) -> str:
    """``"a, b, c"``; a long list is shortened to its first and last names and its length."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[: limit - 2])}, ..., {names[-1]} ({len(names)} names)"
