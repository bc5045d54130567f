"""Finite normal-form games: n players, finite action sets, payoff tensors that depend on θ.

A player's *action* is a mixed strategy σ_i on the simplex Δ(A_i), stored padded to the largest
action set: actions ``[..., n, A]`` with ``A = max_i A_i``, padded entries 0. Actions live in the
box [0, 1]^A (the framework's action box) and the game reads them through the retraction
σ_i = a_i⁺ ⊙ m_i / Σ_a a_i⁺ m_i (``m`` the mask of real actions), so a learned deviation or a
learned profile moved by Adam and projected onto the box is always a valid mixed strategy (a point
and every positive multiple of it are the same strategy). Closed forms return points of the
simplex.

Payoffs: a tensor ``U(θ) [..., n, A, ..., A]`` (one axis per player), by default linear in
user-given features, U(θ) = F0 + Σ_k θ_k F_k (a subclass overrides :meth:`payoff_tensor` with any
differentiable function). The expected payoff is multilinear,
u_i(σ) = Σ_a U_i[a] Π_j σ_j(a_j).

Equilibrium concepts (``equilibrium``):

* ``nash`` — best response = a pure action maximising q_i(a) = u_i(a, σ_-i);
* ``logit_qre`` — the logit quantal response equilibrium with precision λ, i.e. the Nash
  equilibrium of the entropy-regularised game u_i(σ) + (1/λ) H(σ_i) (τ = 1/λ is the entropy
  weight that a Markov game's ``entropy_weight`` sets for sampled actions; here strategies are
  mixed-strategy vectors and payoffs expectations, so the bonus H(σ_i)/λ sits in the expected
  payoff, differentiable in a learned λ, and the one regret estimator scores the regularised
  game). Its best response is softmax(λ q_i), so exact (regularised) exploitability is closed
  form: φ = Σ_i (1/λ) KL(σ_i ‖ softmax(λ q_i)). λ is the last entry of θ (``lambda``), known or
  learned. λ and the payoff scale are jointly unidentified (only λ·U matters): a learned λ is
  identified only when a known part of the payoffs (F0, or payoff parameters not learned) fixes
  the scale; the rank test reports it otherwise.

The QRE itself is computed by :func:`logit_qre`: λ-homotopy from the uniform profile (λ = 0)
with Newton steps on the fixed point σ_i = softmax(λ q_i(σ_-i)) in log space — the principal
branch, as Gambit traces it.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from imitgame.errors import ImitgameError
from imitgame.game.base import MarkovGame, StaticGame
from imitgame.game.hooks import attribute

Concept = Literal["nash", "logit_qre"]
LAMBDA = "lambda"


def expected_payoffs(payoff: Tensor, sigma: Tensor) -> Tensor:
    """u_i(σ) = Σ_a U_i[a] Π_j σ_j(a_j): ``payoff [..., n, A, ..., A]``, ``sigma [..., n, A]``
    -> ``[..., n]`` (leading dims broadcast)."""
    n = sigma.shape[-1 - 1]
    letters = string.ascii_letters[:n]
    operands = [payoff, *sigma.unbind(-2)]
    spec = "...z" + letters + "," + ",".join("..." + c for c in letters) + "->...z"
    return torch.einsum(spec, *operands)


def action_values(payoff: Tensor, sigma: Tensor) -> Tensor:
    """q_i(a) = u_i(a, σ_-i), the payoff of each pure action against the others' mixed
    strategies: ``[..., n, A]``. One contraction per player: the n contractions differ in which
    tensor axis stays free, so they are n einsum calls (each batched over all instances); one
    batched call over n·A vertex rows would cost n·A times the work."""
    n = sigma.shape[-2]
    letters = string.ascii_letters[:n]
    values = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        spec = "..." + letters + "".join(",..." + letters[j] for j in others) + "->..." + letters[i]
        values.append(
            torch.einsum(spec, payoff.select(-n - 1, i), *[sigma[..., j, :] for j in others])
        )
    return torch.stack(values, -2)


def entropy(sigma: Tensor) -> Tensor:
    """H(σ_i) = −Σ_a σ_i(a) log σ_i(a) per player ``[..., n]`` (0 log 0 = 0, finite gradient)."""
    positive = sigma > 0
    safe = torch.where(positive, sigma, torch.ones_like(sigma))
    return -torch.where(positive, sigma * safe.log(), torch.zeros_like(sigma)).sum(-1)


class FiniteGame(StaticGame):
    """A finite n-player normal-form game with payoffs ``U(θ) = F0 + Σ_k θ_k F_k``.

    ``base`` F0 ``[n, A_1, ..., A_n]`` and ``features`` ``[P, n, A_1, ..., A_n]`` (one per payoff
    parameter, named ``param_names``) define the default linear payoffs. ``learn`` names the θ
    entries an inverse problem recovers (``lambda`` included, under ``logit_qre``, to learn λ).
    """

    def __init__(
        self,
        *,
        base: Tensor | Sequence,
        features: Tensor | Sequence,
        param_names: Sequence[str],
        param_low: float | Sequence[float] | Tensor,
        param_high: float | Sequence[float] | Tensor,
        true_params: Sequence[float] | Tensor | None = None,
        learn: Sequence[str] | None = None,
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        lambda_bounds: Sequence[float] = (0.01, 100.0),
        action_names: Sequence[Sequence[str]] | None = None,
        agent_names: Sequence[str] | None = None,
    ) -> None:
        base = torch.as_tensor(base, dtype=torch.get_default_dtype())
        features = torch.as_tensor(features, dtype=torch.get_default_dtype())
        n = base.dim() - 1
        if n < 1 or base.shape[0] != n:
            raise ImitgameError(
                f"base payoffs have shape {list(base.shape)}, expected [n, A_1, ..., A_n]"
            )
        sizes = list(base.shape[1:])
        if any(s < 1 for s in sizes):
            raise ImitgameError(f"every player needs at least one action, got {sizes}")
        if features.dim() != base.dim() + 1 or tuple(features.shape[1:]) != tuple(base.shape):
            raise ImitgameError(
                f"features have shape {list(features.shape)}, expected [P, {n}, "
                + ", ".join(str(s) for s in sizes)
                + "]"
            )
        if features.shape[0] != len(param_names):
            raise ImitgameError(
                f"{features.shape[0]} payoff features for {len(param_names)} parameter names"
            )
        if LAMBDA in param_names:
            raise ImitgameError(f"{LAMBDA!r} is reserved for the QRE precision")
        width = max(sizes)
        self.n_actions = sizes
        super().__init__(
            n_agents=n,
            action_dim=width,
            action_low=0.0,
            action_high=1.0,
            param_names=list(param_names),
            param_low=param_low,
            param_high=param_high,
            true_params=true_params,
            agent_names=agent_names,
        )
        self.n_payoff_params = len(param_names)
        pad = [(0, width - s) for s in sizes]
        flat_pad = [x for pair in reversed(pad) for x in pair]
        self.register_buffer("base", torch.nn.functional.pad(base, flat_pad))
        self.register_buffer("features", torch.nn.functional.pad(features, flat_pad))
        mask = torch.zeros(n, width, dtype=torch.bool)
        for i, s in enumerate(sizes):
            mask[i, :s] = True
        self.register_buffer("action_mask", mask)
        self.action_names = (
            [list(names) for names in action_names]
            if action_names is not None
            else [[f"a{j}" for j in range(s)] for s in sizes]
        )
        if [len(x) for x in self.action_names] != sizes:
            raise ImitgameError(f"action_names do not match the action counts {sizes}")
        self.concept: Concept = "nash"
        self._lambda_value = float(qre_lambda)
        self._lambda_bounds = (float(lambda_bounds[0]), float(lambda_bounds[1]))
        self._payoff_learn = list(param_names) if learn is None else list(learn)
        self.set_equilibrium(
            equilibrium,
            qre_lambda=qre_lambda,
            learn_lambda=LAMBDA in self._payoff_learn,
            lambda_bounds=lambda_bounds,
        )

    # --- the equilibrium concept ------------------------------------------------------------------
    def set_equilibrium(
        self,
        concept: Concept,
        *,
        qre_lambda: float | None = None,
        learn_lambda: bool = False,
        lambda_bounds: Sequence[float] | None = None,
    ) -> FiniteGame:
        """Switch the equilibrium concept: ``logit_qre`` appends θ's last entry ``lambda`` (known
        value ``qre_lambda``, learned when ``learn_lambda``), ``nash`` drops it."""
        if concept not in ("nash", "logit_qre"):
            raise ImitgameError(f"equilibrium={concept!r} is not one of nash, logit_qre")
        p = self.n_payoff_params
        low, high = self.param_low[:p], self.param_high[:p]
        true = None if self.true_params is None else self.true_params[:p]
        names = list(self.param_names[:p])
        learned = [x for x in self._payoff_learn if x != LAMBDA]
        unknown = [x for x in learned if x not in names]
        if unknown:
            raise ImitgameError(f"learn: {unknown} are not parameters of the game ({names})")
        if concept == "logit_qre":
            lam_low, lam_high = lambda_bounds if lambda_bounds is not None else self._lambda_bounds
            lam = float(qre_lambda) if qre_lambda is not None else self._lambda_value
            if not 0 < lam_low < lam_high or not lam_low <= lam <= lam_high:
                raise ImitgameError(
                    f"qre_lambda={lam} must lie in the λ bounds [{lam_low}, {lam_high}] (low > 0)"
                )
            self._lambda_bounds = (float(lam_low), float(lam_high))
            names.append(LAMBDA)
            low = torch.cat([low, low.new_tensor([lam_low])])
            high = torch.cat([high, high.new_tensor([lam_high])])
            if true is not None:
                true = torch.cat([true, true.new_tensor([lam])])
            self._lambda_value = float(lam)
            if learn_lambda:
                learned.append(LAMBDA)
        elif learn_lambda:
            raise ImitgameError("a learned λ needs equilibrium=logit_qre")
        if not learned:
            raise ImitgameError("the game learns no θ entries (learn is empty)")
        self.concept = concept
        self.param_names = names
        self.param_dim = len(names)
        self.learned_params = [x for x in names if x in learned]
        self.param_low = low.clone()
        self.param_high = high.clone()
        if true is not None:
            self.true_params = true.clone()
        self._payoff_learn = [*learned]
        return self

    @property
    def is_qre(self) -> bool:
        return self.concept == "logit_qre"

    @property
    def temperature(self) -> float:
        """τ = 1/λ at the game's own (true or known) λ; 0 under Nash. (Not the Markov attribute
        ``entropy_weight``: a finite game's payoffs already hold the entropy bonus H(σ_i)/λ.)"""
        if not self.is_qre:
            return 0.0
        return 1.0 / self._lambda_value

    # --- payoffs ------------------------------------------------------------------------------
    def payoff_tensor(self, theta: Tensor) -> Tensor:
        """U(θ) ``[..., n, A, ..., A]`` from ``theta [..., p]`` (padded actions: 0)."""
        weights = theta[..., : self.n_payoff_params]
        linear = torch.tensordot(weights, self.features, dims=([-1], [0]))
        return self.base + linear

    def precision(self, theta: Tensor) -> Tensor:
        """λ ``[...]`` (the last entry of θ under ``logit_qre``)."""
        if not self.is_qre:
            raise ImitgameError("the game's equilibrium concept is nash: it has no precision λ")
        return theta[..., -1]

    def mixed(self, actions: Tensor) -> Tensor:
        """The mixed strategies ``[..., n, A]`` a box point stands for (see the module doc)."""
        weights = actions.clamp(min=0) * self.action_mask
        return weights / weights.sum(-1, keepdim=True).clamp(min=1e-300)

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """u_i(σ; θ) (+ H(σ_i)/λ under ``logit_qre``) ``[..., n]``."""
        sigma = self.mixed(actions)
        value = expected_payoffs(self.payoff_tensor(theta), sigma)
        if self.is_qre:
            value = value + entropy(sigma) / self.precision(theta)[..., None]
        return value

    def action_values(self, actions: Tensor, theta: Tensor) -> Tensor:
        """q_i(a) = u_i(a, σ_-i; θ) ``[..., n, A]`` (padded actions: −inf)."""
        q = action_values(self.payoff_tensor(theta), self.mixed(actions))
        return q.masked_fill(~self.action_mask, float("-inf"))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """softmax(λ q_i) under ``logit_qre``; a pure maximiser of q_i (a vertex) under ``nash``."""
        q = self.action_values(actions, theta)
        if self.is_qre:
            return torch.softmax(self.precision(theta)[..., None, None] * q, -1)
        best = q.argmax(-1)
        return torch.nn.functional.one_hot(best, self.action_dim).to(q.dtype)

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """The logit QRE on the principal branch (``logit_qre``), or a Nash equilibrium as its
        limit: the QRE at a large λ, refined by the forward solver (``nash``)."""
        if self.is_qre:
            return logit_qre(self, theta)
        from imitgame.solver.forward import solve_static_equilibrium  # the solver layer

        lam = 200.0 / self.payoff_scale(theta).clamp(min=1e-12)
        start = logit_qre(self, theta, lam)
        flat = theta.reshape(-1, theta.shape[-1])
        actions, _ = solve_static_equilibrium(
            self, flat, init=start.reshape(flat.shape[0], 1, self.n_agents, self.action_dim)
        )
        return self.mixed(actions).reshape(start.shape)

    def payoff_scale(self, theta: Tensor) -> Tensor:
        """max − min payoff ``[...]`` (Gambit's unit for regret and for λ)."""
        u = self.payoff_tensor(theta).flatten(-self.n_agents - 1)
        return u.amax(-1) - u.amin(-1)

    def uniform(self, batch_shape: Sequence[int] = ()) -> Tensor:
        """The uniform profile ``[*batch_shape, n, A]``."""
        sigma = self.action_mask.to(self.dtype)
        return (sigma / sigma.sum(-1, keepdim=True)).expand(*batch_shape, *sigma.shape)


