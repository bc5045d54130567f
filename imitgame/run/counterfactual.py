"""Counterfactuals of a finished run: the fitted game, changed, solved again by the same trainer.

:func:`counterfactual` takes θ̂ of a finished run folder (``results.json``, instance 0 by
default) and the game it was fitted in (``config.yaml``'s ``env``), applies *changes* and solves
the forward problem before (θ̂, the run's game) and after (the changed θ and game) with
:func:`imitgame.solver.forward.solve_equilibrium` — the one GDA trainer, with the exact
best-response oracle where the game has one. Changes name

* a parameter of the game (``c_0=25``, ``alpha=0.5``): its value in the changed game;
* an input of the game, ``env.KEY=VALUE``: an override of the run's env config (``env.n_firms=2``,
  ``env.demand_shifters=[1.2]``, ``env.wind_scale=1.5``). Fewer agents (``env.n_firms=N-1``, or
  ``remove_agent=[i]``) drop the removed agents' parameters — those whose names end in ``_i`` —
  and renumber the rest; by default the last agents are the ones removed.

``setting`` overrides apply before *and* after (where the change is evaluated, e.g. the period of
an electricity market: ``env.period=[2016-03-01,2016-03-31]``).

What is reported, for every game, through the base contract and the declared hooks only
(:mod:`imitgame.game.hooks`):

* one-shot games: equilibrium actions per observed context ``[B, n]``, payoffs (``payoffs_in``),
  and a price where the game has one — its ``observation_map`` (a declared hook: what is observed
  of a play, e.g. the electricity price) or else an ``inverse_demand(total, theta, context)``
  method (Cournot); the closed-form ``equilibrium`` beside the solver's answer as a check;
* Markov games: the mean path of the equilibrium policy over the horizon (actions and states,
  from sampled episodes with common shocks before and after) and mean discounted returns; the
  closed-form ``equilibrium_policy`` beside it where the game has one;
* the exploitability of each solution (exact against a closed-form best response, else a lower
  bound by a trained deviation);
* with bootstrap intervals in ``results.json`` (``intervals: {name: [low, high]}``), the same
  solves at each interval's ends (one parameter at a time, batched as instances; both corners
  when more than :data:`MAX_INTERVAL_PARAMS` parameters have one) and the range of every
  reported number over them.

Two optional game attributes, looked up by name, refine the report: ``observation_labels()``
(labels of the rows of ``observed_contexts()``, e.g. ``{"date": [...], "hour": [...]}``; the
label with the fewest distinct values groups the price change in the figure, e.g. by hour of
the day) and ``agent_options`` (constructor options that hold one entry per agent, e.g. an
electricity market's ``costs``: a removed agent's entry is cut from them).

The result is written to ``RUN_DIR/counterfactuals/<name>/counterfactual.json`` with a figure
``counterfactual.png`` beside it. ``scripts/counterfactual.py`` is the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from imitgame.config import GDAConfig, MarkovConfig, typed
from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.hooks import provides
from imitgame.game.strategies import Strategy
from imitgame.problems import problem_spec
from imitgame.results import Results, load_run
from imitgame.run.runner import CONFIG, build_game, resolve_device, resolve_dtype
from imitgame.solver.forward import DEFAULT_FORWARD, solve_equilibrium, solve_static_equilibrium
from imitgame.solver.rollout import episode_generator, sample_trajectories

FOLDER = "counterfactuals"
REPORT = "counterfactual.json"
FIGURE = "counterfactual.png"
#: up to this many parameters with an interval are varied one at a time (2 solves each); more:
#: the two corners (every parameter at its low end, every one at its high end)
MAX_INTERVAL_PARAMS = 16
#: a price change within this fraction of max(1, |price|) counts as unchanged in the rose/fell
#: counts: the forward solver's accuracy (exploitability 1e-10 puts actions within ~1e-5)
CHANGE_TOLERANCE = 1e-4
_AGENT_SUFFIX = re.compile(r"^(.*)_(\d+)$")


# --- parsing -----------------------------------------------------------------------------------
def parse_assignments(items: Sequence[str], what: str = "change") -> dict[str, Any]:
    """``["c_0=25", "env.demand_shifters=[1.2]"]`` -> ``{"c_0": 25, "env.demand_shifters":
    [1.2]}``, values in Hydra's override grammar (numbers, lists, ``null``, strings)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ImitgameError(f"{what} {item!r} is not KEY=VALUE")
        try:
            (override,) = parser.parse_overrides([item])
        except HydraException as err:
            raise ImitgameError(f"{what} {item!r}: {str(err).splitlines()[0]}") from None
        value = override.value()
        out[override.key_or_group] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """Hydra's parsed values (lists, dicts, sweeps are rejected) as plain Python."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ImitgameError(f"a sweep or function value ({value}) is not a single change")


def default_name(
    changes: dict[str, Any], remove_agent: Sequence[int] | None = None, max_len: int = 80
) -> str:
    """A folder name from the changes: ``c_0=25``, ``wind_scale=1.5,remove_agent=1``."""
    parts = [f"{k.removeprefix('env.')}={_compact(v)}" for k, v in changes.items()]
    parts += [f"remove_agent={i}" for i in remove_agent or []]
    name = re.sub(r"[^A-Za-z0-9_.=,+\-\[\]]", "_", ",".join(parts)) or "baseline"
    if len(name) > max_len:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[: max_len - 12] + "..." + digest
    return name


def _compact(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    return str(value)


# --- the counterfactual ------------------------------------------------------------------------
@dataclasses.dataclass
class _Scenario:
    """One side (before or after): the game, θ variants ``[K, p]`` (row 0: the estimate) and
    the run's name of each of its agents (an agent the change added: its own name + " (new)")."""

    game: MarkovGame
    theta: Tensor
    agents: list[str]


