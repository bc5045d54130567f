"""Every configuration schema in one place, validated one way.

The ``algo`` and ``data`` groups of the Hydra config are typed by the dataclasses below: options are
``Literal`` types, numeric ranges are field metadata, and :func:`validate` checks both whenever a
schema is built (from YAML through :func:`typed`, or directly in Python). The ``env`` group is
checked against the game class's constructor signature by :func:`check_kwargs` with the same type
matcher. Every failure is one :class:`~imitgame.errors.ImitgameError` line that names the field.

Schemas, by the problem that reads them (``algo.problem``; see :mod:`imitgame.problems`):

* :class:`GDAConfig` — the trainer's hyperparameters (every problem);
* :class:`AlgoConfig` — plus the two players' construction: static inverse problems;
* :class:`MarkovConfig` — plus sampler, policies and evaluation budgets: Markov inverse problems;
* :class:`SimulacralConfig` — plus the regret weight's update: simulacral learning;
* :class:`DataConfig` — where observed behaviour comes from.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf

from imitgame.errors import ImitgameError


def bounded(
    default: Any, *, ge: float | None = None, gt: float | None = None, lt: float | None = None
) -> Any:
    """A dataclass field with a numeric range that :func:`validate` enforces."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "lt": lt})


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a config value fits a type hint (the subset of typing that configs use)."""
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
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        args = typing.get_args(hint)
        return not args or all(_matches(v, args[0]) for v in value)
    return True


def _literal_of(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal`` hint (or of ``Literal[...] | None``)."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        for h in args:
            if typing.get_origin(h) is Literal:
                return (*typing.get_args(h), *((None,) if type(None) in args else ()))
    return None


def validate(config: Any) -> None:
    """Check a schema instance's ``Literal`` options and numeric ranges; one line per failure."""
    group = getattr(config, "group", "config")
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        choices = _literal_of(hints[f.name])
        if choices is not None and value not in choices:
            shown = ", ".join(str(c) for c in choices)
            raise ImitgameError(f"{group}.{f.name}={value!r} is not one of {shown}")
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        ge, gt, lt = (f.metadata.get(k) for k in ("ge", "gt", "lt"))
        if ge is not None and value < ge:
            raise ImitgameError(f"{group}.{f.name} must be >= {ge}, got {value}")
        if gt is not None and value <= gt:
            raise ImitgameError(f"{group}.{f.name} must be > {gt}, got {value}")
        if lt is not None and value >= lt:
            raise ImitgameError(f"{group}.{f.name} must be < {lt}, got {value}")


class Schema:
    """Base of the config dataclasses: validated on construction; ``group`` names them in errors."""

    group: ClassVar[str] = "algo"

    def __post_init__(self) -> None:
        validate(self)
        self.check()

    def check(self) -> None:
        """Cross-field rules of a schema (override; raise ImitgameError)."""


@dataclass
class GDAConfig(Schema):
    """Hyperparameters of the GDA trainer (:class:`imitgame.solver.trainer.GDA`)."""

    iterations: int = bounded(2000, ge=1)
    # auto: lbfgs for θ against an exact max-oracle, adam otherwise (imitgame.problems.base)
    optimizer: Literal["auto", "adam", "sgd", "lbfgs"] = "adam"
    lr_theta: float = bounded(0.05, ge=0)  # 0: θ held fixed (the run evaluates π† under θ)
    lr_profile: float = bounded(0.05, gt=0)
    lr_deviation: float = bounded(0.1, gt=0)
    adam_beta1: float = bounded(0.9, ge=0, lt=1)
    adam_beta2: float = bounded(0.999, ge=0, lt=1)
    method: Literal["plain", "extragradient", "optimistic"] = "plain"
    updates: Literal["simultaneous", "alternating"] = "simultaneous"
    ascent_steps: int = bounded(1, ge=1)
    schedule: Literal["constant", "inverse_sqrt", "cosine", "exponential"] = "constant"
    lr_final_fraction: float = bounded(0.01, gt=0)
    schedule_timescale: float = bounded(100.0, gt=0)
    averaging: Literal["none", "uniform", "ema"] = "none"
    average_start: float = bounded(0.5, ge=0)
    ema_decay: float = bounded(0.99, ge=0, lt=1)
    eval_every: int = bounded(50, ge=1)
    tol_exploitability: float | None = None
    tol_step: float | None = None
    checkpoint_every: int = bounded(500, ge=1)


