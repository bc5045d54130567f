"""Compliance checks for a user's game: one call validates a new game.

    from imitgame.testing import check_game
    report = check_game(MyGame())

Every check either passes (and is listed in the returned :class:`GameReport`) or raises an
``AssertionError`` whose message names the check and says what to change. In order:

* **shapes** and dtypes of ``initial_state``, ``observe``, ``reward`` (``payoffs``) and
  ``transition`` on a ``[K, B]`` batch (K instances, B observations/environments);
* **finite** rewards at random interior actions and θ near ``true_params`` (along random-action
  episodes of a Markov game);
* **differentiable** rewards: torch expressions of actions and θ (no ``.detach()``, ``.item()``,
  ``.numpy()``), and no learned entry of θ (``learned_params``) nor any agent's continuous action
  has a zero gradient at every one of many random points (``round``/``floor``, unused θ);
* PettingZoo's ``parallel_api_test`` and ``parallel_seed_test`` on the ParallelEnv face;
* **batching**: a batched call equals element-wise calls, θ ``[K, 1, p]`` broadcasts against
  ``[D, K, B]`` (the regret estimator's deviation rows);
* float64 ``gradcheck`` of reward (and transition) and of the regret ψ;
* every hook the game declares (:func:`~imitgame.game.hooks.declared_hooks`), for shape, dtype,
  bounds, batching and — where the framework differentiates through it — gradients:
  ``equilibrium`` (no profitable deviation: exact with ``best_response``, else found by gradient
  ascent on ψ), ``best_response`` (beats random deviations and gradient ascent),
  ``equilibrium_policy``/``best_response_policy`` (policies act within bounds; the best response
  to the equilibrium gains nothing, by sampled regret), and the simulacral data hooks
  (``observation_map``, ``observed_contexts``, ``observed_outcomes``, ``observation_weights``,
  ``initial_theta``, ``profile_from_observations``);
* the optional attributes ``obs_scale`` and ``entropy_weight`` when the game sets them.

The checks run on a float64 copy of the game, single-threaded, and leave the global random state
and thread count as they were.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test
from torch import Tensor

from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.hooks import HOOKS, attribute, declared_hooks
from imitgame.game.strategies import ActionProfile, ActionSample, Strategy
from imitgame.solver.regret import estimate_regret
from imitgame.solver.rollout import episode_generator, rollout, sample_episode_noise

#: the hooks of each kind of game (the others are ignored by the framework)
STATIC_HOOKS = ("equilibrium", "best_response")
MARKOV_HOOKS = ("equilibrium_policy", "best_response_policy")
SIMULACRAL_HOOKS = tuple(h for h in HOOKS if h not in STATIC_HOOKS + MARKOV_HOOKS)

DIFFERENTIABLE = (
    "must stay a differentiable torch expression of actions and θ: do not call .detach(), "
    ".item() or .numpy() inside it"
)
# substrings of the errors torch raises when a function leaves the autograd graph
_LEFT_TORCH = (
    "numpy",
    "does not require grad",
    "converted to scalar",
    "only one element tensors",
    "does not have a grad_fn",
)


@dataclass
class GameReport:
    """What :func:`check_game` verified (every entry of ``checks`` passed, or it raised).

    ``hooks``: the hooks the game declares (:func:`~imitgame.game.hooks.declared_hooks`);
    ``notes``: what was not checked and why (a closed form the game switches off, a hook of the
    other kind of game), and findings that are not failures (θ entries the data do not reach).
    """

    checks: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_game(
    game: MarkovGame,
    *,
    batch: tuple[int, int] = (2, 3),
    seed: int = 0,
    points: int = 64,
    ascent_steps: int = 300,
) -> GameReport:
    """Validate ``game``; raise AssertionError naming the first failed check.

    ``batch`` = (K, B) is the check batch; ``points`` the number of random points (episodes of a
    Markov game: a quarter of it) at which rewards must be finite and have nonzero gradients;
    ``ascent_steps`` the Adam steps of the deviation that tests closed-form equilibria and best
    responses.
    """
    threads = torch.get_num_threads()
    # tiny tensors: extra intra-op threads only add overhead (and stall on a busy CPU)
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _Checker(game, batch, seed, points, ascent_steps).run()
    finally:
        torch.set_num_threads(threads)


# --- helpers -------------------------------------------------------------------------------------
def _finite_box(low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """The box with infinite sides replaced by finite stand-ins (±10 around the finite side)."""
    lo = torch.where(torch.isfinite(low), low, torch.minimum(high, low.new_zeros(())) - 10.0)
    hi = torch.where(torch.isfinite(high), high, torch.maximum(lo, high.new_zeros(())) + 10.0)
    return lo, hi


def _interior(low: Tensor, high: Tensor, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Uniform draws ``shape`` in the middle 80% of the box ``[low, high]`` (finite stand-ins for
    infinite bounds)."""
    lo, hi = _finite_box(low, high)
    u = torch.rand(shape, generator=gen, dtype=low.dtype)
    return lo + (0.1 + 0.8 * u) * (hi - lo)


def _left_torch(exc: BaseException) -> bool:
    """Whether ``exc`` is what torch raises when a function leaves the autograd graph."""
    text = str(exc).lower()
    return isinstance(exc, TypeError) or any(s in text for s in _LEFT_TORCH)


def _call(name: str, fn: Callable[..., Any], *args: Any, tensor: bool = True) -> Any:
    """``fn(*args)`` with every error turned into an AssertionError that names ``name``."""
    try:
        out = fn(*args)
    except AssertionError:
        raise
    except NotImplementedError as exc:
        hook = name.split(".")[0]
        hint = (
            f"override the property has_{hook} to return False where the game has no {hook}"
            if hook in STATIC_HOOKS
            else f"a game declares {hook} by defining it: do not define it where it cannot work"
        )
        raise AssertionError(f"{name} raised NotImplementedError: {exc}; {hint}") from exc
    except Exception as exc:
        hint = f"; {name} {DIFFERENTIABLE}" if _left_torch(exc) else ""
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}{hint}") from exc
    if tensor and not isinstance(out, Tensor):
        raise AssertionError(
            f"{name} returned {type(out).__name__}, want a torch.Tensor; {name} {DIFFERENTIABLE}"
        )
    return out


