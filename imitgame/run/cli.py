"""The entry layer: Hydra, signals and exit codes around the runner.

:func:`console_main` is the one command line behind ``python train.py``, ``python -m imitgame``
and the ``imitgame`` command: ``--help`` prints :func:`help_text` (built from ``configs/``),
:func:`with_resumed_choices` fills in a resumed run's env, :func:`check_overrides` turns an unknown
game, option or key into one line, and Hydra hands the composed config to :func:`main`, which runs
:func:`imitgame.run.runner.run` with Ctrl-C/SIGTERM turned into a checkpointed stop and each
failure into ``error: <one line>`` (on stderr and in the run's log) and its exit code; a run
rejected before it wrote anything leaves no folder (:func:`discard_untouched`). A ``--multirun``
ends with its table (:mod:`imitgame.run.sweep`), also when a failing job stops it.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from imitgame.errors import DivergenceError, ImitgameError, Interrupted, NotConverged
from imitgame.run import sweep  # registers the job-folder resolver of configs/config.yaml

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_NOT_CONVERGED = 4  # strict=true and an instance did not converge
EXIT_INTERRUPTED = 130

CONFIG_NAME = "config"
HELP_FLAGS = ("-h", "--help")
HELP_WIDTH = 100
JOB_NAME = "train"  # Hydra's job name: the run folder's log file is <JOB_NAME>.log
FAIL_LOGGER = "imitgame.exit"  # a failed run's last line: stderr and the log (configs/config.yaml)
_LOGGERS = ("", "imitgame", FAIL_LOGGER)  # root, the runner's summary, FAIL_LOGGER


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
    if not resume:
        return argv
    # a resumed run continues with its saved config: any other option would be ignored
    kept = ("resume=", "env=", "hydra.", "progress=", "threads=", "-")
    ignored = [a for a in argv if not a.lstrip("+~").startswith(kept)]
    if ignored:
        print(
            f"error: resume= continues the run with its saved config; these options would be "
            f"ignored: {' '.join(ignored)} (start a new run to change them)",
            file=sys.stderr,
        )
        sys.exit(EXIT_BAD_INPUT)
    if any(a.startswith("env=") for a in argv):
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


def _log_files(run_dir: Path) -> list[logging.FileHandler]:
    """The logging file handlers (root's and ours) that write into ``run_dir``."""
    found: list[logging.FileHandler] = []
    for handler in (h for name in _LOGGERS for h in logging.getLogger(name or None).handlers):
        if not isinstance(handler, logging.FileHandler) or handler in found:
            continue
        if Path(handler.baseFilename).parent == run_dir:
            found.append(handler)
    return found


def untouched(run_dir: Path, record: str | None) -> bool:
    """Whether ``run_dir`` holds only what a run writes before its first step: the runner's
    ``config.yaml``, Hydra's ``record`` folder (``.hydra``) and empty log files (ask before
    logging the error)."""
    if not run_dir.is_dir():
        return False
    logs: set[str] = set()
    for handler in _log_files(run_dir):
        handler.flush()
        logs.add(Path(handler.baseFilename).name)
    for entry in run_dir.iterdir():
        if entry.name == "config.yaml" and entry.is_file():
            continue
        if (
            entry.name == record
            and entry.is_dir()
            and all(p.is_file() and p.suffix == ".yaml" for p in entry.iterdir())
        ):
            continue
        if entry.name in logs and entry.is_file() and entry.stat().st_size == 0:
            continue
        return False
    return True


def discard_untouched(run_dir: Path) -> None:
    """Remove a rejected run's folder, closing the log files open in it first."""
    for handler in _log_files(run_dir):
        for name in _LOGGERS:
            logging.getLogger(name or None).removeHandler(handler)
        handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)


def _fail(
    message: str, code: int, discard: Path | None = None, level: int = logging.ERROR
) -> NoReturn:
    """``message`` on stderr and in the run's log; remove ``discard`` (an untouched run folder);
    exit with ``code``."""
    log = logging.getLogger(FAIL_LOGGER)
    if log.handlers:
        log.log(level, message)
    else:  # logging not configured as in configs/config.yaml
        print(message, file=sys.stderr)
    if discard is not None:
        discard_untouched(discard)
    sys.exit(code)