@dataclass
class AlgoConfig(GDAConfig):
    """GDA plus the choices that build the two players (static inverse problems).

    Its defaults are those of ``configs/algo/gda.yaml`` (a test keeps them equal): the default
    ``algo`` choice (``auto``) leaves every option to the problem's schema, so a one-shot game gets
    these and a Markov game :class:`MarkovConfig`'s."""

    optimizer: Literal["auto", "adam", "sgd", "lbfgs"] = "auto"
    lr_theta: float = bounded(0.5, ge=0)
    lr_deviation: float = bounded(1.0, gt=0)  # the destabilizer moves on the faster time scale
    schedule: Literal["constant", "inverse_sqrt", "cosine", "exponential"] = "cosine"
    lr_final_fraction: float = bounded(0.001, gt=0)
    tol_exploitability: float | None = 1e-10
    tol_step: float | None = 1e-7
    checkpoint_every: int = bounded(250, ge=1)
    problem: str | None = None  # a key of imitgame.problems.PROBLEMS; None: by the game's kind
    # auto: best_response where the game has a closed-form best response, else learned
    destabilizer: Literal["auto", "learned", "best_response"] = "auto"
    estimator: Literal["pathwise", "score"] = "pathwise"
    regret_weight: float = 1.0
    theta_init: Any = None  # null: centre of Θ; a list of values; game (simulacral)
    exploitability_steps: int = bounded(300, ge=0)  # evaluator's ascent steps without an oracle
    # equilibrium concept of the observed play (imitgame.game.finite): null keeps the game's own;
    # logit_qre = Nash of the entropy-regularised game u_i + H(σ_i)/λ
    equilibrium: Literal["nash", "logit_qre"] | None = None
    qre_lambda: float | None = bounded(None, gt=0)  # logit precision λ; null: the game's own
    learn_lambda: bool = False  # learn λ as θ's last entry (finite and discretised games)
    qre_grid: int = bounded(21, ge=2)  # logit_qre of a continuous one-shot game: grid points


