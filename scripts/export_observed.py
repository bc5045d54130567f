"""Write synthetic observed play of a game to a file that ``data=file`` can load.

    python scripts/export_observed.py --out runs/obs.csv env=cournot env.n_firms=4 data.instances=3
    python scripts/export_observed.py --out runs/traj.npz --episodes 512 env=fish_war

The remaining arguments are Hydra overrides of configs/config.yaml (env, data, algo). One-shot
games: the equilibrium actions under the env's true parameters (.csv, or .npz which also stores
``theta_true``). Markov games: ``--episodes`` sampled trajectories of the equilibrium policy (the
game's closed form, or the Markov forward solver) as a trajectory file (.npz: ``observations``,
``actions``, ``theta_true``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from imitgame.config import DataConfig, MarkovConfig, typed
from imitgame.data.observed import ObservedPlay
from imitgame.data.trajectories import save_trajectories
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.problems.base import synthetic_theta
from imitgame.problems.inverse import observed_play
from imitgame.problems.markov import observed_policy
from imitgame.run.runner import build_game
from imitgame.solver.rollout import episode_generator, sample_trajectories

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output file: .npz or .csv")
    parser.add_argument(
        "--episodes", type=int, default=256, help="Markov games: episodes per instance"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=cournot")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    out = Path(args.out)
    try:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=args.overrides)
        torch.manual_seed(cfg.seed)
        game = build_game(cfg.env)
        data = typed(DataConfig, cfg.data, "data")
        if not isinstance(game, StaticGame):
            write_trajectories(
                out, game, data, typed(MarkovConfig, cfg.algo, "algo"), cfg.seed, args.episodes
            )
            return
        observed = observed_play(game, data, cfg.seed)
    except ImitgameError as err:
        sys.exit(f"error: {err}")
    write_observed(out, game, observed)


def write_trajectories(
    out: Path, game: MarkovGame, data: DataConfig, algo: MarkovConfig, seed: int, episodes: int
) -> None:
    """Sampled episodes ``[T, K, episodes]`` of the equilibrium policy under the synthetic truth."""
    if out.suffix != ".npz":
        raise ImitgameError(f"a Markov game's trajectories are written as .npz, not {out.suffix!r}")
    if episodes < 1:
        raise ImitgameError(f"--episodes must be >= 1, got {episodes}")
    theta = synthetic_theta(game, data, torch.Generator().manual_seed(seed))
    policy, _ = observed_policy(game, theta, algo, seed)
    with torch.no_grad():
        traj = sample_trajectories(
            game, theta, policy, (theta.shape[0], episodes), generator=episode_generator(game, seed)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_trajectories(out, traj, theta_true=theta)
    print(
        f"wrote {theta.shape[0]} instance(s) × {episodes} episode(s) × {game.horizon} step(s) "
        f"to {out}"
    )


def write_observed(out: Path, game: StaticGame, observed: ObservedPlay) -> None:
    """Observed actions (and contexts) of a one-shot game as .npz or .csv."""
    observed = observed.to("cpu", torch.float64)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        arrays = {"actions": observed.actions.numpy(), "theta_true": observed.theta_true.numpy()}
        if observed.context is not None:
            arrays["context"] = observed.context.numpy()
        np.savez(out, **arrays)
    elif out.suffix == ".csv":
        k, b, n, d = observed.actions.shape
        columns = {"instance": np.repeat(np.arange(k), b)}
        flat = observed.actions.reshape(k * b, n, d).numpy()
        for i, name in enumerate(game.possible_agents):
            for j in range(d):
                columns[name if d == 1 else f"{name}_{j}"] = flat[:, i, j]
        if observed.context is not None:
            ctx = observed.context.reshape(k * b, -1).numpy()
            for j in range(ctx.shape[1]):
                columns[f"context_{j}"] = ctx[:, j]
        pd.DataFrame(columns).to_csv(out, index=False)
    else:
        sys.exit(f"error: unsupported output type {out.suffix!r}: use .npz or .csv")
    print(
        f"wrote {observed.actions.shape[0]} instance(s) × {observed.actions.shape[1]} "
        f"observation(s) to {out}"
    )


if __name__ == "__main__":
    main()