def counterfactual(
    run_dir: str | Path,
    changes: dict[str, Any],
    *,
    name: str | None = None,
    instance: int = 0,
    setting: dict[str, Any] | None = None,
    remove_agent: Sequence[int] | None = None,
    solver: dict[str, Any] | None = None,
    device: str = "cpu",
    figure: bool = True,
) -> dict[str, Any]:
    """Solve the fitted game of ``run_dir`` before and after ``changes``; write and return the
    report (see the module docstring).

    ``changes``: ``{param_name: value}`` and ``{"env.KEY": value}``; ``setting``: ``env.KEY``
    overrides applied before and after; ``remove_agent``: indices of agents to remove (their
    ``_i`` parameters are dropped, the env's agent count lowered); ``solver``: overrides of the
    forward solver's config (a :class:`GDAConfig` for one-shot games, starting from
    :data:`~imitgame.solver.forward.DEFAULT_FORWARD`; the run's own :class:`MarkovConfig` for
    Markov games, e.g. ``forward_iterations``). Returns the dict written to
    ``counterfactual.json`` plus ``path`` (its location)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG
    if not cfg_path.is_file():
        raise ImitgameError(f"{run_dir}: no {CONFIG} (is it a finished run folder?)")
    cfg = OmegaConf.load(cfg_path)
    dtype = resolve_dtype(str(cfg.get("dtype", "float64")))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # as the run had it (tensors made inside the solvers)
    try:
        return _counterfactual(
            run_dir, cfg, changes, name, instance, setting, remove_agent, solver, device, figure
        )
    finally:
        torch.set_default_dtype(previous)


def _counterfactual(
    run_dir: Path,
    cfg: DictConfig,
    changes: dict[str, Any],
    name: str | None,
    instance: int,
    setting: dict[str, Any] | None,
    remove_agent: Sequence[int] | None,
    solver: dict[str, Any] | None,
    device: str,
    figure: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    if name is not None and (not name or "/" in name or "\\" in name or name.startswith(".")):
        raise ImitgameError(f"--name {name!r} is not a plain folder name")
    results = load_run(run_dir)
    if not 0 <= instance < results.instances:
        raise ImitgameError(
            f"instance {instance} is out of range: the run has {results.instances} instance(s)"
        )
    param_changes, env_changes = _split_changes(changes, results.param_names)
    setting = {_env_key(k, "setting"): v for k, v in (setting or {}).items()}
    dtype = torch.get_default_dtype()
    dev = resolve_device(device)

    env_before = _override(cfg.env, setting)
    before_game = _build(env_before, dtype, dev, "the run's game")
    names_before = list(before_game.param_names)
    if names_before != results.param_names:
        raise ImitgameError(
            f"the run's env config builds a game with parameters {names_before[:5]}…, "
            f"results.json has {results.param_names[:5]}…"
        )
    theta_hat = results.theta_hat[instance].to(device=dev, dtype=dtype)
    variants, labels, interval_note = _interval_variants(results, theta_hat)
    before = _Scenario(before_game, variants, list(before_game.possible_agents))

    removed, env_after_changes, removal_note = _removal(
        env_before, before_game, env_changes, remove_agent
    )
    env_after = _override(env_before, env_after_changes)
    env_after = _cut_agent_options(env_after, before_game, removed, set(env_changes))
    after_game = _build(env_after, dtype, dev, "the changed game")
    n_expected = before_game.n_agents - len(removed)
    if removed and after_game.n_agents != n_expected:
        raise ImitgameError(
            f"removing agent(s) {removed} should leave {n_expected} agent(s); "
            f"the changed game has {after_game.n_agents}"
        )
    theta_after, mapping = _map_theta(variants, before_game, after_game, removed, param_changes)
    kept = [i for i in range(before_game.n_agents) if i not in removed]
    agents_after = [
        before_game.possible_agents[kept[j]] if j < len(kept) else f"{name_j} (new)"
        for j, name_j in enumerate(after_game.possible_agents)
    ]
    after = _Scenario(after_game, theta_after, agents_after)

    seed = int(cfg.get("seed", 0))
    spec = problem_spec(cfg.algo.get("problem"), before_game) if "algo" in cfg else None
    solved_before, method = _solve(before, cfg, spec, solver, seed, None)
    solved_after, method_after = _solve(after, cfg, spec, solver, seed, (solved_before, kept))
    for key in ("start", "observations"):  # what may differ between the two sides
        if key in method:
            method[key] = {"before": method[key], "after": method_after[key]}
    solved_after["estimate"].pop("observed_mean", None)  # observed data are of the run's game

    report: dict[str, Any] = {
        "run": str(run_dir),
        "env": results.env or _short_target(cfg.env),
        "game": str(cfg.env.get("_target_")),
        "name": name or default_name(changes, remove_agent),
        "instance": instance,
        "changes": {**changes, **({"remove_agent": list(removed)} if removed else {})},
        "setting": setting or None,
        "removed_agents": [before_game.possible_agents[i] for i in removed],
        "parameters": {
            "changed": {
                k: [mapping["before"].get(k), float(theta_after[0, after_game.param_index(k)])]
                for k in param_changes
            },
            "dropped": mapping["dropped"],
            "renamed": mapping["renamed"],
            "env": _env_differences(env_before, env_after, set(env_after_changes)),
        },
        "notes": [removal_note] if removal_note else [],
        "method": method,
        "before": solved_before["estimate"],
        "after": solved_after["estimate"],
        "difference": _difference(solved_before["estimate"], solved_after["estimate"]),
        "intervals": None
        if results.intervals is None
        else {k: list(v) for k, v in results.intervals.items()},
        "interval_note": interval_note,
    }
    report["notes"] += _convergence_notes(method, report["before"], report["after"])
    if len(labels) > 1:
        report["ranges"] = _ranges(solved_before["variants"], solved_after["variants"], labels)
    report["wall_seconds"] = time.perf_counter() - started

    out_dir = run_dir / FOLDER / report["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=True))
    tmp.replace(path)
    if figure:
        plot(report, out_dir / FIGURE)
    return {**report, "path": str(path)}


# --- changes -----------------------------------------------------------------------------------
def _convergence_notes(
    method: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> list[str]:
    """A note for each side whose forward solve stopped above its exploitability tolerance
    (where the exploitability is exact); ``method["converged"]`` records both sides."""
    tol = (method.get("solver_config") or {}).get("tol_exploitability")
    if tol is None or not str(method.get("exploitability", "")).startswith("exact"):
        return []
    notes, converged = [], {}
    for side, entry in (("before", before), ("after", after)):
        exploitability = float(entry["exploitability"])
        converged[side] = exploitability <= tol
        if not converged[side]:
            gap = (entry.get("closed_form") or {}).get("max_abs_action_difference")
            closed = "" if gap is None else f"; its actions are {gap:.3g} from the closed form"
            notes.append(
                f"the {side} equilibrium did not converge: the forward solve stopped at "
                f"exploitability {exploitability:.3g}, above its tolerance {tol:.3g} "
                f"(raise --solver iterations=…){closed}"
            )
    method["converged"] = converged
    return notes


def _env_key(key: str, what: str) -> str:
    if not key.startswith("env."):
        raise ImitgameError(f"{what} {key!r}: only env.KEY inputs can be set here")
    return key.removeprefix("env.")


def _split_changes(
    changes: dict[str, Any], param_names: list[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    """(parameter changes ``{name: float}``, env overrides ``{KEY: value}``)."""
    params: dict[str, float] = {}
    env: dict[str, Any] = {}
    for key, value in changes.items():
        if key.startswith("env."):
            env[key.removeprefix("env.")] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ImitgameError(f"parameter change {key}={value!r} is not a number")
        if key not in param_names and not _AGENT_SUFFIX.match(key):
            shown = ", ".join(param_names[:12]) + (" …" if len(param_names) > 12 else "")
            raise ImitgameError(
                f"unknown change {key!r}: name a parameter ({shown}) or an input as env.KEY"
            )
        params[key] = float(value)
    return params, env


def _override(env: DictConfig, overrides: dict[str, Any]) -> DictConfig:
    """A copy of ``env`` with ``{dotted.key: value}`` set (new keys allowed: the constructor's
    signature checks them)."""
    out = copy.deepcopy(env)
    OmegaConf.set_struct(out, False)
    for key, value in overrides.items():
        OmegaConf.update(out, key, value, merge=False)
    return out


def _get(env: DictConfig, key: str) -> Any:
    """``env``'s value at dotted ``key`` as plain Python (None where absent)."""
    value = OmegaConf.select(env, key)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _env_differences(before: DictConfig, after: DictConfig, keys: set[str]) -> dict[str, Any]:
    """``{key: [before, after]}`` for every top-level option that differs and every key in
    ``keys`` (dotted overrides)."""
    names = {str(k) for k in (*before.keys(), *after.keys())} | keys
    pairs = {k: [_get(before, k), _get(after, k)] for k in sorted(names)}
    return {k: v for k, v in pairs.items() if v[0] != v[1]}


