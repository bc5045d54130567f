"""Sweeps and run folders: job folders named after their overrides, the sweep's table, the run's
log in ``train.log`` and no folder left by a run rejected as bad input."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imitgame.run import cli, sweep

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["env=cournot", "progress=false"]


def train(*args: str) -> subprocess.CompletedProcess:
    """``python train.py *args`` from the checkout."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_multirun_folders_carry_their_overrides_and_the_sweep_ends_with_a_table(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = train(
        "-m",
        *QUICK,
        "seed=0,1",
        "data.noise_std=0.01",
        "algo.iterations=50",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    folders = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert len(folders) == 2
    assert folders[0].startswith("0_") and "seed=0" in folders[0] and "env=cournot" in folders[0]
    assert folders[1].startswith("1_") and "seed=1" in folders[1]
    assert not any("progress" in name for name in folders)  # noise keys stay out of names
    rows = read_csv(sweep_dir / "sweep.csv")
    assert [row["seed"] for row in rows] == ["0", "1"]
    assert [row["folder"] for row in rows] == folders
    assert all(row["status"] == "done" and float(row["exploitability"]) >= 0 for row in rows)
    assert "theta[c_0]" in rows[0] and "progress" not in rows[0]
    table = (sweep_dir / "sweep.md").read_text()
    assert table.startswith("| job ") and len(table.splitlines()) == 4
    assert proc.stdout.rstrip().endswith(f"sweep table: {sweep_dir / 'sweep.md'}")


def test_a_sweep_stopped_by_a_failing_job_still_has_its_table(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = train(
        "-m", *QUICK, "algo.lr_theta=0.1,-1", "algo.iterations=5", f"hydra.sweep.dir={sweep_dir}"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: algo.lr_theta must be >= 0, got -1.0"
    rows = read_csv(sweep_dir / "sweep.csv")
    assert [row["status"] for row in rows] == ["done", "failed"]
    assert rows[1]["algo.lr_theta"] == "-1" and "lr_theta" in rows[1]["error"]
    assert rows[1]["exploitability"] == ""


def test_train_log_holds_the_summary_printed_once(tmp_path):
    run_dir = tmp_path / "run"
    proc = train(*QUICK, "algo.iterations=20", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    log = (run_dir / "train.log").read_text()
    assert "relative error" in log and "exploitability" in log and "[imitgame][INFO]" in log
    assert proc.stdout.count("run folder") == 1 and proc.stdout.startswith("imitgame: ")


@pytest.mark.parametrize(
    "args",
    [
        ["algo.lr_theta=-1"],
        ["+env.nope=1"],
        ["data=file", "data.path=missing.npz"],
    ],
)
def test_a_run_rejected_as_bad_input_leaves_no_folder(tmp_path, args):
    run_dir = tmp_path / "run"
    proc = train(*QUICK, *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error:")
    assert not run_dir.exists()


# --- in-process -----------------------------------------------------------------------------


def test_job_subdir_names_are_valid_short_and_unique():
    assert sweep.job_subdir(0, "env=cournot,seed=1") == "0_env=cournot,seed=1"
    assert sweep.job_subdir(3, "") == "3"
    assert sweep.job_subdir(1, "data.path=/a b/c.npz") == "1_data.path=_a_b_c.npz"
    items = ",".join(f"algo.key_{i}=value_{i}" for i in range(20))
    first, second = sweep.job_subdir(7, items + ",x=1"), sweep.job_subdir(7, items + ",x=2")
    assert len(first) <= sweep.MAX_SUBDIR and first.startswith("7_algo.key_0=value_0,")
    assert first != second and "..." in first and first.isascii()
    assert sweep.job_subdir(10, items).startswith("10_")


def fake_job(sweep_dir: Path, num: int, overrides: list[str], results: dict | None, log: str):
    folder = sweep_dir / f"{num}_{','.join(overrides)}"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "hydra.yaml").write_text(
        f"hydra:\n  job:\n    num: {num}\n    name: train\n"
    )
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "train.log").write_text(log)
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))


def test_the_table_has_a_row_per_job_with_its_overrides_metrics_and_status(tmp_path):
    results = {
        "param_names": ["a", "b", "c"],
        "learned_params": ["a", "c"],
        "theta_hat": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
        "exploitability": 1e-9,
        "relative_error": 0.01,
        "max_relative_error": 0.02,
        "converged_instances": 1,
        "instances": 2,
        "iterations": 10,
        "wall_seconds": 1.5,
    }
    fake_job(tmp_path, 10, ["env=cournot", "seed=2", "progress=false"], results, "")
    fake_job(
        tmp_path, 2, ["env=cournot", "seed=1"], None, "[t][imitgame.exit][ERROR] error: bad|x\n"
    )
    path = sweep.write_table(tmp_path, {"progress"})
    assert path == tmp_path / "sweep.md"
    rows = read_csv(tmp_path / "sweep.csv")
    assert [row["job"] for row in rows] == ["2", "10"]
    assert list(rows[0])[:5] == ["job", "folder", "status", "env", "seed"]
    assert "progress" not in rows[0] and "theta[b]" not in rows[0]
    failed, done = rows
    assert failed["status"] == "failed" and failed["error"] == "bad|x"
    assert done["status"] == "not converged" and done["theta[a]"] == "1.0"
    assert done["theta[c]"] == "3.0" and done["exploitability"] == "1e-09"
    assert "bad\\|x" in path.read_text()


def test_only_an_untouched_run_folder_counts_as_empty(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("a: 1\n")
    (run_dir / "config.yaml").write_text("a: 1\n")
    handler = logging.FileHandler(run_dir / "train.log")
    logging.getLogger(cli.FAIL_LOGGER).addHandler(handler)
    try:
        assert cli.untouched(run_dir, ".hydra")
        (run_dir / "results.json").write_text("{}")
        assert not cli.untouched(run_dir, ".hydra")
        (run_dir / "results.json").unlink()
        logging.getLogger(cli.FAIL_LOGGER).error("something")
        assert not cli.untouched(run_dir, ".hydra")  # the log is no longer empty
        cli.discard_untouched(run_dir)
        assert not run_dir.exists() and handler not in logging.getLogger(cli.FAIL_LOGGER).handlers
    finally:
        logging.getLogger(cli.FAIL_LOGGER).removeHandler(handler)
        handler.close()
