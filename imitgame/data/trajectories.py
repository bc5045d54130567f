"""Observed behaviour as a dataset of trajectories: loading, saving, and behaviour cloning.

When only sampled play is observed (no queryable policy), a model of the observed joint policy is
fitted first and plays the non-deviating players in the regret estimator:

* continuous actions: a :class:`~imitgame.game.policies.DeterministicPolicy` by least squares,
  min Σ ‖(π(o) − a) / (high − low)‖²;
* discrete actions: a :class:`~imitgame.game.policies.CategoricalPolicy` by maximum likelihood,
  min −Σ log π(a|o).

File format (``.npz``): ``observations [..., n, obs_dim]`` and ``actions [..., n, action_dim]``
with the same leading shape (e.g. ``[T, K, episodes]``); optional ``theta_true`` ``[p]`` or
``[K, p]`` (scoring only, never used while solving).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from imitgame.data.observed import float_array, read_npz, read_theta
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame
from imitgame.game.policies import FrozenStrategy, make_policy
from imitgame.solver.rollout import Trajectory


@dataclass
class TrajectoryData:
    """Flattened observed play: ``observations [N, n, obs_dim]``, ``actions [N, n, d]``;
    ``theta_true`` ``[p]`` or ``[K, p]`` as stored (scoring only), or None."""

    observations: Tensor
    actions: Tensor
    theta_true: Tensor | None = None


def save_trajectories(path: str | Path, traj: Trajectory, theta_true: Tensor | None = None) -> None:
    """Write a trajectory dataset (observations and actions of every step) as ``.npz``.

    ``theta_true`` ``[p]`` or ``[K, p]`` is stored in that shape, as :func:`load_trajectories`
    reads it.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ImitgameError(f"trajectory files are written as .npz, not {path.suffix!r}")
    arrays = {
        "observations": traj.observations.detach().cpu().numpy(),
        "actions": traj.actions.detach().cpu().numpy(),
    }
    if theta_true is not None:
        if theta_true.dim() not in (1, 2):
            raise ImitgameError(
                f"theta_true has shape {list(theta_true.shape)}, expected [p] or [K, p]"
            )
        arrays["theta_true"] = theta_true.detach().cpu().numpy()
    np.savez(path, **arrays)


def load_trajectories(
    path: str | Path, game: MarkovGame, n_instances: int | None = None
) -> TrajectoryData:
    """Read and validate a trajectory dataset; malformed files raise a one-line ImitgameError.

    ``observations [..., n, obs_dim]`` and ``actions [..., n, d]`` share their leading shape and
    are flattened to ``[N, n, ·]``; ``theta_true`` may be ``[p]`` or ``[K, p]`` (``K`` =
    ``n_instances`` when given, else any) and is returned as stored.
    """
    path = Path(path)
    if not path.is_file():
        raise ImitgameError(f"trajectory file not found: {path}")
    if path.suffix != ".npz":
        raise ImitgameError(f"unsupported trajectory file type {path.suffix!r}: use .npz")
    arrays = read_npz(path)
    missing = [key for key in ("observations", "actions") if key not in arrays]
    if missing:
        raise ImitgameError(f"{path.name} has no {missing} array(s) (found: {sorted(arrays)})")
    n, o, d = game.n_agents, game.obs_dim, game.action_dim
    name = type(game).__name__
    obs = float_array(path, "observations", arrays["observations"])
    act = float_array(path, "actions", arrays["actions"])
    if obs.ndim < 2 or obs.shape[-2:] != (n, o):
        raise ImitgameError(
            f"{path.name}: observations have shape {list(obs.shape)}, expected [..., {n}, {o}] "
            f"([..., n, obs_dim] for {name})"
        )
    lead = list(obs.shape[:-2])
    if act.ndim < 2 or act.shape[-2:] != (n, d) or act.shape[:-2] != obs.shape[:-2]:
        raise ImitgameError(
            f"{path.name}: actions have shape {list(act.shape)}, expected {[*lead, n, d]} "
            f"([..., n, d] for {name}, with the observations' leading shape {lead})"
        )
    if obs.size == 0:
        raise ImitgameError(
            f"{path.name} holds no observations (observations have shape {list(obs.shape)})"
        )
    obs_t = torch.as_tensor(obs).reshape(-1, n, o)
    act_t = torch.as_tensor(act).reshape(-1, n, d)
    for key, tensor in (("observations", obs_t), ("actions", act_t)):
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise ImitgameError(f"{path.name}: {key} contain {bad} NaN/inf value(s)")
    if game.n_discrete_actions is not None:
        m = game.n_discrete_actions
        if bool(((act_t != act_t.round()) | (act_t < 0) | (act_t >= m)).any()):
            raise ImitgameError(f"{path.name}: discrete actions must be integers in [0, {m - 1}]")
    else:
        low, high = game.action_low.cpu().double(), game.action_high.cpu().double()
        tol = 1e-6 * (1 + high.abs())
        outside = int(((act_t < low - tol) | (act_t > high + tol)).sum())
        if outside:
            raise ImitgameError(
                f"{path.name}: {outside} action(s) lie outside the action bounds "
                f"[{low.min().item():g}, {high.max().item():g}]"
            )
    theta_t = None
    if "theta_true" in arrays:
        theta_t = read_theta(path, "theta_true", arrays["theta_true"], game, n_instances)
    return TrajectoryData(obs_t, act_t, theta_t)


def fit_behavior_policy(
    game: MarkovGame,
    data: TrajectoryData,
    n_instances: int,
    *,
    hidden: list[int] | tuple[int, ...] = (32, 32),
    steps: int = 1000,
    lr: float = 0.01,
) -> tuple[FrozenStrategy, float]:
    """Fit π̂ ≈ π† to ``data`` for K instances (the same data each); returns the frozen policy
    and the final training loss (mean squared normalised error, or negative log-likelihood)."""
    device, dtype = game.device, game.dtype
    obs = data.observations.to(device=device, dtype=dtype)[None]  # [1, N, n, o]
    obs = obs.expand(n_instances, *obs.shape[1:])
    actions = data.actions.to(device=device, dtype=dtype)[None].expand(n_instances, -1, -1, -1)
    policy = make_policy(game, n_instances, "deterministic", hidden)
    policy = policy.to(device=device, dtype=dtype)
    width = game.action_high - game.action_low

    def loss_fn() -> Tensor:
        if game.n_discrete_actions is not None:
            return -policy.log_prob(obs, actions).mean()
        pred = policy.act(obs, 0).actions
        return (((pred - actions) / width) ** 2).mean()

    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        final = float(loss_fn())
    return FrozenStrategy(policy), final
