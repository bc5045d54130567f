"""Observed behaviour as a dataset of trajectories: loading, saving, and behaviour cloning.

When only sampled play is observed (no queryable policy), a model of the observed joint policy is
fitted first and plays the non-deviating players in the regret estimator:

* continuous actions: a :class:`~imitgame.game.policies.DeterministicPolicy` by least squares,
  min Σ ‖(π(o) − a) / (high − low)‖²;
* discrete actions: a :class:`~imitgame.game.policies.CategoricalPolicy` by maximum likelihood,
  min −Σ log π(a|o).

The fit (:func:`fit_behavior_policy`) has its own network size, holds out a share of the
observations, and stops by itself: once the held-out error is below a tolerance, or when it stops
improving (after two tenfold learning-rate drops), or at a step cap; :class:`BehaviorFit` reports
the training and held-out errors and the steps taken.

File format (``.npz``): ``observations [..., n, obs_dim]`` and ``actions [..., n, action_dim]``
with the same leading shape (e.g. ``[T, K, episodes]``); optional ``theta_true`` ``[p]`` or
``[K, p]`` (scoring only, never used while solving).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
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


@dataclass
class BehaviorFit:
    """How well the cloned policy fits: ``train_loss`` and ``holdout_loss`` (None without a
    held-out split) are mean squared errors normalised by the action box, mean over
    (observation, agent, action entry) of ((π̂(o) − a) / (high − low))², or for discrete actions
    the negative log-likelihood per action (nats); ``steps`` taken and ``stopped`` early (the
    held-out error stopped improving) or at the ``max_steps`` cap."""

    train_loss: float
    holdout_loss: float | None
    steps: int
    stopped: bool

    def extras(self) -> dict[str, float | int | bool | None]:
        """The ``results.json`` entries of the fit."""
        return {
            "behavior_cloning_loss": self.train_loss,
            "behavior_cloning_holdout_loss": self.holdout_loss,
            "behavior_cloning_steps": self.steps,
            "behavior_cloning_stopped_early": self.stopped,
        }


def _split(n: int, holdout: float, seed: int) -> tuple[Tensor, Tensor | None]:
    """Row indices ``[N_train]`` and ``[N_holdout]`` (None when ``holdout`` is 0 or N < 10)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    m = int(round(holdout * n))
    if m < 1 or n < 10:
        return order, None
    return order[m:], order[:m]


def fit_behavior_policy(
    game: MarkovGame,
    data: TrajectoryData,
    n_instances: int,
    *,
    hidden: Sequence[int] = (32, 32),
    max_steps: int = 20000,
    lr: float = 0.01,
    check_every: int = 100,
    patience: int = 5,
    holdout: float = 0.1,
    tolerance: float = 0.0,
    seed: int = 0,
    kind: str = "deterministic",
) -> tuple[FrozenStrategy, BehaviorFit]:
    """Fit π̂ ≈ π† to ``data`` for K instances (the same data each) by full-batch Adam.

    A seeded ``holdout`` fraction of the N observations is held out. Every ``check_every`` steps
    the held-out error is measured. The fit stops once it is at most ``tolerance``; after
    ``patience`` checks without a relative improvement of 1e-3 the learning rate drops tenfold
    (twice), and after a third such plateau the fit stops; the parameters with the best held-out
    error are kept. ``max_steps`` caps the steps. Without a held-out split (fewer than 10
    observations) the training error is monitored. Returns the frozen policy and its
    :class:`BehaviorFit`.

    ``kind`` (continuous actions): ``deterministic`` fits the actions by least squares;
    ``gaussian`` fits a :class:`~imitgame.game.policies.GaussianPolicy` (mean network and std)
    by maximum likelihood, so the clone reproduces the data's action distribution (its losses
    are negative log-likelihoods per action, which can be negative: ``tolerance`` is not used).
    """
    device, dtype = game.device, game.dtype
    obs_all = data.observations.to(device=device, dtype=dtype)
    act_all = data.actions.to(device=device, dtype=dtype)
    train_rows, test_rows = _split(obs_all.shape[0], holdout, seed)
    if kind not in ("deterministic", "gaussian"):
        raise ImitgameError(f"behaviour cloning kind {kind!r}: deterministic or gaussian")
    gaussian = kind == "gaussian" and game.n_discrete_actions is None
    policy = make_policy(game, n_instances, "gaussian" if gaussian else "deterministic", hidden)
    policy = policy.to(device=device, dtype=dtype)
    width = game.action_high - game.action_low

    def batch(rows: Tensor) -> tuple[Tensor, Tensor]:
        rows = rows.to(device)
        obs = obs_all[rows][None].expand(n_instances, -1, -1, -1)  # [K, N, n, o]
        return obs, act_all[rows][None].expand(n_instances, -1, -1, -1)

    train = batch(train_rows)
    test = batch(test_rows) if test_rows is not None else None

    def loss_fn(obs: Tensor, actions: Tensor) -> Tensor:
        """Per instance ``[K]``."""
        if game.n_discrete_actions is not None or gaussian:
            return -policy.log_prob(obs, actions).mean((1, 2))
        pred = policy.act(obs, 0).actions
        return (((pred - actions) / width) ** 2).mean((1, 2, 3))

    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    monitor = test if test is not None else train
    best = float("inf")
    best_state = copy.deepcopy(policy.state_dict())
    bad, drops, steps, stopped = 0, 0, 0, False
    while steps < max_steps:
        loss = loss_fn(*train).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        if steps % check_every and steps < max_steps:
            continue
        with torch.no_grad():
            current = float(loss_fn(*monitor).mean())
        # a relative improvement of 1e-3 (losses of either sign: a likelihood's can be negative)
        if current < (best - 1e-3 * abs(best) if best < float("inf") else best):
            best, bad = current, 0
            best_state = copy.deepcopy(policy.state_dict())
            if current <= tolerance and not gaussian:
                stopped = True
                break
            continue
        bad += 1
        if bad < patience:
            continue
        if drops == 2:
            stopped = True
            break
        drops, bad = drops + 1, 0
        for group in optimizer.param_groups:
            group["lr"] *= 0.1
    with torch.no_grad():
        current = float(loss_fn(*monitor).mean())
        if current > best:
            policy.load_state_dict(best_state)
        train_loss = float(loss_fn(*train).mean())
        holdout_loss = None if test is None else float(loss_fn(*test).mean())
    return FrozenStrategy(policy), BehaviorFit(train_loss, holdout_loss, steps, stopped)
