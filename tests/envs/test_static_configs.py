"""The YAMLs of the static games instantiate their classes, with one comment per field."""

from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from imitgame.config import check_kwargs
from imitgame.game.base import StaticGame

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "env"


@pytest.mark.parametrize("name", ["bertrand", "bertrand_differentiated", "fisher"])
def test_yaml_instantiates(name):
    path = CONFIGS / f"{name}.yaml"
    node = OmegaConf.load(path)
    kwargs = {k: v for k, v in OmegaConf.to_container(node).items() if k != "_target_"}
    check_kwargs(get_class(node._target_), kwargs, "env")
    assert isinstance(instantiate(node), StaticGame)
    fields = [line for line in path.read_text().splitlines() if line and line[0].isalpha()]
    assert all("#" in line for line in fields if not line.startswith("_target_"))
