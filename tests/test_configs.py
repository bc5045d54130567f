"""Every shipped YAML composes, and every env/algo/data option builds."""

from pathlib import Path

import pytest

from imitgame.config import AlgoConfig, DataConfig, typed
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.run.runner import build_game
from tests.conftest import compose_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("env", options("env"))
def test_env_composes_and_builds(env):
    cfg = compose_config(f"env={env}")
    assert isinstance(build_game(cfg.env), MarkovGame)


def algo_schema(algo: str) -> type:
    """The schema each algo preset is typed with (by the problem it belongs to)."""
    from imitgame.config import MarkovConfig, SimulacralConfig

    return {"sgda": MarkovConfig, "simulacral": SimulacralConfig}.get(algo, AlgoConfig)


@pytest.mark.parametrize("algo", options("algo"))
def test_algo_composes_and_validates(algo):
    cfg = compose_config("env=cournot", f"algo={algo}")
    assert typed(algo_schema(algo), cfg.algo, "algo").iterations >= 1


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
    if cfg.algo.get("problem") == "simulacral":
        schema = algo_schema("simulacral")
    elif cfg.algo.get("problem") == "expert":
        from imitgame.problems.expert import ExpertConfig

        schema = ExpertConfig
    elif isinstance(build_game(cfg.env), StaticGame):
        schema = AlgoConfig
    else:
        schema = algo_schema("sgda")
    typed(schema, cfg.algo, "algo")
    tuned = compose_config(f"env={name}", "algo.lr_theta=0.123")
    assert tuned.algo.lr_theta == 0.123  # the command line wins over the preset
