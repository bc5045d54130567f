"""Roll out an imitgame game as a TorchRL environment and print the mean return per agent.

    python scripts/torchrl_rollout.py env=fish_war
    python scripts/torchrl_rollout.py env=entry_game --envs 4096 --seed 1
    python scripts/torchrl_rollout.py --run runs/2026-12-02/10-00-00_fish_war   # under a run's θ̂

Builds :class:`imitgame.adapters.torchrl_env.TorchRLGameEnv` (the game of ``env=NAME`` and Hydra
overrides of configs/env/NAME.yaml, under its true θ, or the game and θ̂ of a finished run),
checks it with TorchRL's ``check_env_specs``, and plays one episode in every environment with
TorchRL's random policy (uniform on the action spec) and with the game's closed-form equilibrium
(where the game has one). The equilibrium's rewards are compared with imitgame's own rollout of the
same policy under the same shocks (``max |Δ reward|``, 0 when the env is exact).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from imitgame.errors import ImitgameError
from imitgame.run.runner import build_game
from imitgame.solver.rollout import episode_generator, sample_trajectories

ROOT = Path(__file__).resolve().parents[1]


def discounted_returns(td, discount: float) -> torch.Tensor:
    """Σ_t γ^t r_t per environment and agent, ``[B, n]``, from a rollout ``[B, T]``."""
    rewards = td["next", "agents", "reward"][..., 0]  # [B, T, n]
    powers = discount ** torch.arange(rewards.shape[1], dtype=rewards.dtype)
    return (rewards * powers[None, :, None]).sum(1)


def describe(returns: torch.Tensor, names: list[str]) -> str:
    mean = returns.mean(0)
    sem = returns.std(0) / returns.shape[0] ** 0.5
    return "   ".join(f"{n} {m:10.4f} ± {s:.4f}" for n, m, s in zip(names, mean, sem))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=fish_war")
    parser.add_argument("--run", help="a finished run folder: its game under its θ̂")
    parser.add_argument("--envs", type=int, default=1024, help="environments (batch size)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the env's shocks and torch")
    args = parser.parse_args(argv)
    try:
        from torchrl.envs.utils import check_env_specs

        from imitgame.adapters.torchrl_env import TorchRLGameEnv, equilibrium_actor

        torch.manual_seed(args.seed)
        if args.run:
            env = TorchRLGameEnv.from_run(args.run, batch_size=(args.envs,), seed=args.seed)
            source = f"θ̂ of {args.run}"
        else:
            if not any(o.startswith("env=") for o in args.overrides):
                raise ImitgameError("name a game: env=NAME (e.g. env=fish_war), or --run RUN_DIR")
            with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
                cfg = compose("config", overrides=args.overrides)
            env = TorchRLGameEnv(build_game(cfg.env), batch_size=(args.envs,), seed=args.seed)
            source = "true θ"
        game = env.game
        theta = ", ".join(f"{n}={v:.4g}" for n, v in zip(game.param_names, env.theta.tolist()))
        print(
            f"{type(game).__name__} as a TorchRL env: {game.n_agents} agents, "
            f"batch {list(env.batch_size)}, horizon {game.horizon}, γ = {env.discount:g}, "
            f"{source}: {theta}"
        )
        action = env.full_action_spec["agents", "action"]
        obs = env.full_observation_spec["agents", "observation"]
        print(
            f'  ("agents", "observation") {list(obs.shape)}   ("agents", "action") '
            f"{list(action.shape)} {type(action).__name__}   "
            f'("agents", "reward") {list(env.full_reward_spec["agents", "reward"].shape)}'
        )
        check_env_specs(env, seed=args.seed)
        print("  torchrl.envs.utils.check_env_specs: passed")

        names = list(game.possible_agents)
        print(f"mean discounted return per agent over {args.envs} episodes (± s.e.):")
        env.set_seed(args.seed)
        with torch.no_grad():
            td = env.rollout(game.horizon)  # TorchRL's random policy
        print(f"  random       {describe(discounted_returns(td, env.discount), names)}")
        try:
            actor = equilibrium_actor(env)
        except ImitgameError:
            print("  equilibrium  (the game has no closed-form equilibrium)")
            return 0
        env.set_seed(args.seed)
        torch.manual_seed(args.seed)
        with torch.no_grad():
            td = env.rollout(game.horizon, actor)
            torch.manual_seed(args.seed)
            th = env.theta[None]
            traj = sample_trajectories(  # the same strategy, played by imitgame's rollout
                game,
                th,
                actor.strategy,
                (1, args.envs),
                generator=episode_generator(game, args.seed),
            )
        print(f"  equilibrium  {describe(discounted_returns(td, env.discount), names)}")
        rewards = td["next", "agents", "reward"][..., 0].movedim(1, 0)  # [T, B, n]
        gap = (rewards - traj.rewards[:, 0]).abs().max().item()
        print(f"imitgame's own rollout of the equilibrium, same shocks: max |Δ reward| = {gap:.3g}")
    except (ImitgameError, HydraException, OmegaConfBaseException) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
