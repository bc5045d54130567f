"""Multirun sweeps: job folders named after their overrides, and one table per sweep.

``configs/config.yaml`` names each job folder ``${imitgame.job_subdir:<num>,<overrides>}``
(:func:`job_subdir`: ``0_env=cournot,env.n_firms=5,seed=1``) and registers :class:`SweepTable`
as a Hydra callback: when a ``--multirun`` ends it writes ``sweep.csv`` and ``sweep.md`` into the
sweep folder, one row per job (:func:`write_table`). A sweep that a failing job stopped gets its
table too, from :func:`write_stopped_sweep` (called by the command line on its way out).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

SUBDIR_RESOLVER = "imitgame.job_subdir"
MAX_SUBDIR = 120  # characters of a job folder's name, ASCII only
TABLE = "sweep"  # the table's files: sweep.csv and sweep.md
RESULTS = "results.json"
CHECKPOINT = "checkpoint.pt"
METRICS = (
    "exploitability",
    "relative_error",
    "max_relative_error",
    "converged_instances",
    "instances",
    "iterations",
    "wall_seconds",
)
MAX_THETA = 20  # a job's learned θ̂ becomes theta[<name>] columns up to this many entries

_UNSAFE = re.compile(r"[^\w.,=+\-@~\[\]]", re.ASCII)  # characters kept in a folder name


def job_subdir(num: int | str, overrides: str) -> str:
    """A job's folder name: its number, then its overrides (``0_env=cournot,seed=1``).

    Characters other than letters, digits and ``_.,=+-@~[]`` become ``_`` (a ``/`` in a value
    would nest folders); a name over :data:`MAX_SUBDIR` characters keeps its whole leading
    overrides and ends with ``...`` and a hash of the full string. The number keeps it unique.
    """
    name = _UNSAFE.sub("_", str(overrides))
    if not name:
        return str(num)
    prefix = f"{num}_"
    if len(prefix) + len(name) <= MAX_SUBDIR:
        return prefix + name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    cut = name[: max(MAX_SUBDIR - len(prefix) - len(digest) - 3, 1)]
    if cut.rfind(",") > 0:
        cut = cut[: cut.rfind(",")]
    return f"{prefix}{cut}...{digest}"


OmegaConf.register_new_resolver(SUBDIR_RESOLVER, job_subdir, replace=True)


# --- the table --------------------------------------------------------------------------------


def _overrides(lines: list[str], exclude: set[str]) -> dict[str, str]:
    """A job's task overrides as ``{key: value}``, without the ``exclude`` keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out: dict[str, str] = {}
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except HydraException:  # a record Hydra cannot parse back: split it by hand
        for line in lines:
            key, _, value = line.partition("=")
            if key.lstrip("+~") not in exclude:
                out[key.lstrip("+~")] = value
        return out
    for item in parsed:
        if item.key_or_group in exclude:
            continue
        key = item.key_or_group + (f"@{item.package}" if item.package else "")
        out[key] = "~" if item.is_delete() else item.get_value_element_as_str()
    return out


