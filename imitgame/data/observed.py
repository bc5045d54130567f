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
from imitgame.game.base import StaticGame


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
        if self.theta_known.shape != (self.n_instances, game.param_dim):
            raise ImitgameError(
                f"known parameters have shape {list(self.theta_known.shape)}, expected "
                f"[{self.n_instances}, {game.param_dim}]"
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
) -> ObservedPlay:
    """Equilibrium play under ``theta [K, p]`` in each context ``[M, context_dim]``.

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
    """Load observed play from ``.npz`` or ``.csv``.

    * ``.npz``: ``actions`` ``[K, B, n, d]`` (or ``[B, n, d]``, ``[n, d]``); optional
      ``context`` ``[K, B, c]``, ``theta_true`` and ``theta_known`` ``[K, p]``.
    * ``.csv``: one row per observation; an optional ``instance`` column (0..K-1); one column
      per agent named as the game's agents (``<agent>_<j>`` when ``action_dim > 1``); context
      columns ``context_<j>``. The instances must have equal numbers of rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ImitgameError(f"observed data file not found: {path}")
    known = None if game.true_params is None else game.true_params.detach().cpu()
    if path.suffix == ".npz":
        arrays = _read_npz(path)
        actions = torch.as_tensor(arrays["actions"], dtype=torch.float64)
        while actions.dim() < 4:
            actions = actions.unsqueeze(0)
        context = arrays.get("context")
        context_t = None
        if context is not None:
            context_t = torch.as_tensor(context, dtype=torch.float64)
            while context_t.dim() < 3:
                context_t = context_t.unsqueeze(0)
        theta_true = arrays.get("theta_true")
        theta_true_t = None if theta_true is None else torch.as_tensor(theta_true).double()
        if theta_true_t is not None:
            theta_true_t = theta_true_t.reshape(-1, game.param_dim)
        theta_known = arrays.get("theta_known")
        known_t = None if theta_known is None else torch.as_tensor(theta_known).double()
    elif path.suffix == ".csv":
        actions, context_t = _read_csv(path, game)
        theta_true_t, known_t = None, None
    else:
        raise ImitgameError(f"unsupported data file type {path.suffix!r}: use .npz or .csv")
    k = actions.shape[0]
    if known_t is None:
        if known is None:
            raise ImitgameError(
                f"{path.name} gives no theta_known and the game has no configured parameters"
            )
        known_t = known.double().expand(k, game.param_dim).clone()
    known_t = known_t.reshape(-1, game.param_dim).expand(k, game.param_dim).clone()
    observed = ObservedPlay(actions, context_t, theta_true_t, known_t)
    return observed.to(game.device, game.dtype).validate(game)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as err:  # numpy raises several types for a corrupt file
        raise ImitgameError(f"cannot read {path}: {err}") from None
    if "actions" not in arrays:
        raise ImitgameError(f"{path.name} has no 'actions' array (found: {sorted(arrays)})")
    return arrays


def _read_csv(path: Path, game: StaticGame) -> tuple[Tensor, Tensor | None]:
    try:
        frame = pd.read_csv(path)
    except Exception as err:
        raise ImitgameError(f"cannot read {path}: {err}") from None
    d = game.action_dim
    names = [name if d == 1 else f"{name}_{j}" for name in game.possible_agents for j in range(d)]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ImitgameError(f"{path.name} is missing action column(s) {missing}")
    context_cols = [f"context_{j}" for j in range(game.context_dim)]
    missing_ctx = [c for c in context_cols if c not in frame.columns]
    if missing_ctx:
        raise ImitgameError(f"{path.name} is missing context column(s) {missing_ctx}")
    numeric = frame[names + context_cols].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame[names + context_cols].notna()
    if bool(bad.to_numpy().any()):
        row, col = np.argwhere(bad.to_numpy())[0]
        raise ImitgameError(
            f"{path.name}: unparsable value {frame[names + context_cols].iat[row, col]!r} "
            f"in column {(names + context_cols)[col]!r}, row {row + 2}"
        )
    instance = frame["instance"].to_numpy() if "instance" in frame.columns else np.zeros(len(frame))
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
