"""Typed configuration: schemas for the ``algo`` and ``data`` groups and checks of ``env``.

Hydra composes plain YAML; these checks turn a wrong override into one line that names it.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from imitgame.errors import ImitgameError
from imitgame.solver.trainer import GDAConfig


@dataclass
class AlgoConfig(GDAConfig):
    """GDA hyperparameters plus the choices that build the two players."""

    destabilizer: str = "learned"  # learned | best_response
    estimator: str = "pathwise"  # pathwise | score
    regret_weight: float = 1.0
    theta_init: Any = None  # null: centre of Θ for learned entries; or a list of values
    exploitability_steps: int = 300  # ascent steps of the evaluator when no oracle exists

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.destabilizer not in ("learned", "best_response"):
            raise ImitgameError(
                f"algo.destabilizer={self.destabilizer!r} is not one of learned, best_response"
            )
        if self.estimator not in ("pathwise", "score"):
            raise ImitgameError(f"algo.estimator={self.estimator!r} is not one of pathwise, score")


@dataclass
class DataConfig:
    """Where the observed behaviour comes from."""

    source: str = "simulated"  # simulated | file
    path: Any = None  # file source: .npz or .csv of observed actions
    instances: int = 1  # simulated: number of independent instances K
    param_spread: float = 0.0  # simulated: learned true entries drawn as θ·(1 + spread·U(-1, 1))
    noise_std: float = 0.0  # simulated: observation noise, relative to the action scale

    def __post_init__(self) -> None:
        if self.source not in ("simulated", "file"):
            raise ImitgameError(f"data.source={self.source!r} is not one of simulated, file")
        if self.source == "file" and not self.path:
            raise ImitgameError("data.source=file needs data.path=PATH")
        if self.instances < 1:
            raise ImitgameError(f"data.instances must be >= 1, got {self.instances}")
        if self.param_spread < 0 or self.noise_std < 0:
            raise ImitgameError("data.param_spread and data.noise_std must be >= 0")


def typed(schema: type, node: DictConfig, group: str) -> Any:
    """Merge ``node`` into the dataclass ``schema``; a type error becomes one line."""
    names = {f.name for f in fields(schema)}
    unknown = [k for k in node if k not in names]
    if unknown:
        raise ImitgameError(f"{group}: unknown option(s) {unknown}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or ""
        msg = str(err).splitlines()[0]
        raise ImitgameError(f"bad value for {group}.{key}: {msg}") from None


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        args = typing.get_args(hint)
        return not args or all(_matches(v, args[0]) for v in value)
    return True


def check_kwargs(cls: type, kwargs: dict[str, Any], group: str) -> None:
    """Check config keys and value types against ``cls.__init__``'s signature and hints."""
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    params = {k: p for k, p in signature.parameters.items() if k != "self"}
    for key, value in kwargs.items():
        if key not in params:
            raise ImitgameError(
                f"{group}: unknown option {key!r} for {cls.__name__} (options: {', '.join(params)})"
            )
        hint = hints.get(key, params[key].annotation)
        if not _matches(value, hint):
            name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            raise ImitgameError(f"bad value for {group}.{key}: {value!r} is not {name}")