@dataclass
class MarkovConfig(AlgoConfig):
    """``algo`` for Markov games: stochastic GDA (the paper's Algorithm 2) + the sampler,
    policies, behaviour cloning and evaluation budgets.

    The defaults are the stochastic-GDA settings (``configs/algo/sgda.yaml`` lists the same
    values), so any Markov game gets them with the default ``algo`` choice; they redefine every
    GDA field whose one-shot default does not suit sampled regret.
    """

    iterations: int = bounded(300, ge=1)
    optimizer: Literal["auto", "adam", "sgd", "lbfgs"] = "adam"
    lr_theta: float = bounded(0.004, ge=0)  # fraction of Θ's width per step (box); 0: θ fixed
    lr_profile: float = bounded(0.05, gt=0)
    lr_deviation: float = bounded(0.05, gt=0)  # deviation policies: the fast time scale
    adam_beta1: float = bounded(0.9, ge=0, lt=1)
    adam_beta2: float = bounded(0.999, ge=0, lt=1)
    method: Literal["plain", "extragradient", "optimistic"] = "plain"
    updates: Literal["simultaneous", "alternating"] = "simultaneous"
    ascent_steps: int = bounded(3, ge=1)
    schedule: Literal["constant", "inverse_sqrt", "cosine", "exponential"] = "cosine"
    lr_final_fraction: float = bounded(0.01, gt=0)
    schedule_timescale: float = bounded(100.0, gt=0)
    averaging: Literal["none", "uniform", "ema"] = "uniform"
    average_start: float = bounded(0.5, ge=0)
    ema_decay: float = bounded(0.99, ge=0, lt=1)
    eval_every: int = bounded(50, ge=1)
    # converged: the final exploitability's 95 % upper bound (mean + 1.96 SE over episodes) is at
    # most this, in units of tol_units; training runs the full budget either way (a noisy running
    # estimate is no stopping rule)
    tol_exploitability: float | None = bounded(0.01, ge=0)
    tol_step: float | None = None
    checkpoint_every: int = bounded(200, ge=1)
    destabilizer: Literal["auto", "learned", "best_response"] = "learned"
    # zeroth_order: θ's gradient by two-point Gaussian smoothing (rewards not differentiable or
    # not linear in θ); deviations by the score function
    estimator: Literal["pathwise", "score", "zeroth_order"] = "pathwise"
    regret_weight: float = 1.0
    theta_init: Any = None
    exploitability_steps: int = bounded(20, ge=0)  # unused by Markov runs (see eval_steps)

    environments: int = bounded(256, ge=1)  # B sampled episodes per instance and iteration
    policy: Literal["residual", "deterministic", "gaussian", "categorical"] = "residual"
    hidden: list[int] = field(default_factory=list)  # deviation networks ([]: linear residual)
    baseline: Literal["batch_mean", "fitted", "none"] = "batch_mean"
    eval_steps: int = bounded(20, ge=0)  # warm ascent steps of the running exploitability
    eval_environments: int = bounded(1024, ge=1)  # episodes per instance and step, final BR
    # episodes per instance of the final exploitability and its 95 % bound (eval_environments
    # at a time): enough that a stochastic game's bound can certify a 1 % tolerance
    bound_environments: int = bounded(16384, ge=1)
    best_response_steps: int = bounded(300, ge=0)  # the separately trained best response
    best_response_lr: float = bounded(0.05, gt=0)
    variance_batches: int = bounded(4, ge=1)  # batches for the gradient-variance estimate
    # payoff: tol_exploitability is a fraction of the observed profile's payoff scale
    # Σ_i E|G_i(π†)| (per instance); absolute: in payoff units
    tol_units: Literal["payoff", "absolute"] = "payoff"
    # behaviour cloning of the observed policy (data=file): its own network and stopping rule
    # Gaussian deviations (black-box games): "fresh" networks, or "observed": their means start
    # at the cloned observed policy (ψ ≈ 0 at the start; needs bc_hidden == hidden)
    deviation_init: Literal["fresh", "observed"] = "fresh"
    bc_hidden: list[int] = field(default_factory=lambda: [32, 32])
    # continuous actions: "deterministic" clones the mean action by least squares; "gaussian"
    # fits a Gaussian policy (mean and std) by likelihood: the observed policy then plays the
    # data's action distribution, not its mode (needs algo.policy=gaussian with deviation_init)
    bc_policy: Literal["deterministic", "gaussian"] = "deterministic"
    # θ's gradient from Σ_i max(gain_i, 0): a deviation that loses says nothing about θ (an
    # agent can always fall back to π_i), instead of pushing θ to make it lose more (score or
    # zeroth_order only: with pathwise deviations the clamp would cut their own ascent gradient)
    positive_gains: bool = False
    bc_steps: int = bounded(20000, ge=0)  # cap on the Adam steps
    bc_lr: float = bounded(0.01, gt=0)
    bc_holdout: float = bounded(0.1, ge=0, lt=1)  # held-out fraction of the observations
    bc_check_every: int = bounded(100, ge=1)  # steps between held-out checks
    bc_patience: int = bounded(5, ge=1)  # checks without improvement: lr ÷ 10 (twice), then stop
    bc_tolerance: float = bounded(1e-6, ge=0)  # stop once the held-out error is below this
    forward_iterations: int = bounded(1500, ge=1)  # Markov forward solver
    lr_theta_units: Literal["box", "absolute"] = "box"  # box: lr_theta is a fraction of Θ's width
    smoothing_sigma: float = bounded(0.05, gt=0)  # estimator=zeroth_order: σ of the smoothing
    smoothing_samples: int = bounded(8, ge=1)  # estimator=zeroth_order: directions per step

    def check(self) -> None:
        if self.destabilizer == "best_response":
            raise ImitgameError("Markov games need algo.destabilizer=learned (policy networks)")

    def best_response_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~imitgame.solver.exploitability.trained_best_response`."""
        return {
            "policy": self.policy,
            "hidden": self.hidden,
            "steps": self.best_response_steps,
            "lr": self.best_response_lr,
            "environments": self.eval_environments,
        }


@dataclass
class SimulacralConfig(AlgoConfig):
    """GDA plus the simulacral choices (``configs/algo/simulacral.yaml``)."""

    problem: str | None = "simulacral"
    lambda_update: Literal["fixed", "dual"] = "fixed"
    lambda_lr: float = bounded(1.0, ge=0)  # dual: η_λ
    lambda_max: float = bounded(1.0e4, gt=0)  # dual: cap on λ
    profile_init: Literal["equilibrium", "observations"] = "equilibrium"
    profile: Literal["learned", "equilibrium"] = "learned"

    def check(self) -> None:
        if self.regret_weight <= 0:
            raise ImitgameError(f"algo.regret_weight must be > 0, got {self.regret_weight}")
        if self.optimizer == "lbfgs" and self.profile != "equilibrium":
            raise ImitgameError(
                "algo.optimizer=lbfgs in simulacral learning needs algo.profile=equilibrium "
                "(a learned profile is projected onto the action box after every step)"
            )


@dataclass
class NoisyConfig(AlgoConfig):
    """``algo`` for ``algo.problem=noisy_inverse``: θ and an equilibrium fitted jointly to noisy
    observed actions (:mod:`imitgame.problems.noisy`). ``regret_weight`` is relative: λ =
    regret_weight / (mean |u_i| of the observed mean play under the initial θ)."""

    problem: str | None = "noisy_inverse"
    iterations: int = bounded(3000, ge=1)
    optimizer: Literal["auto", "adam", "sgd", "lbfgs"] = "adam"
    lr_theta: float = bounded(0.05, ge=0)  # relative to |θ_init| per learned entry (Adam)
    lr_profile: float = bounded(0.05, gt=0)  # relative to the mean observed |action| (Adam)
    tol_exploitability: float | None = None  # the fitted π is not an exact equilibrium at finite λ
    tol_step: float | None = 1e-9
    eval_every: int = bounded(100, ge=1)
    lambda_update: Literal["fixed", "dual"] = "fixed"
    lambda_lr: float = bounded(1.0, ge=0)  # dual: η_λ
    lambda_max: float = bounded(1.0e4, gt=0)  # dual: cap on λ

    def check(self) -> None:
        if self.regret_weight <= 0:
            raise ImitgameError(f"algo.regret_weight must be > 0, got {self.regret_weight}")


@dataclass
class CountsConfig(AlgoConfig):
    """``algo`` of ``algo.problem=qre_counts`` (:mod:`imitgame.problems.qre`): L-BFGS on θ and the
    profile jointly against the exact (soft) best response, the regret as a penalty of weight
    ``regret_weight`` beside the counts' likelihood; convergence by θ's step (ψ > 0 at the
    penalised optimum of noisy counts)."""

    problem: str | None = "qre_counts"
    optimizer: Literal["auto", "adam", "sgd", "lbfgs"] = "lbfgs"
    lr_theta: float = bounded(1.0, ge=0)
    regret_weight: float = 100.0
    tol_exploitability: float | None = None
    tol_step: float | None = 1e-10


@dataclass
class DataConfig(Schema):
    """Where the observed behaviour comes from."""

    group: ClassVar[str] = "data"

    source: Literal["simulated", "file"] = "simulated"
    path: Any = None  # file source: observed actions (.npz, .csv) or trajectories (.npz)
    instances: int = bounded(1, ge=1)  # simulated: number of independent instances K
    param_spread: float = bounded(0.0, ge=0)  # simulated: learned entries θ·(1 + spread·U(-1, 1))
    noise_std: float = bounded(0.0, ge=0)  # simulated: observation noise, relative to actions
    observations: int = bounded(1, ge=1)  # simulated: noisy repeats of each observed context
    bootstrap: int = bounded(0, ge=0)  # R bootstrap replicates solved in the same batch (0: none)
    ci_level: float = bounded(0.95, gt=0, lt=1)  # nominal level of the bootstrap intervals
    counts: int | None = bounded(
        None, ge=1
    )  # qre_counts: observed actions per player (null: 10000)

    def check(self) -> None:
        if self.source == "file" and not self.path:
            raise ImitgameError("data.source=file needs data.path=PATH")


def typed(schema: type, node: DictConfig | dict, group: str) -> Any:
    """Build the dataclass ``schema`` from a config node: unknown keys, wrong types, options
    outside a ``Literal`` and out-of-range numbers each become one ImitgameError line."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    # ``???`` (OmegaConf's MISSING, as configs/algo/auto.yaml lists every option): not set, so the
    # schema's default applies
    values = {k: v for k, v in values.items() if not (isinstance(v, str) and v == "???")}
    known = {f.name: f for f in fields(schema)}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise ImitgameError(f"{group}: unknown option(s) {unknown} (options: {', '.join(known)})")
    hints = typing.get_type_hints(schema)
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if not _matches(value, hint):
            raise ImitgameError(f"bad value for {group}.{key}: {value!r} is not {_type_name(hint)}")
        kwargs[key] = float(value) if hint is float and isinstance(value, int) else value
    missing = [
        name
        for name, f in known.items()
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ImitgameError(f"{group}: missing option(s) {missing}")
    return schema(**kwargs)


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
            raise ImitgameError(f"bad value for {group}.{key}: {value!r} is not {_type_name(hint)}")
