"""The one runner: a problem of any registered kind, from a composed config to a run folder.

:func:`run` builds the game (``env``), looks the problem up in the registry by ``algo.problem``
(:mod:`imitgame.problems`), lets it wire itself from ``algo`` and ``data``, and drives its trainer
with TensorBoard, checkpoints (resume, and the last good state on NaN) and a progress bar; then it
writes ``results.json``, the convergence figure, the problem's artifacts and a console summary.
Nothing here depends on the problem's kind, on Hydra, on signals or on exit codes: the entry layer
(:mod:`imitgame.run.cli`) owns those.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from imitgame import checkpoint
from imitgame.config import DataConfig, check_kwargs, typed
from imitgame.errors import DivergenceError, ImitgameError, Interrupted, NotConverged
from imitgame.game.base import MarkovGame
from imitgame.game.finite import configure_equilibrium
from imitgame.problems import Problem, problem_spec
from imitgame.run.tracking import RunTracker

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"


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


def build_problem(cfg: DictConfig) -> tuple[Problem, Any]:
    """Game, registry entry, typed ``algo``/``data`` and the wired problem, from a config;
    returns the problem and its typed ``algo`` (every option filled in by the schema)."""
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
    game = configure_equilibrium(
        game,
        algo.equilibrium,
        qre_lambda=algo.qre_lambda,
        learn_lambda=algo.learn_lambda,
        grid=algo.qre_grid,
    )
    return spec.build(game, algo, data, cfg.seed), algo


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
    problem, algo = build_problem(cfg)
    if not resumed:
        # the options that ran, every one (``algo: auto`` leaves them to the problem's schema)
        cfg = OmegaConf.create(
            {**OmegaConf.to_container(cfg, resolve=True), "algo": dataclasses.asdict(algo)}
        )
        OmegaConf.save(cfg, run_dir / CONFIG)
    trainer = problem.trainer
    trainer.stop_event = stop
    objective = trainer.objective

    elapsed_before = 0.0
    history = None
    if resumed:
        state = checkpoint.load(run_dir / CHECKPOINT, problem.game.device)
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng"].cpu())  # RNG states are CPU byte tensors on any device
        if state.get("rollout_rng") is not None and objective.generator is not None:
            objective.generator.set_state(state["rollout_rng"].cpu())
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
    tracker.figure(run_dir / "convergence.png")
    results.env = env_name
    results.wall_seconds = elapsed_before + time.perf_counter() - started
    results.save(run_dir)
    summary = results.summary(problem.summary_lines(results)) + f"\n  run folder      {run_dir}"
    log = logging.getLogger("imitgame")
    if log.handlers:  # the command line's logging: the console and the run's train.log
        log.info(summary)
    else:  # a library call
        print(summary)
    if cfg.get("strict") and results.all_converged is False:
        k, converged = results.instances, results.converged_instances
        raise NotConverged(
            f"strict=true: {k - converged} of {k} instance(s) did not converge "
            f"(results in {run_dir})"
        )
    return results.to_dict()


class _default_dtype:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc: object) -> None:
        torch.set_default_dtype(self.previous)
