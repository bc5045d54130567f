"""Environment steps per second of the simulator adapters against the simulators' own loops.

    python benchmarks/adapters.py [--batches 4096 65536] [--steps 20] [--pz-copies 64]

One env step = one joint transition of one environment. Side by side in one run:

* **VMAS** (``navigation``, 2 agents, per batch size, on the CPU and on CUDA where available):
  the plain loop ``env.step(actions)`` of a ``vmas.make_env`` environment against the adapter's
  step as the rollout makes it, ``VmasGame.transition`` (write the state, VMAS's
  ``world.step()``, read it back) plus ``VmasGame.reward`` (θ·features). ``world.step()`` alone
  is printed too: the physics both share.
* **PettingZoo** (mpe2 ``simple_spread``, 3 agents, continuous actions): ``--pz-copies``
  environment copies stepped in a plain loop of ``ParallelEnv.step(dict)`` against
  ``PettingZooGame.transition`` + ``reward`` on the same number of copies, and the same plain
  adapter with its copies in 2 worker processes (``workers=2``: one pipe round trip per step).

The overhead column is adapter time / plain time − 1 (the target: at most 20 % at batch 4,096).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
import vmas

from imitgame.adapters.pettingzoo import PettingZooGame
from imitgame.adapters.vmas import VmasGame, _float32_default, _make_env

NAV = dict(
    features=["goal_distance", "agent_proximity", "control_effort"],
    weights=[1.0, 0.5, 0.3],
    scenario_kwargs={"n_agents": 2},
)
SPREAD = dict(
    env_kwargs={"N": 3, "continuous_actions": True, "max_cycles": 1000},
    features="envs.mpe_simple_spread.simple_spread_features",
    feature_names=["coverage", "proximity", "effort"],
    weights=[1.0, 0.5, 0.3],
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Any, steps: int, device: torch.device, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def vmas_rows(batch: int, device: torch.device, steps: int) -> dict[str, float]:
    game = VmasGame("navigation", initial_pool=256, **NAV).to(device=device, dtype=torch.float32)
    theta = game.true_params.view(1, -1)
    gen = torch.Generator(device=device).manual_seed(0)
    noise = game.sample_noise((batch,), gen)
    state0 = game.initial_state(theta, noise)
    actions = 0.5 * torch.rand(batch, game.n_agents, game.action_dim, device=device) - 0.25
    env = game._world(batch)  # the adapter's own cached VMAS environment
    plain = _make_env(
        vmas,
        "navigation",
        num_envs=batch,
        device=device,
        continuous_actions=True,
        seed=0,
        **NAV["scenario_kwargs"],
    )
    with _float32_default():
        plain.reset()
    plain_actions = [actions[:, i].clone() for i in range(game.n_agents)]
    state = {"s": state0}

    def adapter_step() -> None:
        with torch.no_grad():
            s = state["s"]
            game.reward(s, actions, theta)
            state["s"] = game.transition(s, actions, theta, noise)

    def plain_step() -> None:
        with _float32_default():
            plain.step(plain_actions)

    def physics_step() -> None:
        with _float32_default():
            env.world.step()

    t_adapter = _timed(adapter_step, steps, device)
    t_plain = _timed(plain_step, steps, device)
    t_physics = _timed(physics_step, steps, device)
    return {
        "plain": batch / t_plain,
        "adapter": batch / t_adapter,
        "physics": batch / t_physics,
        "overhead": t_adapter / t_plain - 1,
    }


def pettingzoo_rows(copies: int, steps: int) -> dict[str, float]:
    game = PettingZooGame("mpe2.simple_spread_v3.parallel_env", horizon=10**6, **SPREAD)
    game = game.to(dtype=torch.float64)
    theta = game.true_params.view(1, -1)
    gen = torch.Generator().manual_seed(0)
    noise = game.sample_noise((copies,), gen)
    actions = torch.full((copies, game.n_agents, game.action_dim), 0.3, dtype=torch.float64)
    act_np = actions.numpy().astype(np.float32)
    state = {"s": game.initial_state(theta, noise)}

    def adapter_step() -> None:
        s = state["s"]
        game.reward(s, actions, theta)
        state["s"] = game.transition(s, actions, theta, noise)

    from mpe2 import simple_spread_v3

    envs = [simple_spread_v3.parallel_env(**SPREAD["env_kwargs"]) for _ in range(copies)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    names = envs[0].possible_agents

    def plain_step() -> None:
        for i, env in enumerate(envs):
            obs, *_ = env.step({name: act_np[i, j] for j, name in enumerate(names)})

    pooled = PettingZooGame(
        "mpe2.simple_spread_v3.parallel_env", horizon=10**6, workers=2, **SPREAD
    ).to(dtype=torch.float64)
    pooled_state = {"s": pooled.initial_state(theta, noise)}

    def worker_step() -> None:
        s = pooled_state["s"]
        pooled.reward(s, actions, theta)
        pooled_state["s"] = pooled.transition(s, actions, theta, noise)

    cpu = torch.device("cpu")
    t_adapter = _timed(adapter_step, steps, cpu, repeats=2)
    t_plain = _timed(plain_step, steps, cpu, repeats=2)
    t_workers = _timed(worker_step, steps, cpu, repeats=2)
    return {
        "plain": copies / t_plain,
        "adapter": copies / t_adapter,
        "workers": copies / t_workers,
        "overhead": t_adapter / t_plain - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[4096, 65536])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--pz-copies", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"env steps per second (torch {torch.__version__}, {args.threads} CPU thread(s))")
    print(
        f"{'simulator':<28}{'batch':>8}{'plain loop':>14}{'adapter':>14}{'overhead':>10}"
        f"{'physics only':>14}"
    )
    for device in devices:
        for batch in args.batches:
            r = vmas_rows(batch, device, args.steps)
            print(
                f"{'VMAS navigation (' + device.type + ')':<28}{batch:>8}{r['plain']:>14,.0f}"
                f"{r['adapter']:>14,.0f}{r['overhead']:>+10.1%}{r['physics']:>14,.0f}"
            )
    r = pettingzoo_rows(args.pz_copies, max(2, args.steps // 4))
    print(
        f"{'mpe2 simple_spread (cpu)':<28}{args.pz_copies:>8}{r['plain']:>14,.0f}"
        f"{r['adapter']:>14,.0f}{r['overhead']:>+10.1%}{'':>14}"
    )
    print(
        f"{'  adapter, workers=2':<28}{args.pz_copies:>8}{'':>14}{r['workers']:>14,.0f}"
        f"{r['plain'] / r['workers'] - 1:>+10.1%}{'':>14}"
    )


if __name__ == "__main__":
    main()
