"""Run an inverse problem end to end: ``python train.py env=cournot [overrides]``."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from imitgame.run.cli import check_overrides, with_resumed_choices
from imitgame.run.cli import main as run

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *with_resumed_choices(sys.argv[1:])]
    check_overrides(CONFIG_DIR, "config", sys.argv[1:])
    main()
