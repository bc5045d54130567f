"""The optional capabilities a game may declare, in one place.

A game needs only the base contract (:class:`~imitgame.game.base.StaticGame.payoffs`, or the four
tensor functions of a :class:`~imitgame.game.base.MarkovGame`). Each capability below is optional;
a game *declares* one by defining its methods, the framework asks :func:`provides` (never
``hasattr``) whether it is there, and :func:`imitgame.testing.check_game` checks every hook a game
declares (shapes, dtypes, batching, differentiability), so a wrong hook shows up in one call rather
than mid-run.

The Protocols are the documentation of the signatures and shapes (``K`` instances, ``B``
observations, ``n`` agents, ``d`` action dims, ``p`` parameters, ``s`` context columns, ``o``
observed columns); :data:`HOOKS` maps each hook to its capability.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from imitgame.game.strategies import Strategy


@runtime_checkable
class ClosedFormStatic(Protocol):
    """Exact solutions of a one-shot game: synthetic data without the forward solver, and exact
    exploitability (an exact max-oracle, ``algo.destabilizer=best_response``)."""

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """A Nash equilibrium ``[..., n, d]`` under ``theta [..., p]`` (in ``context [..., s]``)."""
        ...

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """``[..., n, d]``: entry i is agent i's best response to the others' ``actions``."""
        ...


@runtime_checkable
class ClosedFormMarkov(Protocol):
    """Exact policies of a Markov game: the equilibrium the synthetic data come from, and exact
    exploitability of a profile."""

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        """The Markov perfect equilibrium under ``theta [K, p]`` as a joint strategy."""
        ...

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        """Each agent's best response to ``profile`` under ``theta [K, p]`` (None: not known for
        this profile)."""
        ...


@runtime_checkable
class SimulacralData(Protocol):
    """What simulacral learning needs of a one-shot game: what is observed of a play, and where.

    Only ``observation_map`` and ``observed_contexts`` are required; without
    ``observed_outcomes`` the observations are simulated from ``true_params``."""

    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        """What is observed of a play ``[..., o]`` (e.g. the market price), differentiable."""
        ...

    def observed_contexts(self) -> Tensor | None:
        """Contexts ``[B, s]`` of the observations."""
        ...

    def observed_outcomes(self) -> Tensor | None:
        """Observations ``[B, o]`` (None: simulate them from ``true_params``)."""
        ...

    def observation_weights(self) -> Tensor | None:
        """Weights ``[B]`` ≥ 0 of the observations (e.g. a recency discount; None: uniform)."""
        ...

    def initial_theta(self) -> Tensor:
        """Values ``[p]`` of the entries of θ that are known (learned entries start elsewhere)."""
        ...

    def profile_from_observations(
        self, observations: Tensor, theta: Tensor, context: Tensor
    ) -> Tensor:
        """A starting profile ``[..., n, d]`` consistent with the observations."""
        ...


#: hook name -> the capability that declares it
HOOKS: dict[str, type] = {
    "equilibrium": ClosedFormStatic,
    "best_response": ClosedFormStatic,
    "equilibrium_policy": ClosedFormMarkov,
    "best_response_policy": ClosedFormMarkov,
    "observation_map": SimulacralData,
    "observed_contexts": SimulacralData,
    "observed_outcomes": SimulacralData,
    "observation_weights": SimulacralData,
    "initial_theta": SimulacralData,
    "profile_from_observations": SimulacralData,
}


#: optional attributes of a Markov game, with the value a game that does not set them has:
#: ``obs_scale`` (tensor or float) divides observations before policy networks; ``entropy_weight``
#: τ > 0 makes the equilibrium concept the entropy-regularised (logit) one; ``differentiable``
#: False marks a simulator without derivatives (a black box: score-function estimators only)
ATTRIBUTES: dict[str, float | bool] = {
    "obs_scale": 1.0,
    "entropy_weight": 0.0,
    "differentiable": True,
}


def attribute(game: object, name: str) -> object:
    """An optional game attribute of :data:`ATTRIBUTES`, or its default."""
    return getattr(game, name, ATTRIBUTES[name])


def provides(game: object, hook: str) -> bool:
    """Whether ``game`` declares ``hook``: its class defines it, and not as one of the base
    classes' placeholders (which raise or return None)."""
    if hook not in HOOKS:
        raise KeyError(f"unknown game hook {hook!r}; hooks: {', '.join(HOOKS)}")
    from imitgame.game.base import MarkovGame, StaticGame

    method = getattr(type(game), hook, None)
    if method is None:
        return False
    placeholders = (getattr(StaticGame, hook, None), getattr(MarkovGame, hook, None))
    return method not in placeholders


def declared_hooks(game: object) -> list[str]:
    """Every hook ``game`` declares, in :data:`HOOKS` order."""
    return [hook for hook in HOOKS if provides(game, hook)]