def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task function: one run; errors become one line on stderr and a non-zero exit code
    (2: bad input, 3: diverged, 4: not converged under strict=true, 130: interrupted after a
    checkpoint). A single run rejected as bad input before writing anything (not a resume, not a
    sweep's job) leaves no folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from imitgame.run.runner import run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(cfg, run_dir, env_name=_choice("env"), stop=stop)
    except ImitgameError as err:
        single = hydra_cfg.mode == RunMode.RUN and not cfg.get("resume")
        clean = single and untouched(run_dir, hydra_cfg.output_subdir)
        _fail(f"error: {err}", EXIT_BAD_INPUT, discard=run_dir if clean else None)
    except DivergenceError as err:
        _fail(f"error: training diverged: {err}", EXIT_DIVERGED)
    except NotConverged as err:
        _fail(f"error: {err}", EXIT_NOT_CONVERGED)
    except Interrupted as err:
        _fail(str(err), EXIT_INTERRUPTED, level=logging.WARNING)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- the command line: python train.py | python -m imitgame | imitgame -------------------------

_FIELD = re.compile(r"^([A-Za-z_]\w*):[ \t]*(.*?)(?:\s+#\s?(.*))?$")
_DEFAULT = re.compile(r"^\s+-\s+(optional\s+)?([\w@/.]+):\s*(\S+)(?:\s+#\s?(.*))?$")


def package_config_dir() -> Path:
    """The ``configs/`` folder beside the ``imitgame`` package (a checkout or editable install)."""
    import imitgame

    return Path(imitgame.__file__).resolve().parents[1] / "configs"


def _first_comment(path: Path) -> str:
    """The first comment line of a YAML file, without its ``#``."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            return line.lstrip().lstrip("#").strip()
    return ""


def _fields(path: Path) -> list[tuple[str, str, str]]:
    """Top-level ``key: value  # comment`` lines of a YAML file (blocks such as ``hydra:`` are
    left out), as (key, value, comment)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _FIELD.match(line)
        if match and match[2]:
            rows.append((match[1], match[2], match[3] or ""))
    return rows


def _defaults(path: Path) -> list[tuple[str, str, str, bool]]:
    """The config's defaults list as (group, default option, comment, optional)."""
    return [
        (m[2], m[3], m[4] or "", bool(m[1]))
        for m in map(_DEFAULT.match, path.read_text(encoding="utf-8").splitlines())
        if m
    ]


def _readable(pattern: str) -> str:
    """``runs/${now:%Y-%m-%d}/${now:%H-%M}_${hydra:runtime.choices.env}`` as
    ``runs/<date>/<time>_<env>``."""
    pattern = re.sub(r"\$\{now:[^}]*%Y[^}]*\}", "<date>", pattern)
    pattern = re.sub(r"\$\{now:[^}]*\}", "<time>", pattern)
    pattern = re.sub(r"\$\{hydra:runtime\.choices\.(\w+)\}", r"<\1>", pattern)
    return re.sub(r"\$\{hydra[.:]job\.num\}", "<job>", pattern)