@contextlib.contextmanager
def _step(name: str, hint: str = "") -> Iterator[None]:
    """Run a check; any error becomes an AssertionError that names the check."""
    extra = f" ({hint})" if hint else ""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{name} failed: {exc}{extra}") from exc
    except Exception as exc:
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}{extra}") from exc


def _shape(name: str, x: Tensor, want: Sequence[int | str], dtype: torch.dtype) -> None:
    """Assert ``x`` is a finite tensor of shape ``want`` (strings: any size) and ``dtype``."""
    assert isinstance(x, Tensor), f"{name} returned {type(x).__name__}, want a torch.Tensor"
    ok = x.dim() == len(want) and all(
        isinstance(w, str) or s == w for s, w in zip(x.shape, want, strict=True)
    )
    assert ok, f"{name} has shape {list(x.shape)}, want {list(want)}"
    assert x.dtype == dtype, (
        f"{name} has dtype {x.dtype}, want the game's {dtype}: build it from the inputs and keep "
        "constants in buffers (register_buffer) so that game.double()/.to() move them"
    )
    _finite(name, x)


def _finite(name: str, x: Tensor, where: str = "") -> None:
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        kind = "NaN" if bool(torch.isnan(x).any()) else "inf"
        raise AssertionError(
            f"{name} returned {kind} at {int(bad.sum())} of {x.numel()} entries{where}: it must be "
            "finite for every input inside the bounds (guard log/sqrt/division, e.g. with clamp)"
        )


def _close(a: Tensor, b: Tensor, rtol: float = 1e-8, atol: float = 1e-10) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol)


def _fmt(x: Tensor, digits: int = 4) -> str:
    values = x.detach().flatten().tolist()
    text = ", ".join(f"{v:.{digits}g}" for v in values[:8])
    return f"[{text}{', …' if len(values) > 8 else ''}]"