# --- the QRE: homotopy in λ with Newton steps -----------------------------------------------------
def fixed_point_residual(mask: Tensor, x: Tensor, payoff: Tensor, lam: Tensor) -> Tensor:
    """r(x) = x − log softmax(λ q(softmax(x))) for log-strategies ``x [n, A]`` (padded: r = x)
    in the game with payoff tensor ``payoff [n, A, ..., A]``."""
    sigma = torch.softmax(x.masked_fill(~mask, float("-inf")), -1)
    q = action_values(payoff, sigma)
    target = torch.log_softmax((lam * q).masked_fill(~mask, float("-inf")), -1)
    return torch.where(mask, x - target, x).flatten()


def logit_qre(
    game: FiniteGame,
    theta: Tensor,
    lam: Tensor | float | None = None,
    *,
    steps: int = 10,
    newton: int = 4,
    tol: float = 1e-12,
) -> Tensor:
    """The logit QRE ``[..., n, A]`` under ``theta [..., p]`` at precision ``lam`` (default: θ's
    λ): σ_i = softmax(λ q_i(σ_-i)), traced from σ = uniform at λ = 0 in ``steps`` increments of
    λ, ``newton`` Newton steps each, then Newton to ``tol`` (all instances batched)."""
    from torch.func import jacrev, vmap

    theta = theta.detach()
    shape = theta.shape[:-1]
    flat = theta.reshape(-1, theta.shape[-1])
    m = flat.shape[0]
    if lam is None:
        target = game.precision(flat)
    else:
        target = torch.as_tensor(lam, dtype=flat.dtype, device=flat.device).expand(*shape)
        target = target.reshape(m)
    n, a = game.n_agents, game.action_dim
    mask = game.action_mask
    x = torch.log(game.uniform((m,))).masked_fill(~mask, 0.0)
    payoff = game.payoff_tensor(flat)  # [m, n, A, ..., A], fixed along the path
    jac = vmap(jacrev(lambda xx, u, lm: fixed_point_residual(mask, xx, u, lm)))
    res = vmap(lambda xx, u, lm: fixed_point_residual(mask, xx, u, lm))

    def newton_step(x: Tensor, lm: Tensor) -> Tensor:
        r = res(x, payoff, lm)
        j = jac(x, payoff, lm).reshape(m, n * a, n * a)
        dx = torch.linalg.solve(j, r.unsqueeze(-1)).squeeze(-1).reshape(m, n, a)
        # cap the step in log space: a Newton step from far away can overshoot
        size = dx.abs().amax((-1, -2), keepdim=True)
        return x - dx * (2.0 / size.clamp(min=2.0))

    def residual(x: Tensor, lm: Tensor) -> float:
        err = res(x, payoff, lm).abs().amax()
        return float(err) if bool(torch.isfinite(err)) else float("inf")

    with torch.no_grad():
        # adaptive continuation in the fraction f of λ: a step that Newton cannot close halves
        fraction, step = 0.0, 1.0 / steps
        while fraction < 1.0:
            nxt = min(1.0, fraction + step)
            trial = x
            for _ in range(newton):
                trial = newton_step(trial, target * nxt)
            if residual(trial, target * nxt) < 1e-6:
                x, fraction, step = trial, nxt, min(step * 1.5, 0.25)
            else:
                step /= 2
                if step < 1e-7:
                    break
        for _ in range(50):
            if residual(x, target) < tol:
                break
            x = newton_step(x, target)
        err = residual(x, target)
    if err > 1e-8:
        raise ImitgameError(
            f"the logit QRE did not converge (fixed-point residual {err:.3g}); try a smaller λ"
        )
    sigma = torch.softmax(x.masked_fill(~mask, float("-inf")), -1)
    return sigma.reshape(*shape, n, a)