def _run_dir(config: Path, key: str) -> str:
    """A run-folder pattern of the config (``hydra.run.dir``), readable; unresolved."""
    node: Any = OmegaConf.to_container(OmegaConf.load(config), resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return _readable(str(node)) if node is not None else f"Hydra's default {key}"


def _table(rows: Sequence[tuple[str, str]]) -> list[str]:
    """Two aligned columns, one row a line (a description stays whole: grep finds it)."""
    column = max((len(name) for name, _ in rows), default=0) + 2
    return [f"  {name:<{column}}{text}".rstrip() for name, text in rows]


def _exit_codes() -> str:
    """``2 bad input, 3 diverged, ...`` from this module's ``EXIT_*`` constants."""
    codes = sorted(
        (v, k[5:].lower().replace("_", " ")) for k, v in globals().items() if k[:5] == "EXIT_"
    )
    return ", ".join(f"{code} {what}" for code, what in codes)


def help_text(config_dir: Path, prog: str) -> str:
    """The ``--help`` text, built from ``config_dir`` (a new ``env/*.yaml`` appears by itself)
    and the problem registry."""
    from imitgame.problems import PROBLEMS

    config = config_dir / f"{CONFIG_NAME}.yaml"
    defaults = _defaults(config)
    env = defaults[0][0] if defaults else "env"
    example = "cournot" if (config_dir / env / "cournot.yaml").is_file() else "NAME"
    lines = [
        _first_comment(config),
        "",
        f"usage: {prog} {env}=NAME [GROUP=NAME ...] [KEY=VALUE ...] [HYDRA OPTIONS]",
        f"       {prog} -h | --help",
    ]
    algo = "gda"
    for group, default, comment, optional in defaults:
        folder = config_dir / group.split("@")[0]
        if not folder.is_dir():
            continue
        names = sorted(path.stem for path in folder.glob("*.yaml"))
        where = f"configs/{folder.name}/NAME.yaml"
        if optional:  # e.g. tuning@algo: ${env} -- applied where the file exists
            lines += ["", f"{group}: {comment}"]
            lines += textwrap.wrap(
                f"files: {', '.join(names)}",
                HELP_WIDTH,
                initial_indent="  ",
                subsequent_indent="  ",
            )
            continue
        if group == "algo" and default != "???":
            algo = default
        state = "required" if default == "???" else f"default {default}"
        lines += ["", f"{group}=NAME: {comment} [{where}; {state}]"]
        lines += _table([(name, _first_comment(folder / f"{name}.yaml")) for name in names])

    problem = {
        key: (value, text) for key, value, text in _fields(config_dir / "algo" / f"{algo}.yaml")
    }
    value, text = problem.get("problem", ("null", ""))
    default = text.rsplit("; ", 1)[-1] if text.rsplit("; ", 1)[-1].startswith(value) else value
    lines += [
        "",
        f"algo.problem=NAME: the problem kind, imitgame.problems "
        f"[configs/algo/{algo}.yaml; default {default}]",
    ]
    lines += _table([(spec.name, spec.description) for spec in PROBLEMS.values()])

    lines += ["", f"options [configs/{config.name}]:"]
    lines += _table([(f"{key}={value}", text) for key, value, text in _fields(config)])

    run_dir, sweep_dir = _run_dir(config, "hydra.run.dir"), _run_dir(config, "hydra.sweep.dir")
    lines += [
        "",
        "Each field of a group is set with GROUP.FIELD=VALUE (e.g. algo.iterations=500); read them",
        "in configs/GROUP/NAME.yaml, one comment per field. The composed config of a run:",
        f"  {prog} {env}={example} --cfg job",
        f"A run writes to {run_dir} (hydra.run.dir=DIR to choose);",
        f"--multirun / -m sweeps comma-separated values into {sweep_dir}.",
        "Hydra's own options: --cfg job|hydra|all, --resolve, --info, --multirun / -m,",
        "--config-dir DIR, --hydra-help.",
        f"Exit codes: 0 done, {_exit_codes()}.",
        "",
        "examples:",
        f"  {prog} {env}={example} env.n_firms=5 algo=extragradient seed=3",
        f"  {prog} -m {env}={example} seed=0,1,2 data.noise_std=0.01",
        f"  {prog} resume=runs/<date>/<run>    # continue a stopped run from its checkpoint",
    ]
    return "\n".join(lines)


def _task(cfg: DictConfig) -> None:
    main(cfg)


# Hydra names the job after the task function's module (its last part): the job and its log file
# stay ``train`` whichever command started the run.
_task.__module__ = f"imitgame.{JOB_NAME}"


def hydra_main(config_dir: Path) -> Callable[[], Any]:
    """The Hydra application over ``config_dir`` (it reads its overrides from ``sys.argv``)."""
    return hydra.main(version_base="1.3", config_path=str(config_dir), config_name=CONFIG_NAME)(
        _task
    )


def console_main(
    argv: Sequence[str] | None = None, *, config_dir: Path | None = None, prog: str = "imitgame"
) -> None:
    """``imitgame [overrides]``: the command line behind ``python train.py`` and
    ``python -m imitgame`` (``argv`` defaults to ``sys.argv[1:]``; ``config_dir`` to
    :func:`package_config_dir`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    config_dir = (config_dir or package_config_dir()).resolve()
    if not (config_dir / f"{CONFIG_NAME}.yaml").is_file():
        print(
            f"error: no {CONFIG_NAME}.yaml in {config_dir}: imitgame runs from a source checkout "
            "(git clone, then pip install -e .)",
            file=sys.stderr,
        )
        sys.exit(EXIT_BAD_INPUT)
    if any(arg in HELP_FLAGS for arg in args):
        print(help_text(config_dir, prog))
        return
    args = with_resumed_choices(args)
    check_overrides(config_dir, CONFIG_NAME, args)
    sys.argv = [sys.argv[0], *args]
    try:
        hydra_main(config_dir)()
    finally:
        sweep.write_stopped_sweep()