def _build(env: DictConfig, dtype: torch.dtype, device: torch.device, what: str) -> MarkovGame:
    """The game of ``env`` (under the default dtype the caller set), on ``device``."""
    try:
        game = build_game(env)
    except ImitgameError as err:
        raise ImitgameError(f"{what}: {err}") from None
    return game.to(device=device, dtype=dtype)


def _removal(
    env: DictConfig,
    game: MarkovGame,
    env_changes: dict[str, Any],
    remove_agent: Sequence[int] | None,
) -> tuple[list[int], dict[str, Any], str | None]:
    """The agents removed (sorted indices), the env overrides that remove them, and a note."""
    n = game.n_agents
    counts = [k for k, v in env.items() if str(k).startswith("n_") and v == n and type(v) is int]
    named = [k for k in counts if k in env_changes]
    removed = sorted({int(i) for i in remove_agent or []})
    bad = [i for i in removed if not 0 <= i < n]
    if bad:
        raise ImitgameError(f"remove_agent {bad}: the game has agents 0..{n - 1}")
    if removed and len(removed) >= n:
        raise ImitgameError("remove_agent would remove every agent")
    overrides = dict(env_changes)
    if not named and not removed:
        return [], overrides, None
    if len(named) > 1 or (not named and len(counts) != 1):
        options = ", ".join(f"env.{k}" for k in counts) or "none"
        raise ImitgameError(
            f"cannot tell which env option counts the agents (n = {n}; candidates: {options}): "
            "set it with the removal, e.g. env.n_firms=N-1"
        )
    key = named[0] if named else counts[0]
    target = env_changes.get(key, n - len(removed))
    if not isinstance(target, int) or target < 1:
        raise ImitgameError(f"env.{key}={target!r} is not a positive number of agents")
    if removed and target != n - len(removed):
        raise ImitgameError(
            f"env.{key}={target} does not match removing {len(removed)} of {n} agent(s)"
        )
    overrides[key] = target
    note = None
    if not removed and target < n:
        removed = list(range(target, n))
        agents = ", ".join(game.possible_agents[i] for i in removed)
        note = (
            f"env.{key}={target} removes the last agent(s): {agents} "
            "(remove_agent / --remove-agent I picks which)"
        )
    return removed, overrides, note


