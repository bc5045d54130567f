"""Environment steps per second: batched rollouts vs one PettingZoo step at a time.

    python benchmarks/sampler.py [--env fish_war|dynamic_cournot|entry_game] [--device cpu|cuda]

One env step = one joint transition of one environment. The batched sampler plays B episodes of
the game's equilibrium policy as one tensor program
(imitgame.solver.rollout.sample_trajectories); the reference steps a single environment through
its PettingZoo ``ParallelEnv`` dict interface with the same policy. Prints steps/s side by side
and their ratio for B = 1, 64, 4096, 65536.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs.dynamic_cournot import DynamicCournot
from envs.entry_game import EntryGame
from envs.fish_war import FishWar
from imitgame.solver.rollout import sample_trajectories

GAMES = {"fish_war": FishWar, "dynamic_cournot": DynamicCournot, "entry_game": EntryGame}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched_steps_per_second(game, policy, batch: int, min_seconds: float) -> float:
    theta = game.true_params[None]
    gen = torch.Generator(device=game.device).manual_seed(0)
    with torch.no_grad():
        sample_trajectories(game, theta, policy, (1, batch), generator=gen)  # warm-up
        _sync(game.device)
        start, episodes = time.perf_counter(), 0
        while True:
            sample_trajectories(game, theta, policy, (1, batch), generator=gen)
            episodes += batch
            _sync(game.device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return episodes * game.horizon / elapsed


def dict_steps_per_second(game, policy, min_seconds: float) -> float:
    """One environment, one step at a time, through reset/step with dicts of NumPy arrays."""
    env = game
    names = env.possible_agents
    start, steps, seed = time.perf_counter(), 0, 0
    while time.perf_counter() - start < min_seconds:
        obs, _ = env.reset(seed=seed)
        seed += 1
        for t in range(env.horizon):
            joint = np.stack([obs[name] for name in names])
            obs_t = torch.as_tensor(joint, dtype=game.dtype, device=game.device)[None, None]
            with torch.no_grad():
                action = policy.act(obs_t, t).actions[0, 0].cpu().numpy()
            if game.n_discrete_actions is not None:
                acts = {name: int(action[i, 0]) for i, name in enumerate(names)}
            else:
                acts = {name: action[i].astype(np.float32) for i, name in enumerate(names)}
            obs, *_ = env.step(acts)
            steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=sorted(GAMES), default="fish_war")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--batches", default="1,64,4096,65536")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per entry")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda requested but CUDA is not available")
    dtype = getattr(torch, args.dtype)
    torch.set_default_dtype(dtype)
    game = GAMES[args.env]().to(device=device, dtype=dtype)
    policy = game.equilibrium_policy(game.true_params[None]).to(device=device)
    reference = dict_steps_per_second(game, policy, args.seconds)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"env={args.env} device={label} dtype={args.dtype} horizon={game.horizon} "
        f"threads={torch.get_num_threads()}"
    )
    print(f"PettingZoo dict interface, one env:  {reference:12.0f} env steps/s")
    print(f"{'batch':>8} {'batched steps/s':>16} {'dict steps/s':>14} {'ratio':>10}")
    for batch in [int(b) for b in args.batches.split(",")]:
        rate = batched_steps_per_second(game, policy, batch, args.seconds)
        print(f"{batch:>8} {rate:>16.0f} {reference:>14.0f} {rate / reference:>9.1f}x")


if __name__ == "__main__":
    main()
