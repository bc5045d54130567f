"""Write synthetic observed play of a game to a file that ``data=file`` can load.

    python scripts/export_observed.py --out runs/obs.csv env=cournot env.n_firms=4 data.instances=3

The remaining arguments are Hydra overrides of configs/config.yaml (env, data). The file holds the
equilibrium actions under the env's true parameters (.npz also stores ``theta_true``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imitgame.config import DataConfig, typed  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from imitgame.run.runner import build_game, make_observed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output file: .npz or .csv")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=cournot")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    try:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=args.overrides)
        game = build_game(cfg.env)
        observed = make_observed(game, typed(DataConfig, cfg.data, "data"), cfg.seed)
    except ImitgameError as err:
        sys.exit(f"error: {err}")
    out = Path(args.out)
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
