"""The entry point's code: one run of an inverse problem, from a composed Hydra config.

``train.py`` hands the composed config to :func:`main`, which builds the game and the observed
behaviour, the stabilizer (θ) and destabilizer (ρ), runs the GDA trainer with TensorBoard,
checkpoints and a progress bar, and writes ``results.json``, the figure and a console summary.
Inverse learning of one-shot and Markov games and simulacral learning (``algo=simulacral``: θ and
an equilibrium fitted to partial observations, plus ``model.pt``) share this one flow: resume,
NaN stop, interruption and TensorBoard work the same for all three.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from imitgame.config import (
    AlgoConfig,
    DataConfig,
    MarkovConfig,
    SimulacralConfig,
    check_kwargs,
    typed,
)
from imitgame.data.observed import ObservedPlay, load_observed, simulate_observed
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.problems.inverse import build_inverse, score
from imitgame.problems.markov import (
    MarkovInverseProblem,
    build_markov_inverse,
    score_markov,
)
from imitgame.problems.simulacral import MODEL, save_model, update_lambda
from imitgame.problems.simulacral import problem_from_game as simulacral_problem
from imitgame.problems.simulacral import results_of as simulacral_results
from imitgame.run import checkpoint
from imitgame.run.tracking import RunTracker, as_list, write_json
from imitgame.solver.forward import solve_static_equilibrium

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
SUMMARY_PARAMS = 20  # learned entries printed in the console summary
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """The run was stopped by a signal after a checkpoint was written."""


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


def build_game(env_cfg: DictConfig) -> MarkovGame:
    """Instantiate ``env._target_`` after checking the options against its constructor."""
    if "_target_" not in env_cfg:
        raise ImitgameError("env config has no _target_ naming the game class")
    target = env_cfg._target_
    try:
        cls = hydra.utils.get_class(target)
    except Exception:
        raise ImitgameError(f"env._target_={target!r} cannot be imported") from None
    kwargs = {
        k: v
        for k, v in OmegaConf.to_container(env_cfg, resolve=True).items()
        if not k.startswith("_")
    }
    if not (isinstance(cls, type) and issubclass(cls, MarkovGame)):
        raise ImitgameError(f"env._target_={target!r} is not an imitgame MarkovGame or StaticGame")
    check_kwargs(cls, kwargs, "env")
    return cls(**kwargs)


def true_params(game: MarkovGame, data: DataConfig, generator: torch.Generator) -> torch.Tensor:
    """Synthetic truth ``[K, p]``: the env's ``true_params``, learned entries spread out."""
    if game.true_params is None:
        raise ImitgameError(f"{type(game).__name__} has no true_params to simulate data from")
    k = data.instances
    # drawn on the CPU so that the data are the same on every device
    theta = game.true_params.detach().cpu().expand(k, game.param_dim).clone()
    if data.param_spread > 0:
        learn = torch.tensor([n in game.learned_params for n in game.param_names])
        u = torch.rand(theta.shape, generator=generator, dtype=theta.dtype) * 2 - 1
        spread = theta * (1 + data.param_spread * u)
        theta = torch.where(learn, spread, theta)
        low, high = game.param_low.detach().cpu(), game.param_high.detach().cpu()
        theta = torch.maximum(torch.minimum(theta, high), low)  # Θ, without moving the game
    return theta.to(game.device)


def make_observed(game: StaticGame, data: DataConfig, seed: int) -> ObservedPlay:
    if data.source == "file":
        return load_observed(hydra.utils.to_absolute_path(str(data.path)), game)
    generator = torch.Generator().manual_seed(seed)
    theta = true_params(game, data, generator)
    return simulate_observed(
        game,
        theta,
        noise_std=data.noise_std,
        generator=generator,
        solver=lambda g, th, st: solve_static_equilibrium(g, th, st)[0],
    )


