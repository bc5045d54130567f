"""The one runner: a problem of any registered kind, from a composed config to a run folder.

:func:`run` builds the game (``env``), looks the problem up in the registry by ``algo.problem``
(:mod:`imitgame.problems`), lets it wire itself from ``algo`` and ``data``, and drives its trainer
with TensorBoard, checkpoints (resume, and the last good state on NaN) and a progress bar; then it
writes ``results.json``, the convergence figure, the problem's artifacts and a console summary.
Nothing here depends on the problem's kind, on Hydra, on signals or on exit codes: the entry layer
(:mod:`imitgame.run.cli`) owns those.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from imitgame import checkpoint
from imitgame.config import DataConfig, check_kwargs, typed
from imitgame.errors import DivergenceError, ImitgameError, Interrupted, NotConverged
from imitgame.game.base import MarkovGame
from imitgame.problems import Problem, problem_spec
from imitgame.problems.base import PER_INSTANCE_INLINE
from imitgame.run.tracking import RunTracker, write_json

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
RESULTS = "results.json"
INSTANCES = "instances.csv"  # per-instance rows of a run with many instances
SUMMARY_PARAMS = 20  # learned entries printed in the console summary


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ImitgameError("device=cuda was requested but CUDA is not available on this machine")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ImitgameError(f"device={name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if name not in dtypes:
        raise ImitgameError(f"dtype={name!r} is not one of float32, float64")
    return dtypes[name]


def import_class(target: str) -> type:
    """The class named by a dotted path (``envs.cournot.Cournot``)."""
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ImitgameError(f"env._target_={target!r} cannot be imported") from None


def build_game(env_cfg: DictConfig) -> MarkovGame:
    """Instantiate ``env._target_`` after checking the options against its constructor."""
    if "_target_" not in env_cfg:
        raise ImitgameError("env config has no _target_ naming the game class")
    target = env_cfg._target_
    cls = import_class(target)
    kwargs = {
        k: v
        for k, v in OmegaConf.to_container(env_cfg, resolve=True).items()
        if not k.startswith("_")
    }
    if not (isinstance(cls, type) and issubclass(cls, MarkovGame)):
        raise ImitgameError(f"env._target_={target!r} is not an imitgame MarkovGame or StaticGame")
    check_kwargs(cls, kwargs, "env")
    return cls(**kwargs)


def build_problem(cfg: DictConfig) -> Problem:
    """Game, registry entry, typed ``algo``/``data`` and the wired problem, from a config."""
    if not isinstance(cfg.get("seed"), int):
        raise ImitgameError(f"bad value for seed: {cfg.get('seed')!r} is not an int")
    device = resolve_device(str(cfg.device))
    dtype = resolve_dtype(str(cfg.dtype))
    data = typed(DataConfig, cfg.data, "data")
    torch.manual_seed(cfg.seed)
    with _default_dtype(dtype):
        game = build_game(cfg.env)
    game = game.to(device=device, dtype=dtype)
    spec = problem_spec(cfg.algo.get("problem"), game)
    algo = typed(spec.config, cfg.algo, "algo")
    return spec.build(game, algo, data, cfg.seed)


def run(
    cfg: DictConfig,
    run_dir: Path,
    *,
    env_name: str | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One run end to end; returns the results written to ``results.json``.

    ``cfg.resume`` (a run folder) continues that run from its checkpoint, with its saved config.
    Setting ``stop`` ends the run after the current step with a checkpoint (:class:`Interrupted`).
    """
    threads = cfg.get("threads")
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ImitgameError(f"bad value for threads: {threads!r} is not a positive int")
        torch.set_num_threads(threads)
    resumed = cfg.get("resume")
    if resumed:
        run_dir = Path(str(resumed)).resolve()
        if not (run_dir / CHECKPOINT).is_file() or not (run_dir / CONFIG).is_file():
            raise ImitgameError(f"resume={resumed}: no {CHECKPOINT} and {CONFIG} in that folder")
        cfg = OmegaConf.load(run_dir / CONFIG)  # the run's own config, problem kind included
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / CONFIG, resolve=True)

    started = time.perf_counter()  # wall_seconds covers building, training and scoring
    problem = build_problem(cfg)
    trainer = problem.trainer
    trainer.stop_event = stop
    objective = trainer.objective

    elapsed_before = 0.0
    history = None
    if resumed:
        state = checkpoint.load(run_dir / CHECKPOINT, problem.game.device)
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng"])
        if state.get("rollout_rng") is not None and objective.generator is not None:
            objective.generator.set_state(state["rollout_rng"])
        objective.regret_weight = state.get("regret_weight", objective.regret_weight)
        problem.load_state_dict(state.get("problem", {}))
        elapsed_before = float(state["wall_seconds"])
        history = state["history"]
    tracker = RunTracker(
        run_dir,
        problem.game.param_names,
        problem.learn_index,
        problem.theta_true,
        purge_step=trainer.step_count if resumed else None,
        history=history,
    )
    if not resumed:
        tracker.log_config(OmegaConf.to_yaml(cfg))

    def save() -> None:
        checkpoint.save_atomic(
            {
                "trainer": trainer.state_dict(),
                "rng": torch.get_rng_state(),
                "rollout_rng": None
                if objective.generator is None
                else objective.generator.get_state(),
                "history": tracker.history,
                "regret_weight": objective.regret_weight,  # λ may move (dual ascent)
                "problem": problem.state_dict(),
                "wall_seconds": elapsed_before + time.perf_counter() - started,
            },
            run_dir / CHECKPOINT,
        )

    last_saved = trainer.step_count
    try:
        for record in trainer.iterate(progress=bool(cfg.progress)):
            scalars = problem.on_record(record)
            tracker.log(record)
            for key, value in scalars.items():
                tracker.writer.add_scalar(key, value, record.step)
            if record.step - last_saved >= trainer.config.checkpoint_every:
                save()
                last_saved = record.step
    except DivergenceError as err:
        tracker.close()
        save()  # the trainer checks before it steps, so this state is still finite
        raise DivergenceError(
            f"{err}; last good state saved in {run_dir / CHECKPOINT}", err.step
        ) from None
    save()
    tracker.close()
    if trainer.stop_requested:
        raise Interrupted(f"interrupted at step {trainer.step_count}; resume with resume={run_dir}")

    results = problem.results()
    problem.save_artifacts(run_dir, OmegaConf.to_container(cfg.env, resolve=True))
    if results["instances"] > PER_INSTANCE_INLINE:
        rows = results.pop("per_instance")
        pd.DataFrame(rows).to_csv(run_dir / INSTANCES, index=False)
        results["per_instance_file"] = INSTANCES
    tolerance = trainer.config.tol_exploitability
    wall = elapsed_before + time.perf_counter() - started
    results.update(
        env=env_name,
        iterations=trainer.step_count,
        tol_exploitability=tolerance,
        wall_seconds=wall,
    )
    write_json(run_dir / RESULTS, results)
    tracker.figure(run_dir / "convergence.png")
    print_summary(results, run_dir, problem.summary_lines(results))
    converged = results["converged_instances"]
    if cfg.get("strict") and converged is not None and converged < results["instances"]:
        raise NotConverged(
            f"strict=true: {results['instances'] - converged} of {results['instances']} "
            f"instance(s) did not converge (results in {run_dir})"
        )
    return results


