"""Run an inverse problem end to end: ``python train.py env=cournot [overrides]``."""

import hydra
from omegaconf import DictConfig

from imitgame.app import main as run


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