def simulate_counts(
    game: FiniteGame,
    theta: Tensor,
    n_actions_per_player: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Observed action counts ``[K, n, A]``: ``n_actions_per_player`` i.i.d. draws per player
    from the game's equilibrium under ``theta [K, p]`` (each player's draws independent)."""
    if n_actions_per_player < 1:
        raise ImitgameError(f"n_actions_per_player must be >= 1, got {n_actions_per_player}")
    sigma = game.equilibrium(theta)  # [K, n, A]
    flat = sigma.reshape(-1, game.action_dim).cpu()
    draws = torch.multinomial(flat, n_actions_per_player, replacement=True, generator=generator)
    counts = torch.nn.functional.one_hot(draws, game.action_dim).sum(1)
    return counts.reshape(sigma.shape).to(sigma)


class DiscretizedGame(FiniteGame):
    """The finite view of a continuous one-shot game: each player's actions are ``grid`` evenly
    spaced points of its (1-dimensional, bounded) action interval, U(θ)[i, g_1..g_n] = the
    wrapped game's u_i at that grid profile (any differentiable dependence on θ). Its logit QRE
    is the continuous game's logit QRE restricted to the grid (it approaches the continuous
    game's as the grid refines); θ is the wrapped game's θ (+ λ)."""

    def __init__(
        self,
        game: StaticGame,
        grid: int = 21,
        *,
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        learn_lambda: bool = False,
        lambda_bounds: Sequence[float] = (1e-9, 1e6),
    ) -> None:
        if game.action_dim != 1 or game.context_dim:
            raise ImitgameError(
                f"{type(game).__name__}: a logit QRE over an action grid needs one-dimensional "
                "actions and no context"
            )
        low, high = game.action_low[:, 0], game.action_high[:, 0]
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ImitgameError(f"{type(game).__name__}: a grid needs finite action bounds")
        n = game.n_agents
        p = game.param_dim
        learn = list(game.learned_params) + ([LAMBDA] if learn_lambda else [])
        super().__init__(
            base=torch.zeros(n, *([grid] * n), dtype=game.dtype),
            features=torch.zeros(p, n, *([grid] * n), dtype=game.dtype),
            param_names=game.param_names,
            param_low=game.param_low,
            param_high=game.param_high,
            true_params=game.true_params,
            learn=learn,
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            agent_names=list(game.possible_agents),
        )
        self.inner = game
        steps = torch.linspace(0, 1, grid, dtype=game.dtype, device=game.device)
        points = low[:, None] + (high - low)[:, None] * steps  # [n, G]
        self.register_buffer("grid_points", points)
        # every joint grid profile [G^n, n, 1] (construction only)
        index = torch.cartesian_prod(*[torch.arange(grid)] * n).reshape(-1, n)
        profiles = points[torch.arange(n), index][..., None]
        self.register_buffer("profiles", profiles)

    def payoff_tensor(self, theta: Tensor) -> Tensor:
        """U(θ) ``[..., n, G, ..., G]``: the wrapped game's payoffs at every grid profile."""
        p = self.inner.param_dim
        u = self.inner.payoffs(self.profiles, theta[..., None, :p])  # [..., G^n, n]
        g = self.grid_points.shape[1]
        return u.movedim(-1, -2).reshape(*u.shape[:-2], self.n_agents, *([g] * self.n_agents))

    def mean_actions(self, actions: Tensor) -> Tensor:
        """Each player's expected continuous action ``[..., n, 1]`` under its mixed strategy."""
        return (self.mixed(actions) * self.grid_points).sum(-1, keepdim=True)