def _cut_agent_options(
    env: DictConfig, game: MarkovGame, removed: list[int], given: set[str]
) -> DictConfig:
    """Cut the removed agents' entries from the options the game declares per agent
    (``agent_options``), unless the change sets them itself."""
    if not removed:
        return env
    out = copy.deepcopy(env)
    for key in getattr(game, "agent_options", ()):
        value = out.get(key)
        if key in given or value is None or not OmegaConf.is_list(value):
            continue
        if len(value) == game.n_agents:
            out[key] = [v for i, v in enumerate(value) if i not in removed]
    return out


def _map_theta(
    variants: Tensor,
    before: MarkovGame,
    after: MarkovGame,
    removed: list[int],
    changes: dict[str, float],
) -> tuple[Tensor, dict[str, Any]]:
    """θ of the changed game ``[K, p']`` for each variant ``[K, p]``: each parameter by name
    (a removed agent's ``_i`` parameters dropped, later agents' renumbered), then ``changes``."""
    source: dict[str, int] = {}
    dropped: list[str] = []
    renamed: dict[str, str] = {}
    for j, pname in enumerate(before.param_names):
        match = _AGENT_SUFFIX.match(pname)
        if removed and match and int(match.group(2)) < before.n_agents:
            i = int(match.group(2))
            if i in removed:
                dropped.append(pname)
                continue
            new = f"{match.group(1)}_{i - sum(r < i for r in removed)}"
            if new != pname:
                renamed[pname] = new
            source[new] = j
        else:
            source[pname] = j
    unknown = [k for k in changes if k not in after.param_names]
    if unknown:
        raise ImitgameError(
            f"{', '.join(unknown)} is not a parameter of the changed game "
            f"({', '.join(after.param_names[:12])}{' …' if after.param_dim > 12 else ''})"
        )
    missing = [k for k in after.param_names if k not in source and k not in changes]
    if missing:
        raise ImitgameError(
            f"the changed game's parameter(s) {', '.join(missing)} have no fitted value: set "
            f"them, e.g. {missing[0]}=VALUE"
        )
    theta = torch.empty(
        variants.shape[0], after.param_dim, dtype=variants.dtype, device=variants.device
    )
    for j, pname in enumerate(after.param_names):
        theta[:, j] = changes[pname] if pname in changes else variants[:, source[pname]]
    low, high = after.param_low, after.param_high
    for pname, value in changes.items():
        j = after.param_index(pname)
        if not float(low[j]) <= value <= float(high[j]):
            raise ImitgameError(
                f"{pname}={value:g} lies outside its bounds [{float(low[j]):g}, {float(high[j]):g}]"
            )
    # the value before the change of each parameter of the changed game (None: a new one)
    before_values = {new: float(variants[0, j]) for new, j in source.items()}
    return theta, {"before": before_values, "dropped": dropped, "renamed": renamed}


def _interval_variants(results: Results, theta_hat: Tensor) -> tuple[Tensor, list[str], str]:
    """θ variants ``[K, p]``: the estimate, then each interval's ends (or the two corners)."""
    if not results.intervals:
        return (
            theta_hat[None],
            ["estimate"],
            "results.json has no intervals: only the point estimate is solved, no range reported",
        )
    names = [k for k in results.intervals if k in results.param_names]
    rows, labels = [theta_hat], ["estimate"]
    if len(names) <= MAX_INTERVAL_PARAMS:
        for pname in names:
            for end, value in zip(("low", "high"), results.intervals[pname]):
                row = theta_hat.clone()
                row[results.param_names.index(pname)] = float(value)
                rows.append(row)
                labels.append(f"{pname}={end}")
        note = (
            f"ranges: min and max over {len(rows)} solves, the estimate and each of "
            f"{len(names)} parameter(s) at its interval's ends, one at a time"
        )
    else:
        for side, end in ((0, "low"), (1, "high")):
            row = theta_hat.clone()
            for pname in names:
                row[results.param_names.index(pname)] = float(results.intervals[pname][side])
            rows.append(row)
            labels.append(f"all={end}")
        note = (
            f"ranges: min and max over the estimate and the two corners of the {len(names)} "
            "parameters' intervals (all low, all high)"
        )
    return torch.stack(rows), labels, note