def _failure(log: Path) -> tuple[str, str]:
    """A stopped job's status and error line, from its log file (``error: ...`` lines)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "incomplete", ""
    for line in reversed(lines):
        if "error: " in line:
            return "failed", line.split("error: ", 1)[1].strip()
        if "interrupted at step" in line:
            return "interrupted", line[line.index("interrupted at step") :].strip()
    return "incomplete", ""


def _theta(results: dict[str, Any]) -> dict[str, float]:
    """θ̂ of instance 0 over the learned entries, as ``theta[<name>]`` columns."""
    names, learned = results.get("param_names") or [], results.get("learned_params") or []
    theta = results.get("theta_hat")
    if not learned or len(learned) > MAX_THETA or not isinstance(theta, list) or not theta:
        return {}
    row = theta[0] if isinstance(theta[0], list) else theta
    return {
        f"theta[{name}]": row[names.index(name)]
        for name in learned
        if name in names and names.index(name) < len(row)
    }


def job_row(folder: Path, exclude: set[str], output_subdir: str = ".hydra") -> dict[str, Any]:
    """One job's row: number, folder, status, overrides, metrics and θ̂ (see :func:`write_table`).

    ``status`` is ``done`` (or ``not converged``) with a ``results.json``, else ``failed`` or
    ``interrupted`` with the job log's last ``error:``/interrupted line, else ``incomplete``.
    """
    record = folder / output_subdir
    hydra_cfg = OmegaConf.load(record / "hydra.yaml")
    num = OmegaConf.select(hydra_cfg, "hydra.job.num", default=None)
    if num is None:
        num = folder.name.split("_", 1)[0]
    name = OmegaConf.select(hydra_cfg, "hydra.job.name", default=None) or "train"
    lines = (
        OmegaConf.load(record / "overrides.yaml") if (record / "overrides.yaml").is_file() else []
    )
    row: dict[str, Any] = {"job": int(num) if str(num).isdigit() else num, "folder": folder.name}
    row.update(_overrides([str(line) for line in lines], exclude))
    path = folder / RESULTS
    if path.is_file():
        results = json.loads(path.read_text(encoding="utf-8"))
        converged, k = results.get("converged_instances"), results.get("instances")
        row["status"] = "not converged" if converged is not None and converged != k else "done"
        row.update({key: results.get(key) for key in METRICS})
        row.update(_theta(results))
    else:
        row["status"], error = _failure(folder / f"{name}.log")
        if row["status"] == "incomplete" and (folder / CHECKPOINT).is_file():
            row["status"] = "incomplete (checkpointed)"
        if error:
            row["error"] = error
    return row


def sweep_rows(
    sweep_dir: Path, exclude: set[str], output_subdir: str = ".hydra"
) -> list[dict[str, Any]]:
    """The rows of every job folder in ``sweep_dir`` (those with a Hydra record), by job number."""
    folders = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and (p / output_subdir / "hydra.yaml").is_file()
    ]
    rows = []
    for folder in folders:
        try:
            rows.append(job_row(folder, exclude, output_subdir))
        except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException):
            num = folder.name.split("_", 1)[0]
            job = int(num) if num.isdigit() else num
            rows.append({"job": job, "folder": folder.name, "status": "unreadable"})
    return sorted(
        rows, key=lambda r: (0, r["job"], "") if isinstance(r["job"], int) else (1, 0, r["job"])
    )


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """job, folder, status, the overridden keys, the metrics, θ̂ and (where a job failed) error."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    head = ["job", "folder", "status"]
    theta = [c for c in seen if c.startswith("theta[")]
    error = ["error"] if "error" in seen else []
    keys = [c for c in seen if c not in {*head, *METRICS, *theta, *error}]
    return [*head, *keys, *METRICS, *theta, *error]


def _cell(value: Any) -> str:
    """A markdown cell: floats to 4 significant digits, ``|`` escaped, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """``rows`` as an aligned markdown table."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines) + "\n"


def write_table(sweep_dir: Path, exclude: set[str], output_subdir: str = ".hydra") -> Path | None:
    """Write ``sweep.csv`` and ``sweep.md`` into ``sweep_dir``: one row per job with its number,
    folder, status, each overridden key (``exclude`` left out), the metrics of its
    ``results.json`` and the learned θ̂ of instance 0; returns the markdown's path (None: no job
    folder)."""
    if not sweep_dir.is_dir():
        return None
    rows = sweep_rows(sweep_dir, exclude, output_subdir)
    if not rows:
        return None
    columns = _columns(rows)
    with open(sweep_dir / f"{TABLE}.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    path = sweep_dir / f"{TABLE}.md"
    path.write_text(markdown(rows, columns), encoding="utf-8")
    return path


# --- the callback -----------------------------------------------------------------------------

_running: dict[str, Any] = {}  # the sweep in progress in this process: dir, exclude, record


def _settings(config: DictConfig) -> dict[str, Any]:
    """The sweep folder, the keys left out of folder names and the Hydra record's subfolder."""
    exclude = OmegaConf.select(config, "hydra.job.config.override_dirname.exclude_keys") or []
    return {
        "sweep_dir": Path(str(config.hydra.sweep.dir)),
        "exclude": {str(key) for key in exclude},
        "output_subdir": OmegaConf.select(config, "hydra.output_subdir") or ".hydra",
    }


def _write(settings: dict[str, Any]) -> None:
    """Write the table of the sweep ``settings`` describe and print where it is."""
    path = write_table(**settings)
    if path is not None:
        print(f"sweep table: {path}", flush=True)


class SweepTable(Callback):
    """Hydra callback: the sweep's table (:func:`write_table`) once a ``--multirun`` ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember the sweep, for :func:`write_stopped_sweep`."""
        _running.clear()
        _running.update(_settings(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the sweep's table and print its path."""
        _running.clear()
        _write(_settings(config))


def write_stopped_sweep() -> None:
    """The table of a sweep that a failing job stopped (Hydra skips ``on_multirun_end``)."""
    if _running:
        settings = dict(_running)
        _running.clear()
        _write(settings)
