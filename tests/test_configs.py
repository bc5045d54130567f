"""Every shipped YAML composes, and every env/algo/data option builds."""

from pathlib import Path

import pytest

from imitgame.app import build_game
from imitgame.config import AlgoConfig, DataConfig, typed
from imitgame.games import MarkovGame
from tests.conftest import compose_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("env", options("env"))
def test_env_composes_and_builds(env):
    cfg = compose_config(f"env={env}")
    assert isinstance(build_game(cfg.env), MarkovGame)


@pytest.mark.parametrize("algo", options("algo"))
def test_algo_composes_and_validates(algo):
    env = "cournot"
    cfg = compose_config(f"env={env}", f"algo={algo}")
    assert typed(AlgoConfig, cfg.algo, "algo").iterations >= 1


@pytest.mark.parametrize("data", options("data"))
def test_data_composes_and_validates(data):
    extra = ["data.path=obs.npz"] if data == "file" else []
    cfg = compose_config("env=cournot", f"data={data}", *extra)
    assert typed(DataConfig, cfg.data, "data").source in ("simulated", "file")


def test_every_yaml_field_has_a_comment():
    """BenchMARL style: one comment per field in the group configs."""
    for path in CONFIGS.glob("*/*.yaml"):
        for line in path.read_text().splitlines():
            body = line.split("#")[0]
            if ":" in body and not line.startswith(("#", " ", "-", "defaults", "_target_")):
                assert "#" in line, f"{path.name}: field without a comment: {line!r}"


@pytest.mark.parametrize("name", options("tuning"))
def test_tuning_presets_belong_to_a_game_and_validate(name):
    assert name in options("env"), f"tuning/{name}.yaml has no configs/env/{name}.yaml"
    cfg = compose_config(f"env={name}")
    typed(AlgoConfig, cfg.algo, "algo")
    tuned = compose_config(f"env={name}", "algo.lr_theta=0.123")
    assert tuned.algo.lr_theta == 0.123  # the command line wins over the preset