# --- solving -----------------------------------------------------------------------------------
def _solve(
    scenario: _Scenario,
    cfg: DictConfig,
    spec: Any,
    overrides: dict[str, Any] | None,
    seed: int,
    warm: tuple[dict[str, Any], list[int]] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``{"estimate": summary of row 0, "variants": [summary per row], "actions": [K, B, n, d]
    (one-shot games)}`` and the method. ``warm``: the before side's solution and which of its
    agents the changed game kept (a warm start for one-shot games)."""
    if isinstance(scenario.game, StaticGame):
        return _solve_static(scenario, overrides, warm)
    return _solve_markov(scenario, cfg, spec, overrides, seed)


def _warm_start(
    game: StaticGame,
    theta: Tensor,
    contexts: Tensor | None,
    b: int,
    warm: tuple[dict[str, Any], list[int]] | None,
) -> tuple[Tensor | None, str]:
    """A starting profile ``[K, B, n, d]`` for the trainer, and where it came from: after a
    change, the before side's equilibrium (its kept agents; an added agent starts where a cold
    start would); before it, the game's ``profile_from_observations`` hook at the observations
    the run was fitted to; else None (the solver's cold start)."""
    k = theta.shape[0]
    shape = (k, b, game.n_agents, game.action_dim)
    if warm is not None:
        solved, kept = warm
        previous = solved.get("actions")
        if previous is None or previous.shape[1] != b or previous.shape[-1] != game.action_dim:
            return None, "cold start (the observations changed)"
        cold = torch.minimum(0.5 * (game.action_low + game.action_high), game.action_low + 1.0)
        init = cold.expand(shape).clone()
        m = min(len(kept), game.n_agents)
        init[:, :, :m] = previous[:, :, kept[:m]]
        return game.project_actions(init), "warm start from the equilibrium before the change"
    if provides(game, "profile_from_observations") and provides(game, "observed_outcomes"):
        outcomes = game.observed_outcomes()
        if outcomes is not None and contexts is not None and outcomes.shape[0] == b:
            outcomes = outcomes.to(device=game.device, dtype=game.dtype)
            init = game.profile_from_observations(
                outcomes[None].expand(k, *outcomes.shape), theta[:, None, :], contexts
            )
            return init.expand(shape), "warm start from profile_from_observations"
    return None, "cold start"


def _forward_config(overrides: dict[str, Any] | None) -> GDAConfig:
    values = {**dataclasses.asdict(DEFAULT_FORWARD), **(overrides or {})}
    return typed(GDAConfig, values, "solver")


def _markov_config(cfg: DictConfig, spec: Any, overrides: dict[str, Any] | None) -> MarkovConfig:
    base = MarkovConfig()
    if spec is not None and issubclass(spec.config, MarkovConfig):
        base = typed(spec.config, cfg.algo, "algo")
    values = {**dataclasses.asdict(base), **(overrides or {})}
    return typed(type(base), values, "solver")


def _solve_static(
    scenario: _Scenario,
    overrides: dict[str, Any] | None,
    warm: tuple[dict[str, Any], list[int]] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    game = scenario.game
    assert isinstance(game, StaticGame)
    theta = scenario.theta
    k = theta.shape[0]
    observed = game.observed_contexts() if game.context_dim else None
    contexts = None
    if observed is not None:
        observed = observed.to(device=game.device, dtype=game.dtype)
        contexts = observed[None].expand(k, *observed.shape)
    config = _forward_config(overrides)
    b = observed.shape[0] if observed is not None else 1
    init, start = _warm_start(game, theta, contexts, b, warm)
    started = time.perf_counter()
    # solve_static_equilibrium is solve_equilibrium's one-shot path; it takes the warm start
    actions, exploit = solve_static_equilibrium(game, theta, contexts, config=config, init=init)
    seconds = time.perf_counter() - started
    actions = actions.detach()  # [K, B, n, d]
    state = contexts if contexts is not None else game.default_context().expand(k, b, -1)
    theta_b = theta[:, None, :]
    with torch.no_grad():
        payoffs = game.payoffs_in(state, actions, theta_b)  # [K, B, n]
        prices, price_source = _prices(game, actions, theta_b, contexts)
        closed = None
        if provides(game, "equilibrium") and getattr(game, "has_equilibrium", True):
            closed = game.equilibrium_in(state, theta_b).expand_as(actions)
    labels = _labels(game, b)
    variants = []
    for row in range(k):
        entry = _static_summary(
            scenario.agents,
            actions[row],
            payoffs[row],
            None if prices is None else prices[row],
            float(exploit[row]),
            labels,
        )
        if closed is not None:
            entry["closed_form"] = _closed_form_check(
                game,
                scenario.agents,
                closed[row],
                actions[row],
                theta_b[row],
                state[row],
                prices is not None,
            )
        variants.append(entry)
    estimate = variants[0]
    estimate["wall_seconds"] = seconds
    outcomes = game.observed_outcomes() if provides(game, "observed_outcomes") else None
    if outcomes is not None and outcomes.shape[0] == b:  # what the run was fitted to
        estimate["observed_mean"] = _scalar(outcomes.mean(0))
    method = {
        "solver": "imitgame.solver.forward.solve_equilibrium: the GDA trainer with the profile "
        "as the stabilizer, against "
        + (
            "the game's exact best-response oracle"
            if game.has_best_response
            else "learned deviations (gradient ascent)"
        ),
        "solver_config": dataclasses.asdict(config),
        "exploitability": "exact (closed-form best response)"
        if game.has_best_response
        else "lower bound (Adam ascent on a deviation)",
        "prices": price_source,
        "payoffs": "payoffs_in (per observation; reported as means over observations)",
        "closed_form_check": "equilibrium" if closed is not None else None,
        "observations": b,
        "start": start,
    }
    return {"estimate": estimate, "variants": variants, "actions": actions}, method


def _prices(
    game: StaticGame, actions: Tensor, theta: Tensor, contexts: Tensor | None
) -> tuple[Tensor | None, str | None]:
    """Prices ``[K, B, o]`` and what produced them: the declared ``observation_map`` hook, else
    an ``inverse_demand(total [..., 1], theta, context)`` method, else none."""
    if provides(game, "observation_map"):
        context = contexts if contexts is not None else None
        return game.observation_map(actions, theta, context), (
            f"{type(game).__name__}.observation_map (declared hook: what is observed of a play)"
        )
    inverse_demand = getattr(game, "inverse_demand", None)
    if callable(inverse_demand) and game.action_dim == 1:
        total = actions[..., 0].sum(-1, keepdim=True)
        return inverse_demand(total, theta, contexts), (
            f"{type(game).__name__}.inverse_demand at the total quantity"
        )
    return None, None


def _labels(game: MarkovGame, b: int) -> dict[str, list] | None:
    labels_fn = getattr(game, "observation_labels", None)
    if not callable(labels_fn):
        return None
    labels = labels_fn()
    if not isinstance(labels, dict) or any(len(v) != b for v in labels.values()):
        return None
    return {str(k): list(v) for k, v in labels.items()}


def _static_summary(
    agents: list[str],
    actions: Tensor,
    payoffs: Tensor,
    prices: Tensor | None,
    exploitability: float,
    labels: dict[str, list] | None,
) -> dict[str, Any]:
    """One solve's report: ``actions [B, n, d]``, ``payoffs [B, n]``, ``prices [B, o]``."""
    per_obs = actions[..., 0] if actions.shape[-1] == 1 else actions
    mean_actions = actions.mean(0)  # [n, d]
    out: dict[str, Any] = {
        "agents": agents,
        "observations": int(actions.shape[0]),
        "mean_actions": {a: _scalar(mean_actions[i]) for i, a in enumerate(agents)},
        "mean_payoffs": {a: float(payoffs[:, i].mean()) for i, a in enumerate(agents)},
        "total_payoff": float(payoffs.sum(-1).mean()),
        "exploitability": exploitability,
        "actions": per_obs.tolist(),
    }
    if prices is not None:
        p = prices[..., 0] if prices.shape[-1] == 1 else prices
        out["mean_price"] = _scalar(prices.mean(0))
        out["prices"] = p.tolist()
    if labels is not None:
        out["labels"] = labels
    return out


def _closed_form_check(
    game: StaticGame,
    agents: list[str],
    closed: Tensor,
    actions: Tensor,
    theta: Tensor,
    state: Tensor,
    with_prices: bool,
) -> dict[str, Any]:
    mean = closed.mean(0)  # [n, d]
    out: dict[str, Any] = {
        "mean_actions": {a: _scalar(mean[i]) for i, a in enumerate(agents)},
        "max_abs_action_difference": float((closed - actions).abs().max()),
    }
    if with_prices:
        contexts = state[None] if game.context_dim else None
        p_closed, _ = _prices(game, closed[None], theta[None], contexts)
        p_solved, _ = _prices(game, actions[None], theta[None], contexts)
        if p_closed is not None and p_solved is not None:
            out["mean_price"] = _scalar(p_closed[0].mean(0))
            out["max_abs_price_difference"] = float((p_closed - p_solved).abs().max())
    return out


def _solve_markov(
    scenario: _Scenario,
    cfg: DictConfig,
    spec: Any,
    overrides: dict[str, Any] | None,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    game, theta = scenario.game, scenario.theta
    k = theta.shape[0]
    config = _markov_config(cfg, spec, overrides)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # policy initialisation: the same under a seed
        torch.manual_seed(seed)
        policy, exploit = solve_equilibrium(game, theta, config=config, seed=seed)
    seconds = time.perf_counter() - started
    episodes = config.eval_environments
    paths = _paths(game, theta, policy, episodes, seed)
    closed = None
    if provides(game, "equilibrium_policy"):
        closed = _paths(game, theta, game.equilibrium_policy(theta), episodes, seed)
    variants = []
    for row in range(k):
        entry = _markov_summary(scenario.agents, paths, row, float(exploit[row]))
        if closed is not None:
            reference = _markov_summary(scenario.agents, closed, row, float("nan"))
            entry["closed_form"] = {
                "mean_actions": reference["mean_actions"],
                "mean_returns": reference["mean_returns"],
                "mean_state_path": reference["mean_state_path"],
                "max_abs_action_path_difference": float(
                    (paths["actions"][row] - closed["actions"][row]).abs().max()
                ),
            }
        variants.append(entry)
    variants[0]["wall_seconds"] = seconds
    method = {
        "solver": "imitgame.solver.forward.solve_equilibrium: the GDA trainer with a joint "
        "policy network as the stabilizer against learned deviation policies",
        "solver_config": dataclasses.asdict(config),
        "exploitability": "lower bound: a separately trained best response "
        f"({config.best_response_steps} steps, {config.eval_environments} episodes)",
        "paths": f"means over {episodes} sampled episodes (the same shocks before and after) "
        f"of the horizon-{game.horizon} rollout",
        "payoffs": f"discounted returns (γ = {game.discount:g}), mean over episodes",
        "closed_form_check": "equilibrium_policy" if closed is not None else None,
    }
    return {"estimate": variants[0], "variants": variants}, method


def _paths(
    game: MarkovGame, theta: Tensor, policy: Strategy, episodes: int, seed: int
) -> dict[str, Tensor]:
    """Mean actions ``[K, T, n, d]``, states ``[K, T, s]`` and returns ``[K, n]`` of ``episodes``
    sampled episodes per instance (shocks from ``seed``: common to every caller)."""
    with torch.no_grad():
        traj = sample_trajectories(
            game,
            theta,
            policy,
            (theta.shape[0], episodes),
            generator=episode_generator(game, seed + 1000),
        )
    return {
        "actions": traj.actions.mean(2).transpose(0, 1),
        "states": traj.states.mean(2).transpose(0, 1),
        "returns": traj.returns.mean(1),
    }


def _markov_summary(
    agents: list[str], paths: dict[str, Tensor], row: int, exploitability: float
) -> dict[str, Any]:
    actions = paths["actions"][row]  # [T, n, d]
    per_step = actions[..., 0] if actions.shape[-1] == 1 else actions
    return {
        "agents": agents,
        "mean_actions": {a: _scalar(actions[:, i].mean(0)) for i, a in enumerate(agents)},
        "mean_returns": {a: float(paths["returns"][row, i]) for i, a in enumerate(agents)},
        "mean_payoffs": {a: float(paths["returns"][row, i]) for i, a in enumerate(agents)},
        "total_payoff": float(paths["returns"][row].sum()),
        "exploitability": exploitability,
        "mean_action_path": per_step.tolist(),
        "mean_state_path": paths["states"][row].tolist(),
    }


def _scalar(value: Tensor) -> float | list[float]:
    flat = value.flatten()
    return float(flat[0]) if flat.numel() == 1 else flat.tolist()


# --- comparing ---------------------------------------------------------------------------------
def _difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """After minus before: per agent present in both, the mean price, and per observation where
    both sides played the same observations (with counts of rises and falls)."""
    out: dict[str, Any] = {}
    common = [a for a in before["agents"] if a in after["agents"]]
    for key in ("mean_actions", "mean_payoffs"):
        out[key] = {a: _minus(after[key][a], before[key][a]) for a in common}
    out["total_payoff"] = after["total_payoff"] - before["total_payoff"]
    closed_before, closed_after = before.get("closed_form"), after.get("closed_form")
    if closed_before and closed_after:  # the same change between the closed forms
        out["closed_form"] = {
            "mean_actions": {
                a: _minus(closed_after["mean_actions"][a], closed_before["mean_actions"][a])
                for a in common
            }
        }
        if "mean_price" in closed_before and "mean_price" in closed_after:
            out["closed_form"]["mean_price"] = _minus(
                closed_after["mean_price"], closed_before["mean_price"]
            )
    if "mean_price" in before and "mean_price" in after:
        out["mean_price"] = _minus(after["mean_price"], before["mean_price"])
    if "prices" in before and "prices" in after and len(before["prices"]) == len(after["prices"]):
        change = torch.tensor(after["prices"], dtype=torch.float64) - torch.tensor(
            before["prices"], dtype=torch.float64
        )
        scale = torch.tensor(before["prices"], dtype=torch.float64).abs().clamp(min=1.0)
        tol = CHANGE_TOLERANCE * scale
        out["prices"] = change.tolist()
        out["price_rose"] = int((change > tol).sum())
        out["price_fell"] = int((change < -tol).sum())
        out["price_unchanged"] = int(change.numel()) - out["price_rose"] - out["price_fell"]
        out["price_tolerance"] = f"{CHANGE_TOLERANCE:g} × max(1, |price before|)"
        out["price_change_range"] = [float(change.min()), float(change.max())]
        labels = before.get("labels")
        if labels and change.dim() == 1:
            out["price_change_by"] = _grouped(change, labels)
    return out


def _minus(a: Any, b: Any) -> Any:
    if isinstance(a, list):
        return [x - y for x, y in zip(a, b)]
    return a - b


def _grouped(change: Tensor, labels: dict[str, list]) -> dict[str, Any]:
    """Mean, min and max of ``change [B]`` per value of the label with the fewest distinct
    values (more than one), e.g. by hour of the day."""
    candidates = [(len(set(v)), k) for k, v in labels.items() if len(set(v)) > 1]
    if not candidates:
        return {}
    _, key = min(candidates)
    values = labels[key]
    groups: dict[Any, list[float]] = {}
    for value, c in zip(values, change.tolist()):
        groups.setdefault(value, []).append(c)
    rows = {
        str(g): {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "count": len(v)}
        for g, v in sorted(groups.items())
    }
    return {"label": key, "groups": rows}


def _ranges(
    before: list[dict[str, Any]], after: list[dict[str, Any]], labels: list[str]
) -> dict[str, Any]:
    """[min, max] over the interval variants of each scalar of before, after and difference."""

    def scalars(entry: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in ("mean_actions", "mean_payoffs"):
            for agent, value in entry.get(key, {}).items():
                if isinstance(value, float):
                    out[f"{key}.{agent}"] = value
        for key in ("total_payoff", "mean_price"):
            if isinstance(entry.get(key), float):
                out[key] = entry[key]
        return out

    sides = {
        "before": [scalars(v) for v in before],
        "after": [scalars(v) for v in after],
        "difference": [scalars(_difference(b, a)) for b, a in zip(before, after)],
    }
    out: dict[str, Any] = {"variants": labels}
    for side, rows in sides.items():
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        out[side] = {k: [min(r[k] for r in rows), max(r[k] for r in rows)] for k in keys}
    return out


def _short_target(env: DictConfig) -> str:
    return str(env.get("_target_", "game")).rsplit(".", 1)[-1]


# --- the figure and the console ----------------------------------------------------------------
def plot(report: dict[str, Any], path: Path) -> None:
    """Bars of each agent's mean action before and after; beside them the price change by the
    report's grouping label (e.g. hour of the day, mean with its min–max band), or mean prices
    before and after, or (Markov games) the mean state path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after, diff = report["before"], report["after"], report["difference"]
    agents = list(dict.fromkeys([*before["agents"], *after["agents"]]))
    second = (
        "group"
        if diff.get("price_change_by", {}).get("groups")
        else "price"
        if "mean_price" in before and "mean_price" in after
        else "state"
        if "mean_state_path" in before
        else None
    )
    fig, axes = plt.subplots(1, 2 if second else 1, figsize=(11 if second else 6, 4))
    axes = list(axes) if second else [axes]
    ax = axes[0]
    width = 0.4
    for shift, side, label in ((-width / 2, before, "before"), (width / 2, after, "after")):
        values = [_first(side["mean_actions"].get(a, float("nan"))) for a in agents]
        ax.bar([i + shift for i in range(len(agents))], values, width, label=label)
        closed = (side.get("closed_form") or {}).get("mean_actions")
        if closed:  # the closed form's answer on each bar
            marks = [_first(closed.get(a, float("nan"))) for a in agents]
            x = [i + shift for i in range(len(agents))]
            ax.plot(x, marks, "k_", ms=18, mew=2, label=None if shift < 0 else "closed form")
    ax.set_xticks(range(len(agents)), agents, rotation=30, ha="right")
    ax.set_ylabel("mean equilibrium action")
    ax.set_title("actions by agent")
    ax.legend(loc="lower right")
    if second == "group":
        grouped = diff["price_change_by"]
        keys = list(grouped["groups"])
        mean = [grouped["groups"][g]["mean"] for g in keys]
        low = [grouped["groups"][g]["min"] for g in keys]
        high = [grouped["groups"][g]["max"] for g in keys]
        x = list(range(len(keys)))
        axes[1].fill_between(x, low, high, alpha=0.25, label="min–max")
        axes[1].plot(x, mean, marker="o", label="mean")
        axes[1].axhline(0.0, color="grey", lw=0.8)
        axes[1].set_xticks(x, keys)
        axes[1].set_xlabel(grouped["label"])
        axes[1].set_ylabel("price change (after − before)")
        axes[1].set_title("price change by " + grouped["label"])
        axes[1].legend()
    elif second == "price":
        values = [_first(before["mean_price"]), _first(after["mean_price"])]
        axes[1].bar(["before", "after"], values, color=["C0", "C1"])
        axes[1].set_ylabel("mean price")
        axes[1].set_title("price")
    elif second == "state":
        for color, side, label in (("C0", before, "before"), ("C1", after, "after")):
            path_values = [s[0] for s in side["mean_state_path"]]
            axes[1].plot(range(len(path_values)), path_values, "o-", color=color, label=label)
            closed = (side.get("closed_form") or {}).get("mean_state_path")
            if closed:
                values = [s[0] for s in closed]
                axes[1].plot(range(len(values)), values, "--", color=color, label="closed form")
        axes[1].set_xlabel("t")
        axes[1].set_ylabel("mean state (first component)")
        axes[1].set_title("state path")
        axes[1].legend()
    where = report.get("setting") or {}
    at = ", ".join(f"{k}={_compact(v)}" for k, v in where.items())
    fig.suptitle(f"{report['env']}: {report['name']}" + (f" (at {at})" if at else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _first(value: Any) -> float:
    return float(value[0]) if isinstance(value, list) else float(value)


def summary(report: dict[str, Any]) -> str:
    """The console lines of a report: per-agent mean actions and payoffs before → after, the
    mean price, exploitability, the interval note and where the report is."""
    before, after, diff = report["before"], report["after"], report["difference"]
    lines = [f"counterfactual {report['name']} of {report['run']} ({report['env']})"]
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    lines.append(
        f"  {'agent':<16} {'action before':>14} {'after':>12} {'payoff before':>14} {'after':>12}"
    )
    for agent in dict.fromkeys([*before["agents"], *after["agents"]]):
        row = [
            _fmt(before["mean_actions"].get(agent)),
            _fmt(after["mean_actions"].get(agent)),
            _fmt(before["mean_payoffs"].get(agent)),
            _fmt(after["mean_payoffs"].get(agent)),
        ]
        lines.append(f"  {agent:<16} {row[0]:>14} {row[1]:>12} {row[2]:>14} {row[3]:>12}")
    if "mean_price" in before and "mean_price" in after:
        lines.append(
            f"  mean price      {_fmt(before['mean_price'])} -> {_fmt(after['mean_price'])} "
            f"(change {_fmt(diff.get('mean_price'))})"
        )
        if "price_rose" in diff:
            lines.append(
                f"  price rose in {diff['price_rose']}, fell in {diff['price_fell']} of "
                f"{len(diff['prices'])} observation(s) (tolerance {diff['price_tolerance']})"
            )
    lines.append(
        f"  exploitability  before {before['exploitability']:.3g}, after "
        f"{after['exploitability']:.3g} ({report['method']['exploitability']})"
    )
    for side_name, side in (("before", before), ("after", after)):
        check = side.get("closed_form") or {}
        for key, what in (
            ("max_abs_action_difference", "action"),
            ("max_abs_action_path_difference", "mean action path"),
        ):
            if key in check:
                lines.append(
                    f"  closed form     {side_name}: max |solver − closed form| {what} "
                    f"{check[key]:.3g}"
                )
    lines.append(f"  intervals       {report['interval_note']}")
    ranges = report.get("ranges") or {}
    if "mean_price" in ranges.get("difference", {}):
        sides = ", ".join(
            f"{side} {_fmt(ranges[side]['mean_price'])}"
            for side in ("before", "after", "difference")
            if "mean_price" in ranges[side]
        )
        lines.append(f"  price ranges    {sides}")
    if "path" in report:
        lines.append(f"  report          {report['path']}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return f"{value:.4g}"