# --- the checker ---------------------------------------------------------------------------------
class _Checker:
    """One run of :func:`check_game` on a float64 copy of the game."""

    def __init__(
        self, game: MarkovGame, batch: tuple[int, int], seed: int, points: int, steps: int
    ) -> None:
        self.game = game
        self.report = GameReport(hooks=declared_hooks(game))
        self.k, self.b = batch
        self.seed = seed
        self.points = points
        self.ascent_steps = steps
        self.gen = torch.Generator().manual_seed(seed)
        with _step("game.double()", "buffers and parameters must be torch tensors"):
            self.g = copy.deepcopy(game).double().cpu()
        self.static = isinstance(self.g, StaticGame)
        self.fn = "payoffs" if self.static else "reward"
        self.continuous = self.g.n_discrete_actions is None
        self.contexts: Tensor | None = None
        self.context_index: Tensor | None = None
        self.obs_columns: int | None = None
        self.outcomes: Tensor | None = None
        self.eq_policy: Strategy | None = None
        self.eq_single: Strategy | None = None

    # --- set-up ---------------------------------------------------------------------------------
    def active(self, hook: str) -> bool:
        """Whether a declared hook is checked (a game may switch its closed forms off)."""
        if hook not in self.report.hooks:
            return False
        kind_ok = hook in MARKOV_HOOKS if not self.static else hook not in MARKOV_HOOKS
        if not kind_ok:
            kind = "one-shot" if self.static else "Markov"
            self.note(f"{hook}: not a hook of a {kind} game (the framework does not call it)")
            return False
        for name, flag in (
            ("equilibrium", "has_equilibrium"),
            ("best_response", "has_best_response"),
        ):
            if hook == name and not getattr(self.g, flag):
                self.note(f"{hook}: switched off ({flag} is False)")
                return False
        return True

    def note(self, text: str) -> None:
        if text not in self.report.notes:
            self.report.notes.append(text)

    def passed(self, name: str) -> None:
        self.report.checks.append(name)

    def theta_points(self, n: int, exact_first: bool = False) -> Tensor:
        """``[n, p]`` parameters: ``true_params`` moved by up to ±1% of each entry (entries at 0:
        by 0.1% of Θ's width), the first row unmoved with ``exact_first``; without true
        parameters, uniform in the interior of Θ."""
        g = self.g
        if g.true_params is None:
            return _interior(g.param_low, g.param_high, (n, g.param_dim), self.gen)
        true = g.true_params
        lo, hi = _finite_box(g.param_low, g.param_high)
        step = torch.where(true != 0, 0.01 * true.abs(), 1e-3 * (hi - lo))
        u = torch.rand((n, g.param_dim), generator=self.gen, dtype=true.dtype)
        if exact_first:
            u[0] = 0.5
        return g.project_params(true + step * (2 * u - 1))

    def random_actions(self, shape: tuple[int, ...]) -> Tensor:
        g = self.g
        if not self.continuous:
            return torch.randint(g.n_discrete_actions, shape, generator=self.gen).to(g.dtype)
        return _interior(g.action_low, g.action_high, shape, self.gen)

    def states(self, theta: Tensor, noise: Tensor, every: bool = False) -> tuple[Tensor, Tensor]:
        """Initial states ``[..., s]`` for ``theta [..., p]`` and the rows of the observed
        contexts they are (a one-shot game with ``observed_contexts``: drawn at random, or all of
        them in order with ``every`` when they fit, so that each context is visited), else
        ``initial_state`` (and an empty index)."""
        if self.contexts is None:
            state = _call("initial_state", self.g.initial_state, theta, noise)
            return state, torch.zeros(0, dtype=torch.long)
        shape, m = theta.shape[:-1], self.contexts.shape[0]
        if every and len(shape) == 1 and shape[0] >= m:
            index = torch.arange(shape[0]) % m
        else:
            index = torch.randint(m, shape, generator=self.gen)
        return self.contexts[index], index

    def setup(self) -> None:
        g = self.g
        k, b = self.k, self.b
        if self.static and self.active("observed_contexts"):
            self.check_observed_contexts()
        theta_k = self.theta_points(k, exact_first=True)
        self.theta = theta_k[:, None].expand(k, b, g.param_dim).clone()
        self.actions = self.random_actions((k, b, g.n_agents, g.action_dim))
        self.noise = g.sample_noise((k, b), self.gen)
        self.state, index = self.states(self.theta, self.noise)
        self.context_index = index if self.contexts is not None else None
        self.step_noise = g.sample_noise((k, b), self.gen)

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> GameReport:
        self.setup()
        self.check_shapes()
        self.check_rewards()
        self.check_pettingzoo()
        self.check_batching()
        self.check_gradcheck()
        if self.continuous and attribute(self.g, "differentiable"):
            self.check_regret_gradcheck()
        if self.static:
            if self.active("best_response"):
                self.check_best_response()
            if self.active("equilibrium"):
                self.check_equilibrium()
            for hook in SIMULACRAL_HOOKS:
                if hook != "observed_contexts" and self.active(hook):
                    getattr(self, f"check_{hook}")()
        else:
            for hook in SIMULACRAL_HOOKS + STATIC_HOOKS:
                self.active(hook)  # records the skip
            if self.active("equilibrium_policy"):
                self.check_equilibrium_policy()
            if self.active("best_response_policy"):
                self.check_best_response_policy()
        self.check_attributes()
        return self.report

    # --- the base contract ----------------------------------------------------------------------
    def check_shapes(self) -> None:
        g, k, b, n = self.g, self.k, self.b, self.g.n_agents
        fn = self.fn
        _shape("initial_state", self.state, [k, b, g.state_dim], g.dtype)
        reward = _call(fn, g.reward, self.state, self.actions, self.theta)
        assert reward.shape == (k, b, n), (
            f"reward has shape {list(reward.shape)}, want {[k, b, n]}: {fn} returns one payoff "
            "per agent for every leading batch index ([..., n_agents])"
        )
        assert reward.dtype == g.dtype, (
            f"{fn} has dtype {reward.dtype}, want the game's {g.dtype}: build it from the inputs "
            "and keep constants in buffers so that game.double() moves them"
        )
        obs = _call("observe", g.observe, self.state)
        _shape("observe", obs, [k, b, n, g.obs_dim], g.dtype)
        nxt = _call(
            "transition", g.transition, self.state, self.actions, self.theta, self.step_noise
        )
        _shape("transition", nxt, [k, b, g.state_dim], g.dtype)
        self.reward, self.next_state = reward, nxt
        self.passed("shapes")

    def sample_points(self) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        """Random points for the reward checks: θ ``[P, p]``, the initial states ``[P, s]``, and
        per step the actions ``[P, n, d]`` and the step noise (one step for a one-shot game)."""
        g = self.g
        if not self.static:
            p = max(self.points // 4, 4)
        elif self.contexts is None:
            p = self.points
        else:  # every observed context (up to 4096): θ entries may act in some contexts only
            p = max(self.points, min(self.contexts.shape[0], 4096))
        theta = self.theta_points(p)
        noise0 = g.sample_noise((p,), self.gen)
        state0, _ = self.states(theta, noise0, every=True)
        shape = (p, g.n_agents, g.action_dim)
        actions = [self.random_actions(shape) for _ in range(g.horizon)]
        noises = [g.sample_noise((p,), self.gen) for _ in range(g.horizon)]
        return theta, state0, actions, noises

    def play(
        self, theta: Tensor, state0: Tensor, actions: list[Tensor], noises: list[Tensor]
    ) -> list[Tensor]:
        """Rewards ``[P, n]`` at every step of the episodes that play ``actions``."""
        g, state, rewards = self.g, state0, []
        for t, a in enumerate(actions):
            rewards.append(_call(self.fn, g.reward, state, a, theta))
            if t + 1 < len(actions):
                state = _call("transition", g.transition, state, a, theta, noises[t])
        return rewards

    def check_rewards(self) -> None:
        """Finite rewards and nonzero gradients at many random points."""
        g, fn = self.g, self.fn
        theta, state0, actions, noises = self.sample_points()
        with torch.no_grad():
            state = state0
            for t, a in enumerate(actions):
                r = _call(fn, g.reward, state, a, theta)
                bad = ~torch.isfinite(r).all(-1)
                if bool(bad.any()):
                    i = int(bad.nonzero()[0, 0])
                    kind = "NaN" if bool(torch.isnan(r[i]).any()) else "inf"
                    step = f" step {t} of a random-action episode," if g.horizon > 1 else ""
                    context = f" context {_fmt(state[i])}," if self.static and g.context_dim else ""
                    raise AssertionError(
                        f"{fn} returned {kind} at{step} {int(bad.sum())} of {len(r)} "
                        f"random interior points, e.g. actions {_fmt(a[i])},{context} "
                        f"θ {_fmt(theta[i])}: {_fmt(r[i])}; it must be finite for every action "
                        "inside the bounds and θ in Θ (guard log/sqrt/division, e.g. with clamp)"
                    )
                if t + 1 < len(actions):
                    state = _call("transition", g.transition, state, a, theta, noises[t])
                    _finite("transition", state, f" (step {t} of a random-action episode)")
        self.passed(f"finite {fn}")

        theta_grad, action_grads = self.gradients(theta, state0, actions, noises)
        nonzero = (theta_grad != 0).any(0)
        dead = [name for name in g.learned_params if not bool(nonzero[g.param_index(name)])]
        if dead and self.contexts is not None:
            # an entry may act only in contexts the data lack (an hour never observed): try
            # contexts drawn uniformly from the box the observed ones span, widened by half
            low, high = self.contexts.amin(0), self.contexts.amax(0)
            span = (high - low).clamp(min=1.0)  # constant columns (a one-hot never on) move too
            u = torch.rand(state0.shape, generator=self.gen, dtype=state0.dtype)
            try:
                box_grad, _ = self.gradients(
                    theta, low - 0.5 * span + 2 * u * span, actions, noises
                )
            except AssertionError:  # the game cannot play in such contexts: no evidence
                box_grad = torch.zeros_like(theta_grad)
            alive = (box_grad != 0).any(0)
            unseen = [name for name in dead if bool(alive[g.param_index(name)])]
            if unseen:
                self.note(
                    f"learned θ entries {unseen} act only in contexts outside observed_contexts "
                    "(unidentified by these data)"
                )
            dead = [name for name in dead if name not in unseen]
        where = f"{len(theta)} random points" + (" (episodes)" if g.horizon > 1 else "")
        # no gradient in any entry at all: θ probably leaves the graph
        detached = f"; if θ enters through .item()/.detach()/.numpy(): {fn} {DIFFERENTIABLE}"
        assert not dead, (
            f"{fn} has zero gradient in θ (is it built from non-differentiable ops like "
            f"round/floor, or does it ignore θ?): the learned entries {dead} have zero gradient "
            f"at all {where}; make {fn} a smooth function of them, or take them out of "
            "learned_params if they really never matter"
            + (detached if not bool(theta_grad.ne(0).any()) else "")
        )
        if self.continuous:
            per_agent = torch.stack(action_grads).ne(0).any(-1).flatten(0, 1).any(0)  # [n]
            frozen = [g.possible_agents[i] for i in range(g.n_agents) if not bool(per_agent[i])]
            assert not frozen, (
                f"{fn} has zero gradient in the actions of {frozen} at all {where} (is it built "
                "from non-differentiable ops like round/floor/argmax, or does it ignore them?): "
                "gradient-based solvers cannot move these actions"
            )
        self.passed(f"differentiable {fn} (nonzero gradients in learned θ and actions)")

    def gradients(
        self, theta: Tensor, state0: Tensor, actions: list[Tensor], noises: list[Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        """Gradients of Σ_t Σ_i w_ti r_ti (random weights w: no cancellation between agents) in
        θ ``[P, p]`` and in the actions ``[P, n, d]`` of every step (continuous games)."""
        fn = self.fn
        theta = theta.clone().requires_grad_(True)
        actions = [a.clone().requires_grad_(self.continuous) for a in actions]
        inputs = [theta, *actions] if self.continuous else [theta]
        rewards = self.play(theta, state0, actions, noises)
        weights = [torch.randn(r.shape, generator=self.gen, dtype=r.dtype) for r in rewards]
        total = torch.stack([(w * r).sum() for w, r in zip(weights, rewards, strict=True)]).sum()
        try:
            grads = torch.autograd.grad(total, inputs, allow_unused=True)
        except Exception as exc:
            if _left_torch(exc):
                raise AssertionError(
                    f"{fn} {DIFFERENTIABLE} ({type(exc).__name__}: {exc})"
                ) from exc
            raise AssertionError(
                f"the gradient of {fn} raised {type(exc).__name__}: {exc}"
            ) from exc
        grads = [
            torch.zeros_like(x) if d is None else d for x, d in zip(inputs, grads, strict=True)
        ]
        for x, d in zip(("θ", "the actions"), (grads[0], torch.cat(grads[1:] or [grads[0]]))):
            assert bool(torch.isfinite(d).all()), (
                f"{fn} has a NaN/inf gradient in {x} at random interior points: guard the "
                "operations whose derivative blows up (sqrt/log near 0, division, pow)"
            )
        return grads[0], grads[1:]

    def check_pettingzoo(self) -> None:
        game = self.game

        def make() -> MarkovGame:
            env = copy.deepcopy(game)
            if env.true_params is None:  # reset() plays under true_params: lend it θ's centre
                lo, hi = _finite_box(env.param_low, env.param_high)
                env.true_params = 0.5 * (lo + hi)
            return env

        if game.true_params is None:
            self.note("PettingZoo tests ran under the centre of Θ (the game has no true_params)")
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            with _step("pettingzoo.parallel_api_test"):
                parallel_api_test(make(), num_cycles=game.horizon + 2)
            self.passed("pettingzoo.parallel_api_test")
            with _step("pettingzoo.parallel_seed_test"):
                parallel_seed_test(make, num_cycles=game.horizon + 2)
            self.passed("pettingzoo.parallel_seed_test")

    def check_batching(self) -> None:
        g, fn = self.g, self.fn
        state, actions, theta, noise = self.state, self.actions, self.theta, self.step_noise
        reward, nxt = self.reward, self.next_state
        for idx in [(0, 0), (self.k - 1, self.b - 1)]:
            single = _call(fn, g.reward, state[idx], actions[idx], theta[idx])
            assert _close(single, reward[idx]), (
                f"batched reward differs from unbatched at {idx}: {reward[idx].tolist()} vs "
                f"{single.tolist()}: {fn} must act on the last dimensions only (reduce over "
                "dim=-1/-2, never over the whole tensor) and broadcast leading batch dimensions"
            )
            single_next = _call(
                "transition", g.transition, state[idx], actions[idx], theta[idx], noise[idx]
            )
            assert _close(single_next, nxt[idx]), (
                f"batched transition differs from unbatched at {idx}: act on the last dimension "
                "only and broadcast leading batch dimensions"
            )
        # the regret estimator's layout: deviation rows [D, K, B] against θ [K, 1, p]
        other = self.random_actions(actions.shape)
        rows = torch.stack([actions, other])
        wide = _call(fn, g.reward, state.expand(2, *state.shape), rows, theta[:, :1])
        each = torch.stack([reward, _call(fn, g.reward, state, other, theta)])
        assert _close(wide, each), (
            f"batched reward differs when θ is [K, 1, p] and the actions carry a leading row "
            f"dimension [D, K, B, n, d] (how the regret estimator calls {fn}): "
            f"{list(wide.shape)} vs {list(each.shape)}; broadcast θ and the state against the "
            "actions"
        )
        if g.horizon > 1:
            init = _call("initial_state", g.initial_state, theta[:, :1], self.noise)
            assert _close(init, state), (
                "initial_state under θ [K, 1, p] and noise [K, B, e] differs from θ [K, B, p]: "
                "broadcast θ against the noise"
            )
            wide_next = _call(
                "transition", g.transition, state.expand(2, *state.shape), rows, theta[:, :1], noise
            )
            each_next = torch.stack([nxt, g.transition(state, other, theta, noise)])
            assert _close(wide_next, each_next), (
                "batched transition differs when θ is [K, 1, p], the noise [K, B, e] and the "
                "actions [D, K, B, n, d]: broadcast them against each other"
            )
        self.passed("batching")

    def check_gradcheck(self) -> None:
        g = self.g
        s0, a0, th0, e0 = (
            self.state[0, :1],
            self.actions[0, :1],
            self.theta[0, :1],
            self.step_noise[0, :1],
        )
        inputs = (a0.clone().requires_grad_(self.continuous), th0.clone().requires_grad_(True))
        self.gradcheck(self.fn, lambda a, t: g.reward(s0, a, t), inputs)
        # a black-box simulator (``differentiable = False``, imitgame.adapters) has no transition
        # derivative to check: its games use the score-function / zeroth-order estimators
        smooth = g.horizon > 1 and attribute(g, "differentiable")
        if smooth:
            self.gradcheck("transition", lambda a, t: g.transition(s0, a, t, e0), inputs)
        elif g.horizon > 1:
            self.note("transition not gradchecked: the game declares differentiable = False")
        self.passed("gradcheck(reward" + (", transition)" if smooth else ")"))

    @staticmethod
    def gradcheck(name: str, fn: Callable[..., Tensor], inputs: tuple[Tensor, ...]) -> None:
        # many inputs (a large θ): compare random directional derivatives instead of every entry
        fast = sum(x.numel() for x in inputs if x.requires_grad) > 64
        try:
            torch.autograd.gradcheck(fn, inputs, fast_mode=fast)
        except Exception as exc:
            if _left_torch(exc):
                raise AssertionError(
                    f"{name} {DIFFERENTIABLE} ({type(exc).__name__}: {exc})"
                ) from exc
            raise AssertionError(
                f"gradcheck({name}) failed: its autograd gradient differs from finite differences "
                f"in float64 ({type(exc).__name__}: {str(exc)[:400]}); use differentiable torch "
                "ops (no custom backward with wrong formulas, no in-place edits of inputs)"
            ) from exc

    def check_regret_gradcheck(self) -> None:
        g, k, b = self.g, self.k, self.b
        profile = ActionProfile(self.actions, g.action_low, g.action_high, learnable=False)
        dev0 = self.random_actions(self.actions.shape)
        state0 = self.state if self.static else None

        def regret_of(th: Tensor, dev: Tensor) -> Tensor:
            deviation = ActionProfile(dev, g.action_low, g.action_high, learnable=False)
            deviation.actions = dev  # keep the graph to ``dev``
            return estimate_regret(
                g,
                th,
                profile,
                deviation,
                batch_shape=(k, b),
                state0=state0,
                # the same shocks on every call: finite differences need a deterministic ψ
                generator=torch.Generator().manual_seed(self.seed),
            ).regret

        inputs = (self.theta[:, 0].clone().requires_grad_(True), dev0.requires_grad_(True))
        self.gradcheck("regret", regret_of, inputs)
        self.passed("gradcheck(regret)")

    # --- one-shot closed forms ------------------------------------------------------------------
    def check_actions(self, name: str, x: Tensor, shape: Sequence[int]) -> None:
        """``x`` is a finite ``[..., n, d]`` tensor of the game's dtype inside the action box."""
        g = self.g
        _shape(name, x, list(shape), g.dtype)
        tol = 1e-9 * (1 + torch.maximum(g.action_low.abs(), g.action_high.abs()))
        tol = torch.where(torch.isfinite(tol), tol, torch.zeros_like(tol))
        outside = (x < g.action_low - tol) | (x > g.action_high + tol)
        assert not bool(outside.any()), (
            f"{name} returns actions outside the action bounds at {int(outside.sum())} entries "
            f"(e.g. {_fmt(x[outside])}): project them with game.project_actions"
        )

    def gains(self, theta: Tensor, state: Tensor, profile: Tensor, deviation: Tensor) -> Tensor:
        """Unilateral gains ``[..., n]``: u_i(ρ_i, π_-i) − u_i(π) for ``profile`` π ``[*L, n, d]``
        and ``deviation`` ρ ``[..., *L, n, d]`` (θ ``[*L, p]``, state ``[*L, s]``)."""
        g, n = self.g, self.g.n_agents
        eye = torch.eye(n, dtype=torch.bool).view(n, *([1] * (deviation.dim() - 2)), n, 1)
        rows = torch.where(eye, deviation.unsqueeze(0), profile)  # [n, ..., n, d]
        u = g.reward(state.expand(*rows.shape[:-2], state.shape[-1]), rows, theta)
        own = torch.diagonal(u, dim1=0, dim2=-1)  # [..., n]
        return own - g.reward(state, profile, theta)

    def ascent(
        self, theta: Tensor, state: Tensor, profile: Tensor, starts: Sequence[Tensor]
    ) -> Tensor:
        """The best unilateral gains ``[*L, n]`` that Adam ascent on ψ finds against ``profile``
        ``[*L, n, d]`` from each of ``starts`` (a fixed budget: a lower bound on the max)."""
        g = self.g
        lo, hi = _finite_box(g.action_low, g.action_high)
        width = hi - lo
        z = ((torch.stack(list(starts)) - lo) / width).detach().requires_grad_(True)
        steps = self.ascent_steps
        optimizer = torch.optim.Adam([z], lr=0.05, maximize=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=5e-5)
        best = None
        for _ in range(steps + 1):
            gain = self.gains(theta, state, profile, lo + z * width)
            seen = torch.nan_to_num(gain.detach(), nan=-math.inf)  # NaN at an edge: no gain
            best = seen if best is None else torch.maximum(best, seen)
            optimizer.zero_grad(set_to_none=True)
            gain.sum().backward()
            assert z.grad is not None
            z.grad = torch.nan_to_num(z.grad, nan=0.0, posinf=0.0, neginf=0.0)
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                z.copy_((g.project_actions(lo + z * width) - lo) / width)
        assert best is not None
        return best.amax(0)

    def check_best_response(self) -> None:
        g, k, b = self.g, self.k, self.b
        shape = (k, b, g.n_agents, g.action_dim)
        state, actions, theta = self.state, self.actions, self.theta
        br = _call("best_response", g.best_response_in, state, actions, theta)
        self.check_actions("best_response", br, shape)
        wide = _call("best_response", g.best_response_in, state, actions, theta[:, :1])
        assert _close(wide, br, rtol=1e-6, atol=1e-8), (
            f"best_response under θ [K, 1, p] (how the framework calls it) differs from θ "
            f"[K, B, p]: shapes {list(wide.shape)} vs {list(br.shape)}; broadcast θ against the "
            "actions"
        )
        idx = (k - 1, b - 1)
        single = _call("best_response", g.best_response_in, state[idx], actions[idx], theta[idx])
        assert _close(single, br[idx], rtol=1e-6, atol=1e-8), (
            f"batched best_response differs from unbatched at {idx}: {_fmt(br[idx])} vs "
            f"{_fmt(single)}; act on the last dimensions only"
        )
        self.passed("best_response: shape, dtype, bounds, batching")

        with torch.no_grad():
            scale = g.reward(state, actions, theta).abs().mean().clamp(min=1.0)
            random = self.random_actions(actions.shape)
            best = self.gains(theta, state, actions, br)
            other = self.gains(theta, state, actions, random)
        beaten = other > best + 1e-8 * scale
        assert not bool(beaten.any()), (
            f"best_response is beaten by a random deviation: agent gains {_fmt(best[beaten])} "
            f"from best_response vs {_fmt(other[beaten])} from random actions; best_response "
            "must maximise each agent's payoff against the others' actions"
        )
        self.passed("best responses beat random deviations")
        found = self.ascent(theta, state, actions, [br, random])
        tol = 1e-4 * scale
        beaten = found > best + tol
        assert not bool(beaten.any()), (
            f"best_response is not a best response: gradient ascent on the payoff finds gains "
            f"{_fmt(found[beaten])} where best_response gains {_fmt(best[beaten])} (tolerance "
            f"{float(tol):.3g}); fix best_response (or payoffs)"
        )
        self.passed("best responses beat gradient ascent")

    def check_equilibrium(self) -> None:
        g, k, b = self.g, self.k, self.b
        shape = (k, b, g.n_agents, g.action_dim)
        state, theta = self.state, self.theta
        eq = _call("equilibrium", g.equilibrium_in, state, theta)
        self.check_actions("equilibrium", eq, shape)
        wide = _call("equilibrium", g.equilibrium_in, state, theta[:, :1])
        with contextlib.suppress(RuntimeError):  # a game without context: [K, 1, n, d]
            wide = wide.expand(shape)
        assert _close(wide, eq, rtol=1e-6, atol=1e-8), (
            f"equilibrium under θ [K, 1, p] (how the framework calls it) differs from θ "
            f"[K, B, p]: shapes {list(wide.shape)} vs {list(eq.shape)}; broadcast θ against the "
            "context"
        )
        idx = (k - 1, b - 1)
        single = _call("equilibrium", g.equilibrium_in, state[idx], theta[idx])
        assert _close(single, eq[idx], rtol=1e-6, atol=1e-8), (
            f"batched equilibrium differs from unbatched at {idx}: {_fmt(eq[idx])} vs "
            f"{_fmt(single)}; act on the last dimensions only"
        )
        self.passed("equilibrium: shape, dtype, bounds, batching")
        self.eq = eq

        with torch.no_grad():
            scale = g.reward(state, eq, theta).abs().mean().clamp(min=1.0)
        if self.active("best_response"):
            profile = ActionProfile(eq, g.action_low, g.action_high, learnable=False)
            br = g.best_response_in(state, eq, theta)
            deviation = ActionProfile(br, g.action_low, g.action_high, learnable=False)
            with torch.no_grad():
                phi = estimate_regret(
                    g, theta[:, 0], profile, deviation, batch_shape=(k, b), state0=state
                ).regret
            assert bool((phi.abs() <= 1e-8 * scale).all()), (
                f"the closed-form equilibrium has exploitability {_fmt(phi)} (by the game's "
                "best_response): fix equilibrium (or payoffs) so that no agent gains by deviating"
            )
            self.passed("equilibrium has zero exploitability")
            return
        random = self.random_actions(eq.shape)
        found = self.ascent(theta, state, eq, [eq, random])
        tol = 1e-6 * scale
        bad = found > tol
        if bool(bad.any()):
            i = bad.any(-1).nonzero()[0].tolist()
            raise AssertionError(
                f"the closed-form equilibrium is not an equilibrium: {self.ascent_steps} steps of "
                f"gradient ascent on ψ find unilateral gains {_fmt(found[tuple(i)])} (tolerance "
                f"{float(tol):.3g}) at θ {_fmt(theta[tuple(i)])}, where equilibrium returns "
                f"{_fmt(eq[tuple(i)])}; fix equilibrium (or payoffs)"
            )
        self.passed("equilibrium has no profitable deviation (gradient ascent on ψ)")

    # --- Markov closed forms --------------------------------------------------------------------
    def policy_episode(self, name: str, policy: Any, theta_k: Tensor) -> list[Tensor]:
        """Play ``policy`` from initial states under ``theta_k [K, p]``; check every ``act``.
        Returns the observations ``[K, B, n, o]`` at each step."""
        g = self.g
        assert isinstance(policy, Strategy), (
            f"{name} returned {type(policy).__name__}, want an imitgame Strategy (act(obs, t) -> "
            "ActionSample)"
        )
        k, b = theta_k.shape[0], self.b
        theta = theta_k[:, None]
        noise0, steps = sample_episode_noise(g, (k, b), self.gen)
        state = g.initial_state(theta, noise0)
        seen = []
        for t in range(g.horizon):
            obs = g.observe(state)
            seen.append(obs)
            sample = _call(f"{name}.act", policy.act, obs, t, tensor=False)
            self.check_sample(name, sample, (k, b), t)
            if t == 0:
                wide = _call(f"{name}.act", policy.act, obs.expand(2, *obs.shape), t, tensor=False)
                self.check_sample(name, wide, (2, k, b), t, rows=True)
                if sample.log_prob is None:
                    assert _close(wide.actions, sample.actions.expand_as(wide.actions)), (
                        f"{name}.act on observations with a leading row dimension [D, K, B, n, o] "
                        "(the regret estimator's deviation rows) differs from row-wise calls"
                    )
            if t + 1 < g.horizon:
                state = g.transition(state, sample.actions, theta, steps[t])
        return seen

    def check_sample(
        self, name: str, sample: Any, batch: tuple[int, ...], t: int, rows: bool = False
    ) -> None:
        g = self.g
        where = f"{name}.act(obs{' with deviation rows' if rows else ''}, t={t})"
        assert isinstance(sample, ActionSample), (
            f"{where} returned {type(sample).__name__}, want an ActionSample(actions, log_prob)"
        )
        self.check_actions(f"{where}.actions", sample.actions, (*batch, g.n_agents, g.action_dim))
        if not self.continuous:
            a = sample.actions
            ok = bool((a == a.round()).all()) and bool((a <= g.n_discrete_actions - 1).all())
            assert ok, f"{where} returns actions that are not in 0..{g.n_discrete_actions - 1}"
        if sample.log_prob is not None:
            _shape(f"{where}.log_prob", sample.log_prob, [*batch, g.n_agents], g.dtype)
            if not self.continuous:
                assert bool((sample.log_prob <= 1e-9).all()), (
                    f"{where}.log_prob is positive: log-probabilities of discrete actions are ≤ 0"
                )

    def check_k_batching(self, name: str, full: Strategy, single: Strategy, obs: Tensor) -> None:
        """The last instance of ``full`` acts like the policy built for it alone."""
        a = full.act(obs, 0)
        if a.log_prob is not None:
            self.note(f"{name}: batching over θ not compared (stochastic actions)")
            return
        one = _call(f"{name}.act", single.act, obs[-1:], 0, tensor=False).actions
        assert _close(one, a.actions[-1:], rtol=1e-6, atol=1e-8), (
            f"{name} built for θ [K, p] acts differently in instance K-1 than when built for that "
            "instance alone: treat the K instances independently"
        )

    def check_equilibrium_policy(self) -> None:
        g = self.g
        theta_k = self.theta[:, 0]
        policy = _call("equilibrium_policy", g.equilibrium_policy, theta_k, tensor=False)
        obs = self.policy_episode("equilibrium_policy", policy, theta_k)
        single = _call("equilibrium_policy", g.equilibrium_policy, theta_k[-1:], tensor=False)
        self.check_k_batching("equilibrium_policy", policy, single, obs[0])
        self.eq_policy, self.eq_single = policy, single
        self.passed("equilibrium_policy: shape, dtype, bounds, batching")
        if "best_response_policy" not in self.report.hooks:
            self.note("equilibrium_policy: exploitability not checked (no best_response_policy)")

    def check_best_response_policy(self) -> None:
        g = self.g
        theta_k = self.theta[:, 0]
        if self.eq_policy is None:
            self.note("best_response_policy: no equilibrium_policy to respond to")
            return
        profile = self.eq_policy
        br = _call("best_response_policy", g.best_response_policy, profile, theta_k, tensor=False)
        if br is None:
            self.note("best_response_policy: returned None for the equilibrium profile")
            return
        obs = self.policy_episode("best_response_policy", br, theta_k)
        single = _call(
            "best_response_policy",
            g.best_response_policy,
            self.eq_single,
            theta_k[-1:],
            tensor=False,
        )
        if single is not None:
            self.check_k_batching("best_response_policy", br, single, obs[0])
        self.passed("best_response_policy: shape, dtype, bounds, batching")

        # sampled regret of the equilibrium against its best response, in independent groups of
        # episodes (their spread is the standard error of a stochastic game's estimate)
        groups, episodes = 8, 128
        tau = float(attribute(g, "entropy_weight"))
        gains, scales = [], []
        with torch.no_grad():
            for i in range(groups):
                estimate = estimate_regret(
                    g,
                    theta_k,
                    profile,
                    br,
                    batch_shape=(self.k, episodes),
                    generator=episode_generator(g, self.seed + i),
                    entropy_weight=tau,
                )
                gains.append(estimate.gains)
                init, steps = sample_episode_noise(
                    g, (self.k, episodes), episode_generator(g, self.seed + i)
                )
                traj = rollout(g, theta_k[:, None], profile, initial_noise=init, step_noise=steps)
                scales.append(traj.returns.abs().mean())
        per_group = torch.stack(gains)  # [G, K, n]
        gain = per_group.mean(0)
        regret = gain.sum(-1)
        error = per_group.std(0) / groups**0.5
        scale = float(torch.stack(scales).mean().clamp(min=1e-6))
        tol = 4 * error + 1e-3 * scale
        where = f"{groups * episodes} episodes per instance"
        assert bool((gain >= -tol).all()), (
            f"best_response_policy gains less than the equilibrium profile against it: sampled "
            f"gains {_fmt(gain)} (tolerance {_fmt(tol, 3)}, {where}): a best response is at least "
            "as good as any strategy; fix best_response_policy"
        )
        assert bool((regret.abs() <= tol.sum(-1)).all()), (
            f"the equilibrium_policy is exploitable: its best response gains {_fmt(gain)} "
            f"(sampled regret {_fmt(regret)}, tolerance {_fmt(tol.sum(-1), 3)}, {where}); fix "
            "equilibrium_policy (or best_response_policy)"
        )
        self.passed("equilibrium_policy has zero exploitability (sampled, by best_response_policy)")

    # --- simulacral data ------------------------------------------------------------------------
    def check_observed_contexts(self) -> None:
        g = self.g
        contexts = _call("observed_contexts", g.observed_contexts, tensor=False)
        if contexts is None:
            self.passed("observed_contexts (None: the default context)")
            return
        _shape("observed_contexts", contexts, ["M", g.state_dim], g.dtype)
        assert g.context_dim > 0, (
            "observed_contexts returns contexts but the game has context_dim=0: pass context_dim "
            "to StaticGame.__init__"
        )
        assert contexts.shape[0] >= 1, "observed_contexts is empty"
        self.contexts = contexts
        self.passed("observed_contexts: shape, dtype, finite")

    def check_observation_map(self) -> None:
        g, k, b = self.g, self.k, self.b
        state, actions, theta = self.state, self.actions, self.theta
        y = _call("observation_map", g.observation_map, actions, theta[:, :1], state)
        assert y.dim() == 3 and y.shape[:2] == (k, b) and y.shape[-1] >= 1, (
            f"observation_map has shape {list(y.shape)}, want [{k}, {b}, o]: one row of o observed "
            "columns per play, [..., o] (e.g. price.unsqueeze(-1))"
        )
        _shape("observation_map", y, [k, b, y.shape[-1]], g.dtype)
        full = _call("observation_map", g.observation_map, actions, theta, state)
        assert _close(full, y), (
            "observation_map under θ [K, 1, p] (how the framework calls it) differs from θ "
            "[K, B, p]: broadcast θ against the actions and context"
        )
        for idx in [(0, 0), (k - 1, b - 1)]:
            single = _call(
                "observation_map", g.observation_map, actions[idx], theta[idx], state[idx]
            )
            assert _close(single, y[idx]), (
                f"batched observation_map differs from unbatched at {idx}: {_fmt(y[idx])} vs "
                f"{_fmt(single)}; act on the last dimensions only"
            )
        self.obs_columns = int(y.shape[-1])
        self.obs_sample = y
        # differentiable in actions and θ: the simulacral loss is minimised through it
        a = actions[:1, :2].clone().requires_grad_(True)
        th = theta[:1, :2].clone().requires_grad_(True)
        ctx = state[:1, :2]
        out = _call("observation_map", g.observation_map, a, th, ctx)
        assert out.requires_grad, (
            f"observation_map {DIFFERENTIABLE} (its output does not require grad although "
            "actions and θ do)"
        )
        self.gradcheck("observation_map", lambda a_, t_: g.observation_map(a_, t_, ctx), (a, th))
        grads = torch.autograd.grad(out.sum(), (a, th), allow_unused=True)
        assert any(d is not None and bool((d != 0).any()) for d in grads), (
            "observation_map has zero gradient in the actions and θ: the observation loss "
            "cannot move the profile or θ (is it built from round/floor, or detached?)"
        )
        self.passed("observation_map: shape, dtype, batching, gradcheck")

    def check_observed_outcomes(self) -> None:
        g = self.g
        outcomes = _call("observed_outcomes", g.observed_outcomes, tensor=False)
        if outcomes is None:
            self.passed("observed_outcomes (None: simulated from true_params)")
            return
        m = self.contexts.shape[0] if self.contexts is not None else "M"
        o = self.obs_columns if self.obs_columns is not None else "o"
        assert isinstance(outcomes, Tensor) and outcomes.dim() == 2, (
            f"observed_outcomes has shape {list(getattr(outcomes, 'shape', []))}, want [M, o] = "
            f"[{m}, {o}]: one row per observed context, observation_map's columns"
        )
        try:
            _shape("observed_outcomes", outcomes, [m, o], g.dtype)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc} (M: the rows of observed_contexts, o: the columns of observation_map)"
            ) from None
        self.outcomes = outcomes
        self.passed("observed_outcomes: shape, dtype, finite")

    def check_observation_weights(self) -> None:
        g = self.g
        weights = _call("observation_weights", g.observation_weights, tensor=False)
        if weights is None:
            self.passed("observation_weights (None: uniform)")
            return
        m = self.contexts.shape[0] if self.contexts is not None else "M"
        _shape("observation_weights", weights, [m], g.dtype)
        assert bool((weights >= 0).all()), (
            f"observation_weights must be >= 0; {int((weights < 0).sum())} are negative "
            f"(e.g. {_fmt(weights[weights < 0])})"
        )
        assert bool((weights > 0).any()), "observation_weights are all zero: nothing to fit"
        self.passed("observation_weights: shape, finite, >= 0, not all zero")

    def check_initial_theta(self) -> None:
        g = self.g
        theta = _call("initial_theta", g.initial_theta)
        _shape("initial_theta", theta, [g.param_dim], g.dtype)
        known = [i for i, name in enumerate(g.param_names) if name not in g.learned_params]
        outside = [
            g.param_names[i]
            for i in known
            if not bool(g.param_low[i] <= theta[i] <= g.param_high[i])
        ]
        assert not outside, (
            f"initial_theta: the known (not learned) entries {outside} lie outside Θ "
            "(param_low/param_high)"
        )
        self.passed("initial_theta: shape, dtype, finite, known entries in Θ")

    def check_profile_from_observations(self) -> None:
        g, k, b = self.g, self.k, self.b
        if self.outcomes is not None and self.context_index is not None:
            observations = self.outcomes[self.context_index]
        elif self.obs_columns is not None:
            actions = getattr(self, "eq", self.actions)
            with torch.no_grad():
                observations = g.observation_map(actions, self.theta[:, :1], self.state)
        else:
            self.note("profile_from_observations: no observations (no observation_map)")
            return
        state, theta = self.state, self.theta
        name = "profile_from_observations"
        shape = (k, b, g.n_agents, g.action_dim)
        profile = _call(name, g.profile_from_observations, observations, theta[:, :1], state)
        self.check_actions(name, profile, shape)
        full = _call(name, g.profile_from_observations, observations, theta, state)
        assert _close(full, profile, rtol=1e-6, atol=1e-8), (
            f"{name} under θ [K, 1, p] (how the framework calls it) differs from θ [K, B, p]"
        )
        idx = (k - 1, b - 1)
        single = _call(name, g.profile_from_observations, observations[idx], theta[idx], state[idx])
        assert _close(single, profile[idx], rtol=1e-6, atol=1e-8), (
            f"batched {name} differs from unbatched at {idx}; act on the last dimensions only"
        )
        self.passed(f"{name}: shape, dtype, bounds, batching")

    # --- optional attributes --------------------------------------------------------------------
    def check_attributes(self) -> None:
        g = self.g
        if hasattr(g, "obs_scale"):
            scale = torch.as_tensor(attribute(g, "obs_scale"), dtype=g.dtype)
            try:
                ok = torch.broadcast_shapes(scale.shape, (g.n_agents, g.obs_dim)) == (
                    g.n_agents,
                    g.obs_dim,
                )
            except RuntimeError:
                ok = False
            assert ok, (
                f"obs_scale has shape {list(scale.shape)}: it must broadcast against the "
                f"observations [..., {g.n_agents}, {g.obs_dim}] (a float or [obs_dim])"
            )
            assert bool((torch.isfinite(scale) & (scale > 0)).all()), (
                "obs_scale must be finite and > 0 (it divides the observations)"
            )
            self.passed("attribute obs_scale")
        if hasattr(g, "entropy_weight"):
            tau = attribute(g, "entropy_weight")
            assert isinstance(tau, int | float) and math.isfinite(tau) and tau >= 0, (
                f"entropy_weight must be a float >= 0, got {tau!r}"
            )
            if tau > 0 and self.eq_policy is not None:
                obs = g.observe(self.state)
                assert self.eq_policy.act(obs, 0).log_prob is not None, (
                    "entropy_weight > 0 needs stochastic strategies: equilibrium_policy.act must "
                    "return log-probabilities"
                )
            self.passed("attribute entropy_weight")
