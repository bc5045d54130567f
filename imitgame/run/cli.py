"""Command-line front door: check the overrides with Hydra's own composer before the run starts,
so that an unknown game, option or key is reported as one line instead of a multi-line dump."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, MissingConfigException) and getattr(err, "options", None):
        return f"{lines[0]} (available: {', '.join(err.options)})"
    if lines and lines[0].startswith("You must specify"):
        return f"{lines[0]} (available: {', '.join(lines[2:])})"
    return " ".join(lines[:2]) if lines else type(err).__name__


def with_resumed_choices(argv: list[str]) -> list[str]:
    """``resume=RUN`` alone is enough: take the run's env choice from its ``.hydra`` record."""
    resume = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not resume or any(a.startswith("env=") for a in argv):
        return argv
    record = Path(resume[0]) / ".hydra" / "hydra.yaml"
    if not record.is_file():
        print(
            f"error: resume={resume[0]}: not a run folder (no .hydra/hydra.yaml)", file=sys.stderr
        )
        sys.exit(2)
    choice = OmegaConf.load(record).hydra.runtime.choices.get("env")
    return [*argv, f"env={choice}"]


def check_overrides(config_dir: Path, config_name: str, argv: list[str]) -> None:
    """Compose the config once; on failure print ``error: <one line>`` and exit 2.

    Multirun sweeps and Hydra's own options are left to Hydra.
    """
    if any(arg in ("-m", "--multirun") for arg in argv):
        return
    if any(arg.startswith("-") for arg in argv):  # --help, --cfg, ...
        return
    overrides = [a for a in argv if not a.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        sys.exit(2)