def configure_equilibrium(
    game: MarkovGame,
    concept: Concept | None,
    *,
    qre_lambda: float | None = None,
    learn_lambda: bool = False,
    grid: int = 21,
) -> MarkovGame:
    """The game under the requested equilibrium concept (``algo.equilibrium``): a
    :class:`FiniteGame` switches concept in place; a continuous one-shot game under
    ``logit_qre`` becomes its :class:`DiscretizedGame` view; a Markov game gets the entropy
    weight τ = 1/λ of the regret estimator (``nash``: τ = 0). ``concept`` None with no λ option
    set returns the game as it is."""
    if isinstance(game, FiniteGame):
        if concept is None and qre_lambda is None and not learn_lambda:
            return game
        return game.set_equilibrium(
            concept or game.concept,
            qre_lambda=qre_lambda,
            learn_lambda=learn_lambda or (LAMBDA in game.learned_params and concept != "nash"),
        )
    if not isinstance(game, StaticGame):
        if learn_lambda:
            raise ImitgameError("algo.learn_lambda: λ is learned for one-shot games only")
        if concept == "nash":
            game.entropy_weight = 0.0
        elif concept == "logit_qre" or qre_lambda is not None:
            if qre_lambda is None:
                if not float(attribute(game, "entropy_weight")) > 0:
                    raise ImitgameError(
                        "algo.equilibrium=logit_qre of a Markov game needs algo.qre_lambda"
                    )
            else:
                game.entropy_weight = 1.0 / float(qre_lambda)
        return game
    if concept == "logit_qre":
        view = DiscretizedGame(game, grid, learn_lambda=learn_lambda)
        if qre_lambda is None:
            # default precision: λ · (max − min payoff on the grid at the game's θ) = 1000
            ref = game.true_params if game.true_params is not None else view.param_low
            ref = torch.cat([ref[: game.param_dim], ref.new_ones(1)])
            qre_lambda = 1000.0 / float(view.payoff_scale(ref).clamp(min=1e-12))
        view.set_equilibrium("logit_qre", qre_lambda=qre_lambda, learn_lambda=learn_lambda)
        return view.to(device=game.device, dtype=game.dtype)
    if qre_lambda is not None or learn_lambda:
        raise ImitgameError("algo.qre_lambda / algo.learn_lambda need algo.equilibrium=logit_qre")
    return game