def build_markov(
    game: MarkovGame, algo: MarkovConfig, data: DataConfig, seed: int
) -> MarkovInverseProblem:
    """A Markov game's inverse problem: a queryable equilibrium policy, or a trajectory file."""
    if data.source == "file":
        known = game.true_params
        if known is None:
            raise ImitgameError(f"{type(game).__name__} has no configured parameters")
        theta_known = known.detach().expand(data.instances, game.param_dim).clone()
        dataset = hydra.utils.to_absolute_path(str(data.path))
        return build_markov_inverse(
            game, algo, theta_true=None, theta_known=theta_known, dataset=dataset, seed=seed
        )
    theta = true_params(game, data, torch.Generator().manual_seed(seed))
    theta = theta.to(device=game.device, dtype=game.dtype)
    return build_markov_inverse(game, algo, theta_true=theta, theta_known=theta, seed=seed)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One inverse run end to end; returns the results written to ``results.json``."""
    threads = cfg.get("threads")
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ImitgameError(f"bad value for threads: {threads!r} is not a positive int")
        torch.set_num_threads(threads)
    resumed = cfg.get("resume")
    if resumed:
        run_dir = Path(hydra.utils.to_absolute_path(str(resumed)))
        if not (run_dir / CHECKPOINT).is_file() or not (run_dir / CONFIG).is_file():
            raise ImitgameError(f"resume={resumed}: no {CHECKPOINT} and {CONFIG} in that folder")
        cfg = OmegaConf.load(run_dir / CONFIG)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / CONFIG, resolve=True)
    simulacral = cfg.algo.get("problem") == "simulacral"  # Algorithm 3; a resume: the run's own

    if not isinstance(cfg.get("seed"), int):
        raise ImitgameError(f"bad value for seed: {cfg.get('seed')!r} is not an int")
    device = resolve_device(str(cfg.device))
    dtype = resolve_dtype(str(cfg.dtype))
    data = typed(DataConfig, cfg.data, "data")
    torch.manual_seed(cfg.seed)

    with _default_dtype(dtype):
        game = build_game(cfg.env)
    static = isinstance(game, StaticGame)
    if simulacral:
        if not static:
            raise ImitgameError(f"{type(game).__name__}: simulacral learning needs a StaticGame")
        algo = typed(SimulacralConfig, cfg.algo, "algo")
        game = game.to(device=device, dtype=dtype)
        problem, theta_true = simulacral_problem(game, algo)
    elif static:
        algo = typed(AlgoConfig, cfg.algo, "algo")
        observed = (
            make_observed(game, data, cfg.seed).to(device, dtype).validate(game.to(device, dtype))
        )
        game = game.to(device=device, dtype=dtype)
        problem = build_inverse(game, observed, algo)
        theta_true = observed.theta_true
    else:
        algo = typed(MarkovConfig, cfg.algo, "algo")
        game = game.to(device=device, dtype=dtype)
        problem = build_markov(game, algo, data, cfg.seed)
        theta_true = problem.theta_true
    trainer = problem.trainer

    elapsed_before = 0.0
    history = None
    if resumed:
        state = checkpoint.load(run_dir / CHECKPOINT, device)
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng"])
        if state.get("rollout_rng") is not None and trainer.objective.generator is not None:
            trainer.objective.generator.set_state(state["rollout_rng"])
        trainer.objective.regret_weight = state.get("regret_weight", algo.regret_weight)
        elapsed_before = float(state["wall_seconds"])
        history = state["history"]
    tracker = RunTracker(
        run_dir,
        game.param_names,
        problem.learn_index,
        theta_true,
        purge_step=trainer.step_count if resumed else None,
        history=history,
    )
    if not resumed:
        tracker.log_config(OmegaConf.to_yaml(cfg))

    started = time.perf_counter()

    def save() -> None:
        checkpoint.save_atomic(
            {
                "trainer": trainer.state_dict(),
                "rng": torch.get_rng_state(),
                "rollout_rng": None
                if trainer.objective.generator is None
                else trainer.objective.generator.get_state(),
                "history": tracker.history,
                "regret_weight": trainer.objective.regret_weight,  # λ moves under dual ascent
                "wall_seconds": elapsed_before + time.perf_counter() - started,
            },
            run_dir / CHECKPOINT,
        )

    def request_stop(signum: int, frame: Any) -> None:
        trainer.stop_requested = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    last_saved = trainer.step_count
    try:
        for record in trainer.iterate(progress=bool(cfg.progress)):
            if simulacral:
                update_lambda(problem, record)
            tracker.log(record)
            if hasattr(problem, "diagnostics"):
                for key, value in problem.diagnostics().items():
                    tracker.writer.add_scalar(key, value, record.step)
            if record.step - last_saved >= algo.checkpoint_every:
                save()
                last_saved = record.step
    except DivergenceError as err:
        tracker.close()
        save()  # the trainer checks before it steps, so this state is still finite
        raise DivergenceError(
            f"{err}; last good state saved in {run_dir / CHECKPOINT}", err.step
        ) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if trainer.stop_requested:
        save()
        tracker.close()
        raise Interrupted(f"interrupted at step {trainer.step_count}; resume with resume={run_dir}")
    save()
    tracker.close()

    wall = elapsed_before + time.perf_counter() - started
    if simulacral:
        results, theta_hat = simulacral_results(problem, theta_true)
        save_model(run_dir / MODEL, theta_hat, cfg.env, game)
    else:
        results = inverse_results(problem, game, theta_true)
    results.update(env=_choice("env"), iterations=trainer.step_count, wall_seconds=wall)
    write_json(run_dir / "results.json", results)
    tracker.figure(run_dir / "convergence.png")
    print_summary(results, run_dir)
    return results


def inverse_results(
    problem: Any, game: MarkovGame, theta_true: torch.Tensor | None
) -> dict[str, Any]:
    """The entries of ``results.json`` for inverse learning (one-shot or Markov game)."""
    static = isinstance(game, StaticGame)
    result = score(problem) if static else score_markov(problem)
    rel = result.relative_error
    if static:
        exact = game.has_best_response
        identified = bool(result.identified.all())
        rank = as_list(problem.identifiability.rank)
    else:
        exact = result.exploitability_closed_form is not None
        identified, rank = None, None  # no first-order rank test for Markov games
    results = {
        "param_names": game.param_names,
        "learned_params": [game.param_names[i] for i in problem.learn_index.tolist()],
        "theta_hat": as_list(result.theta_hat),
        "theta_true": as_list(theta_true),
        "exploitability": float(result.exploitability.mean()),
        "exploitability_exact": exact,
        "relative_error": None if rel is None else float(rel.mean()),
        "max_relative_error": None if rel is None else float(rel.max()),
        "identified": identified,
        "identifiability_rank": rank,
        "instances": problem.trainer.stabilizer.n_instances,
        "converged_instances": int(result.converged.sum()),
    }
    if not static:
        closed = result.exploitability_closed_form
        results["exploitability_best_response"] = float(result.exploitability_best_response.mean())
        results["exploitability_closed_form"] = None if closed is None else float(closed.mean())
        results.update(result.extras)
    return results


def print_summary(results: dict[str, Any], run_dir: Path) -> None:
    names = results["param_names"]
    hat = results["theta_hat"] if results["instances"] == 1 else results["theta_hat"][0]
    true = results["theta_true"]
    if true is not None and results["instances"] > 1:
        true = true[0]
    lines = [
        f"imitgame: {results['env']} — {results['instances']} instance(s), "
        f"{results['iterations']} iterations, {results['wall_seconds']:.1f} s"
    ]
    learned = [i for i, name in enumerate(names) if name in results["learned_params"]]
    width = max([8, *(len(names[i]) for i in learned[:SUMMARY_PARAMS])])
    lines.append(f"  {'param':<{width}} {'true':>12} {'recovered':>12}")
    for i in learned[:SUMMARY_PARAMS]:
        t = "—" if true is None else f"{true[i]:.6g}"
        lines.append(f"  {names[i]:<{width}} {t:>12} {hat[i]:>12.6g}")
    if len(learned) > SUMMARY_PARAMS:
        lines.append(f"  … {len(learned) - SUMMARY_PARAMS} more learned entries in results.json")
    if results["relative_error"] is not None:
        lines.append(f"  relative error  {results['relative_error']:.3e} (mean over instances)")
    kind = "exact" if results["exploitability_exact"] else "ascent lower bound"
    lines.append(f"  exploitability  {results['exploitability']:.3e} ({kind})")
    if results.get("problem") == "simulacral":
        lines.append(
            f"  observation loss {results['observation_loss']:.4g}; the fitted game's "
            f"equilibrium: MSE {results['equilibrium_mse']}, exploitability "
            f"{results['equilibrium_exploitability']} (λ = {results['regret_weight']:.3g})"
        )
    if "exploitability_best_response" in results:
        lines.append(
            f"  exploitability  {results['exploitability_best_response']:.3e} "
            "(separately trained best response)"
        )
    if results["identified"] is False:
        lines.append(
            "  note: θ is not identified by these observations (rank "
            f"{results['identifiability_rank']}); θ̂ is an inverse equilibrium, "
            "not necessarily the true θ"
        )
    lines.append(f"  run folder      {run_dir}")
    print("\n".join(lines))


def _choice(group: str) -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get(group)
    except Exception:
        return None


class _default_dtype:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc: object) -> None:
        torch.set_default_dtype(self.previous)


def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task function: errors become one line on stderr and a non-zero exit code."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run(cfg, run_dir)
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except DivergenceError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except Interrupted as err:
        print(str(err), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
