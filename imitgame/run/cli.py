"""The entry layer: Hydra, signals and exit codes around the runner.

``train.py`` calls :func:`check_overrides` (an unknown game, option or key is one line, not a
multi-line dump) and hands Hydra's composed config to :func:`main`, which runs
:func:`imitgame.run.runner.run` with Ctrl-C/SIGTERM turned into a checkpointed stop and each
failure into ``error: <one line>`` and its exit code.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from imitgame.errors import DivergenceError, ImitgameError, Interrupted

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


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
        sys.exit(EXIT_BAD_INPUT)
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
        sys.exit(EXIT_BAD_INPUT)


def _choice(group: str) -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get(group)


def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task function: one run; errors become one line on stderr and a non-zero exit code
    (2: bad input, 3: diverged, 130: interrupted after a checkpoint)."""
    from hydra.core.hydra_config import HydraConfig

    from imitgame.run.runner import run

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(cfg, run_dir, env_name=_choice("env"), stop=stop)
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except DivergenceError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except Interrupted as err:
        print(str(err), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