def print_summary(results: dict[str, Any], run_dir: Path, extra: list[str]) -> None:
    """The console summary: θ̂ against the truth (instance 0 of K), errors, exploitability,
    convergence — a WARNING line whenever an instance did not converge — and the problem's
    lines."""
    names = results["param_names"]
    k = results["instances"]
    hat = results["theta_hat"] if k == 1 else results["theta_hat"][0]
    true = results["theta_true"]
    if true is not None and k > 1:
        true = true[0]
    lines = [
        f"imitgame: {results['env']} — {k} instance(s), "
        f"{results['iterations']} iterations, {results['wall_seconds']:.1f} s"
    ]
    learned = [i for i, name in enumerate(names) if name in results["learned_params"]]
    width = max([8, *(len(names[i]) for i in learned[:SUMMARY_PARAMS])])
    shown = "" if k == 1 else " (instance 0)"
    lines.append(f"  {'param':<{width}} {'true':>12} {'recovered':>12}{shown}")
    for i in learned[:SUMMARY_PARAMS]:
        t = "—" if true is None else f"{true[i]:.6g}"
        lines.append(f"  {names[i]:<{width}} {t:>12} {hat[i]:>12.6g}")
    if len(learned) > SUMMARY_PARAMS:
        lines.append(f"  … {len(learned) - SUMMARY_PARAMS} more learned entries in results.json")
    if results["relative_error"] is not None:
        lines.append(f"  relative error  {results['relative_error']:.3e} (mean over instances)")
        by_param = results.get("relative_error_by_param") or {}
        if len(by_param) > 1:
            worst = max(by_param, key=by_param.get)
            lines.append(f"  worst parameter {worst}: {by_param[worst]:.3e} relative error")
    kind = "exact" if results["exploitability_exact"] else "ascent lower bound"
    lines.append(f"  exploitability  {results['exploitability']:.3e} ({kind})")
    lines += extra
    converged = results["converged_instances"]
    if converged is None:
        lines.append("  convergence     not tested (no algo.tol_exploitability)")
    else:
        lines.append(f"  converged       {converged} of {k} instance(s)")
    failed = converged is not None and converged < k
    if results["identified"] is False:
        if failed:
            lines.append(
                "  note: θ is not identified by these observations (rank "
                f"{results['identifiability_rank']}), and the run did not converge: θ̂ is not an "
                "inverse equilibrium either"
            )
        else:
            lines.append(
                "  note: θ is not identified by these observations (rank "
                f"{results['identifiability_rank']}); θ̂ is an inverse equilibrium, "
                "not necessarily the true θ"
            )
    if failed:
        lines.append(
            f"  WARNING: {k - converged} of {k} instance(s) did not converge in "
            f"{results['iterations']} iterations (exploitability up to "
            f"{results['max_exploitability']:.3g} > tolerance {results['tol_exploitability']:.3g})."
            " Try more algo.iterations, a smaller algo.lr_theta, algo=extragradient, or "
            "algo.destabilizer=best_response where the game has a closed-form best response."
        )
    lines.append(f"  run folder      {run_dir}")
    print("\n".join(lines))


class _default_dtype:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc: object) -> None:
        torch.set_default_dtype(self.previous)
