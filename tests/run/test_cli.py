"""The command line: ``python train.py``, ``python -m imitgame`` and ``imitgame`` are one entry
point (``imitgame.run.cli.console_main``) with our own ``--help``; project basics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imitgame
from imitgame.run import cli

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = {"python train.py": [str(ROOT / "train.py")], "python -m imitgame": ["-m", "imitgame"]}


def run(entry: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python <entry> *args`` as a user runs it, from the checkout."""
    return subprocess.run(
        [sys.executable, *ENTRIES[entry], *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_our_usage(entry, flag):
    proc = run(entry, flag)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    text = proc.stdout
    assert f"usage: {entry} env=NAME" in text
    for word in ("cournot", "fish_war", "simulacral", "markov_inverse", "extragradient", "seed="):
        assert word in text
    assert "--cfg job" in text and "configs/env/NAME.yaml" in text


def test_help_is_built_from_the_config_files():
    text = cli.help_text(ROOT / "configs", "imitgame")
    for path in sorted((ROOT / "configs" / "env").glob("*.yaml")):
        first = next(line for line in path.read_text().splitlines() if line.startswith("#"))
        assert f"  {path.stem} " in text and first.lstrip("# ") in text
    for key in ("seed", "device", "dtype", "progress", "threads", "resume"):
        assert f"  {key}=" in text
    assert "runs/<date>/<time>_<env>" in text


def test_help_lists_a_new_env_by_itself(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "env" / "my_game.yaml").write_text("# My game: a test.\n_target_: x.Y\n")
    row = [line for line in cli.help_text(configs, "imitgame").splitlines() if "my_game" in line]
    assert row == [row[0]] and row[0].split() == ["my_game", "My", "game:", "a", "test."]


def test_hydra_options_still_reach_hydra():
    proc = run("python -m imitgame", "env=cournot", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "_target_: envs.cournot.Cournot" in proc.stdout


def test_module_run_writes_results(tmp_path):
    run_dir = tmp_path / "run"
    proc = run(
        "python -m imitgame",
        "env=cournot",
        "progress=false",
        "algo.iterations=5",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert "theta_hat" in results
    assert (run_dir / "train.log").is_file()  # the job keeps its name whichever the entry


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_unknown_env_is_one_line(entry):
    proc = run(entry, "env=nosuchgame", "progress=false")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and "env/nosuchgame" in lines[0]


def test_missing_configs_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.console_main(["env=cournot"], config_dir=tmp_path)
    assert info.value.code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_package_config_dir_is_the_checkouts():
    assert cli.package_config_dir() == ROOT / "configs"


def test_version_and_license():
    assert isinstance(imitgame.__version__, str) and imitgame.__version__
    assert (ROOT / "LICENSE").is_file()
    assert (ROOT / "imitgame" / "py.typed").is_file()
