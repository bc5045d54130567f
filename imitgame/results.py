"""The typed result of a run: what was estimated, how well, and whether it converged.

Every problem kind returns a :class:`Results` (the library calls and the runner alike); a run
folder's ``results.json`` is its :meth:`Results.to_dict`, and :func:`load_run` reads it back::

    res = imitgame.load_run("runs/2026-12-02/10-00-00_cournot")
    print(res.summary())            # the estimates table
    res.to_frame()                  # one row per (instance, learned parameter)

Per-instance quantities are tensors with the instance dimension first: ``theta_hat [K, p]``,
``exploitability [K]``, ``converged [K]`` (None: the run had no convergence criterion),
``relative_error [K]``; ``intervals`` holds ``{name: (low, high)}`` where a run computes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from imitgame.errors import ImitgameError

RESULTS_FILE = "results.json"
INSTANCES_FILE = "instances.csv"  # per-instance rows, beside results.json when K is large
PER_INSTANCE_INLINE = 50  # up to this many instances, per-instance rows stay in results.json
SUMMARY_PARAMS = 20  # learned entries printed in a summary


def _listed(tensor: Tensor | None) -> Any:
    """``[K, ...]`` as nested lists, instance 0's alone when K = 1 (results.json's layout)."""
    if tensor is None:
        return None
    values = tensor.detach().cpu()
    return values[0].tolist() if values.shape[0] == 1 else values.tolist()


@dataclass
class Results:
    """The answer of a problem and its diagnostics (see the module docstring for shapes)."""

    problem: str
    param_names: list[str]
    learned_params: list[str]
    theta_hat: Tensor
    theta_true: Tensor | None
    exploitability: Tensor
    exploitability_exact: bool
    converged: Tensor | None
    identified: Tensor | None = None  # [K] bool, from the first-order rank test
    identifiability_rank: Tensor | None = None  # [K]
    iterations: int = 0
    wall_seconds: float = 0.0
    tol_exploitability: float | None = None
    env: str | None = None
    intervals: dict[str, tuple[float, float]] | None = None
    exploitability_method: str | None = None  # how φ was measured, for the summary's label
    extras: dict[str, Any] = field(default_factory=dict)  # problem-specific entries

    # --- derived quantities ----------------------------------------------------------------------
    @property
    def instances(self) -> int:
        return int(self.theta_hat.shape[0])

    @property
    def learn_index(self) -> list[int]:
        return [self.param_names.index(n) for n in self.learned_params]

    @property
    def relative_error(self) -> Tensor | None:
        """‖θ̂_L − θ_L‖ / ‖θ_L‖ over the learned entries L, per instance ``[K]``."""
        if self.theta_true is None:
            return None
        idx = self.learn_index
        diff = (self.theta_hat[:, idx] - self.theta_true[:, idx]).norm(dim=-1)
        return diff / self.theta_true[:, idx].norm(dim=-1).clamp(min=1e-12)

    @property
    def relative_error_by_param(self) -> dict[str, float] | None:
        """|θ̂_j − θ_j| / |θ_j| per learned parameter, mean over instances."""
        if self.theta_true is None:
            return None
        idx = self.learn_index
        true = self.theta_true[:, idx]
        err = ((self.theta_hat[:, idx] - true).abs() / true.abs().clamp(min=1e-12)).mean(0)
        return dict(zip(self.learned_params, err.tolist()))

    @property
    def converged_instances(self) -> int | None:
        return None if self.converged is None else int(self.converged.sum())

    @property
    def all_converged(self) -> bool | None:
        """True/False, or None when the run had no convergence criterion."""
        n = self.converged_instances
        return None if n is None else n == self.instances

    # --- views -----------------------------------------------------------------------------------
    def per_instance(self) -> list[dict[str, Any]]:
        """One row per instance: θ̂ of the learned entries, exploitability, converged, error."""
        rel = self.relative_error
        rows = []
        for i in range(self.instances):
            row: dict[str, Any] = {
                "instance": i,
                "exploitability": float(self.exploitability[i]),
                "converged": None if self.converged is None else bool(self.converged[i]),
                "relative_error": None if rel is None else float(rel[i]),
                "identified": None if self.identified is None else bool(self.identified[i]),
            }
            row.update(zip(self.learned_params, self.theta_hat[i, self.learn_index].tolist()))
            rows.append(row)
        return rows

    def to_frame(self) -> pd.DataFrame:
        """One row per (instance, learned parameter): ``estimate``, ``true``, ``relative_error``,
        and ``ci_low``/``ci_high`` where intervals exist."""
        idx = self.learn_index
        records = []
        for i in range(self.instances):
            for j, name in zip(idx, self.learned_params):
                est = float(self.theta_hat[i, j])
                true = None if self.theta_true is None else float(self.theta_true[i, j])
                rec: dict[str, Any] = {
                    "instance": i,
                    "param": name,
                    "estimate": est,
                    "true": true,
                    "relative_error": None
                    if true is None
                    else abs(est - true) / max(abs(true), 1e-12),
                }
                if self.intervals and name in self.intervals:
                    rec["ci_low"], rec["ci_high"] = self.intervals[name]
                records.append(rec)
        return pd.DataFrame.from_records(records).set_index(["instance", "param"])

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` payload (means over instances, worst instance, per instance)."""
        rel = self.relative_error
        identified = None if self.identified is None else bool(self.identified.all())
        out = {
            "problem": self.problem,
            "env": self.env,
            "param_names": self.param_names,
            "learned_params": self.learned_params,
            "theta_hat": _listed(self.theta_hat),
            "theta_true": _listed(self.theta_true),
            "exploitability": float(self.exploitability.mean()),
            "max_exploitability": float(self.exploitability.max()),
            "exploitability_exact": self.exploitability_exact,
            "exploitability_method": self.exploitability_method,
            "relative_error": None if rel is None else float(rel.mean()),
            "max_relative_error": None if rel is None else float(rel.max()),
            "relative_error_by_param": self.relative_error_by_param,
            "identified": identified,
            "identifiability_rank": _listed(self.identifiability_rank),
            "instances": self.instances,
            "converged_instances": self.converged_instances,
            "tol_exploitability": self.tol_exploitability,
            "iterations": self.iterations,
            "wall_seconds": self.wall_seconds,
            "intervals": self.intervals,
            "per_instance": self.per_instance(),
        }
        out.update(self.extras)
        return out

    # --- files -----------------------------------------------------------------------------------
    def save(self, run_dir: str | Path) -> Path:
        """Write ``results.json`` into ``run_dir`` (per-instance rows in ``instances.csv`` when
        K > :data:`PER_INSTANCE_INLINE`); returns the json's path."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        payload = self.to_dict()
        if self.instances > PER_INSTANCE_INLINE:
            pd.DataFrame(payload.pop("per_instance")).to_csv(run_dir / INSTANCES_FILE, index=False)
            payload["per_instance_file"] = INSTANCES_FILE
        path = run_dir / RESULTS_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(
        cls, payload: dict[str, Any], rows: list[dict[str, Any]] | None = None
    ) -> Results:
        """Rebuild from a ``results.json`` payload (and its per-instance rows)."""
        known = {f for f in cls.__dataclass_fields__} | {
            "instances",
            "converged_instances",
            "max_exploitability",
            "relative_error",
            "max_relative_error",
            "relative_error_by_param",
            "per_instance",
            "per_instance_file",
        }
        k = int(payload["instances"])
        rows = rows if rows is not None else payload.get("per_instance")
        theta_hat = torch.as_tensor(payload["theta_hat"], dtype=torch.float64).reshape(k, -1)
        true = payload.get("theta_true")
        theta_true = (
            None if true is None else torch.as_tensor(true, dtype=torch.float64).reshape(k, -1)
        )
        if rows is not None:
            exploit = torch.tensor([float(r["exploitability"]) for r in rows], dtype=torch.float64)
            flags = [r["converged"] for r in rows]
            converged = (
                None
                if any(f is None or f != f for f in flags)  # None, or NaN read from a CSV
                else torch.tensor([bool(f) for f in flags])
            )
        else:
            exploit = torch.full((k,), float(payload["exploitability"]), dtype=torch.float64)
            converged = None
        rank = payload.get("identifiability_rank")
        identified = payload.get("identified")
        flags = None if rows is None else [r.get("identified") for r in rows]
        if flags and all(isinstance(f, bool) for f in flags):
            identified_k = torch.tensor(flags)
        else:
            identified_k = None if identified is None else torch.full((k,), bool(identified))
        intervals = payload.get("intervals")
        return cls(
            problem=payload.get("problem", "inverse"),
            param_names=list(payload["param_names"]),
            learned_params=list(payload["learned_params"]),
            theta_hat=theta_hat,
            theta_true=theta_true,
            exploitability=exploit,
            exploitability_exact=bool(payload["exploitability_exact"]),
            converged=converged,
            identified=identified_k,
            identifiability_rank=None
            if rank is None
            else torch.as_tensor(rank, dtype=torch.long).reshape(k),
            iterations=int(payload.get("iterations", 0)),
            wall_seconds=float(payload.get("wall_seconds", 0.0)),
            tol_exploitability=payload.get("tol_exploitability"),
            env=payload.get("env"),
            intervals=None if intervals is None else {n: tuple(v) for n, v in intervals.items()},
            exploitability_method=payload.get("exploitability_method"),
            extras={key: v for key, v in payload.items() if key not in known},
        )

    # --- console --------------------------------------------------------------------------------
    def summary(self, extra: list[str] | None = None) -> str:
        """The table a statsmodels user expects: θ̂ against the truth (instance 0 of K) with
        intervals where present, errors, exploitability, convergence — with a WARNING line when
        an instance did not converge — and ``extra`` lines."""
        names, k = self.param_names, self.instances
        hat, true = self.theta_hat[0], None if self.theta_true is None else self.theta_true[0]
        lines = [
            f"imitgame: {self.env or self.problem} — {k} instance(s), "
            f"{self.iterations} iterations, {self.wall_seconds:.1f} s"
        ]
        learned = self.learn_index
        width = max([8, *(len(names[i]) for i in learned[:SUMMARY_PARAMS])])
        shown = "" if k == 1 else " (instance 0)"
        ci = bool(self.intervals)
        head = f"  {'param':<{width}} {'true':>12} {'recovered':>12}"
        label = self.extras.get("interval_label", "95% interval")
        lines.append(head + (f" {label:>25}" if ci else "") + shown)
        for i in learned[:SUMMARY_PARAMS]:
            t = "—" if true is None else f"{float(true[i]):.6g}"
            row = f"  {names[i]:<{width}} {t:>12} {float(hat[i]):>12.6g}"
            if ci:
                low, high = self.intervals.get(names[i], (float("nan"), float("nan")))
                row += f" {f'[{low:.4g}, {high:.4g}]':>25}"
            lines.append(row)
        if len(learned) > SUMMARY_PARAMS:
            lines.append(
                f"  … {len(learned) - SUMMARY_PARAMS} more learned entries in results.json"
            )
        rel = self.relative_error
        if rel is not None:
            lines.append(f"  relative error  {float(rel.mean()):.3e} (mean over instances)")
            by_param = self.relative_error_by_param or {}
            if len(by_param) > 1:
                worst = max(by_param, key=by_param.get)
                lines.append(f"  worst parameter {worst}: {by_param[worst]:.3e} relative error")
        kind = self.exploitability_method or (
            "exact" if self.exploitability_exact else "ascent lower bound"
        )
        lines.append(f"  exploitability  {float(self.exploitability.mean()):.3e} ({kind})")
        lines += extra or []
        converged = self.converged_instances
        if converged is None:
            lines.append("  convergence     not tested (no algo.tol_exploitability)")
        else:
            lines.append(f"  converged       {converged} of {k} instance(s)")
        failed = converged is not None and converged < k
        if self.identified is not None and not bool(self.identified.all()):
            rank = _listed(self.identifiability_rank)
            if failed:
                lines.append(
                    f"  note: θ is not identified by these observations (rank {rank}), and the "
                    "run did not converge: θ̂ is not an inverse equilibrium either"
                )
            else:
                lines.append(
                    f"  note: θ is not identified by these observations (rank {rank}); θ̂ is an "
                    "inverse equilibrium, not necessarily the true θ"
                )
        if failed:
            tol = "none" if self.tol_exploitability is None else f"{self.tol_exploitability:.3g}"
            lines.append(
                f"  WARNING: {k - converged} of {k} instance(s) did not converge in "
                f"{self.iterations} iterations (largest exploitability "
                f"{float(self.exploitability.max()):.3g}; tolerance {tol})."
                " Try more algo.iterations, a smaller algo.lr_theta, algo=extragradient, or "
                "algo.destabilizer=best_response where the game has a closed-form best response."
            )
        return "\n".join(lines)


def load_run(path: str | Path) -> Results:
    """The :class:`Results` of a finished run folder (its ``results.json``, and
    ``instances.csv`` when the run wrote one)."""
    run_dir = Path(path)
    file = run_dir / RESULTS_FILE if run_dir.is_dir() else run_dir
    if not file.is_file():
        raise ImitgameError(f"{path}: no {RESULTS_FILE} (is it a finished run folder?)")
    payload = json.loads(file.read_text())
    rows = None
    if payload.get("per_instance_file"):
        rows = pd.read_csv(file.parent / payload["per_instance_file"]).to_dict("records")
    return Results.from_dict(payload, rows)
