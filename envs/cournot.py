"""N-firm Cournot competition.

Firm i produces q_i ≥ 0; in market m the inverse demand is P_m(Q) = s_m·a − b·Q (s_m a known
demand shifter, 1 by default) and costs are C_i(q) = c_i q + d_i q²/2:

    u_i(q; θ) = P(Q) q_i − C_i(q_i),        θ = (c_0..c_{N-1}, [d_0..d_{N-1}], a, b)

Interior equilibrium, with r_i = 1/(b + d_i) and A = s·a:
Q* = Σ r_i (A − c_i) / (1 + b Σ r_i),  q_i* = r_i (A − c_i − b Q*);
with d = 0: q_i* = (A − (N+1)c_i + Σc) / ((N+1)b).

Identifiability from quantities alone: the first-order conditions c_i = s_m a − b(Q_m + q_im)
are homogeneous of degree 1 in θ, so one scale must be known. Costs are identified when (a, b)
are known; with several markets that differ in known shifters s_m, costs and the intercept a
are identified together for known b (``learn=[costs, intercept]``).

Subclass and override :meth:`inverse_demand` or :meth:`cost` for another Cournot game (for
example isoelastic demand); the closed forms then switch off and the forward solver and a learned
destabilizer take over.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imitgame import StaticGame
from imitgame.errors import ImitgameError

BLOCKS = ("costs", "quadratic", "intercept", "slope")


class Cournot(StaticGame):
    """N-firm Cournot game with linear inverse demand and linear (+ quadratic) costs."""

    def __init__(
        self,
        n_firms: int = 3,
        costs: float | Sequence[float] | None = None,
        intercept: float = 100.0,
        slope: float = 1.0,
        quadratic_costs: float | Sequence[float] | None = None,
        learn: Sequence[str] = ("costs",),
        common_cost: bool = False,
        demand_shifters: Sequence[float] | None = None,
        cost_bounds: Sequence[float] = (0.0, 100.0),
        quadratic_bounds: Sequence[float] = (0.0, 10.0),
        intercept_bounds: Sequence[float] = (1.0, 1000.0),
        slope_bounds: Sequence[float] = (0.01, 100.0),
        max_quantity: float | None = None,
    ) -> None:
        if n_firms < 1:
            raise ImitgameError(f"n_firms must be >= 1, got {n_firms}")
        unknown = [b for b in learn if b not in BLOCKS]
        if unknown:
            raise ImitgameError(f"learn: unknown block(s) {unknown}; choose from {list(BLOCKS)}")
        if "quadratic" in learn and quadratic_costs is None:
            raise ImitgameError("learn includes 'quadratic' but quadratic_costs is not set")
        n_costs = 1 if common_cost else n_firms
        if costs is None:
            cost_values = (
                torch.linspace(10.0, 20.0, n_costs) if n_costs > 1 else torch.tensor([10.0])
            )
        else:
            cost_values = torch.as_tensor(costs, dtype=torch.get_default_dtype()).flatten()
            if cost_values.numel() == 1:
                cost_values = cost_values.expand(n_costs).clone()
            if cost_values.numel() != n_costs:
                raise ImitgameError(
                    f"costs has {cost_values.numel()} entries for {n_costs} cost parameter(s)"
                )
        self.n_firms = int(n_firms)
        self.n_costs = n_costs
        self.common_cost = bool(common_cost)
        self.has_quadratic = quadratic_costs is not None

        names = ["c"] if common_cost else [f"c_{i}" for i in range(n_firms)]
        values = [cost_values]
        low = [torch.full((n_costs,), float(cost_bounds[0]))]
        high = [torch.full((n_costs,), float(cost_bounds[1]))]
        self.blocks = {"costs": list(range(n_costs))}
        if self.has_quadratic:
            quad = torch.as_tensor(quadratic_costs, dtype=torch.get_default_dtype()).flatten()
            quad = quad.expand(n_firms).clone() if quad.numel() == 1 else quad
            if quad.numel() != n_firms:
                raise ImitgameError(
                    f"quadratic_costs has {quad.numel()} entries for {n_firms} firms"
                )
            self.blocks["quadratic"] = list(range(len(names), len(names) + n_firms))
            names += [f"d_{i}" for i in range(n_firms)]
            values.append(quad)
            low.append(torch.full((n_firms,), float(quadratic_bounds[0])))
            high.append(torch.full((n_firms,), float(quadratic_bounds[1])))
        self.blocks["intercept"] = [len(names)]
        self.blocks["slope"] = [len(names) + 1]
        names += ["a", "b"]
        values.append(torch.tensor([float(intercept), float(slope)]))
        low.append(torch.tensor([float(intercept_bounds[0]), float(slope_bounds[0])]))
        high.append(torch.tensor([float(intercept_bounds[1]), float(slope_bounds[1])]))

        shifters = None
        if demand_shifters is not None:
            shifters = torch.as_tensor(demand_shifters, dtype=torch.get_default_dtype()).flatten()
            if shifters.numel() < 1 or bool((shifters <= 0).any()):
                raise ImitgameError("demand_shifters must be a non-empty list of positive numbers")
        if max_quantity is None:
            max_quantity = (
                2.0
                * float(intercept)
                * (1.0 if shifters is None else float(shifters.max()))
                / float(slope)
            )
        super().__init__(
            n_agents=n_firms,
            action_dim=1,
            action_low=0.0,
            action_high=float(max_quantity),
            param_names=names,
            param_low=torch.cat(low),
            param_high=torch.cat(high),
            true_params=torch.cat(values),
            context_dim=0 if shifters is None else 1,
            agent_names=[f"firm_{i}" for i in range(n_firms)],
        )
        self.learned_params = [names[i] for block in learn for i in self.blocks[block]]
        self.register_buffer("shifters", shifters if shifters is not None else torch.ones(1))

    # --- θ layout -------------------------------------------------------------------------------
    def marginal_costs(self, theta: Tensor) -> Tensor:
        """c ``[..., N]``."""
        c = theta[..., : self.n_costs]
        return c.expand(*c.shape[:-1], self.n_firms) if self.common_cost else c

    def quadratic_coefficients(self, theta: Tensor) -> Tensor | None:
        """d ``[..., N]`` or None."""
        if not self.has_quadratic:
            return None
        i = self.blocks["quadratic"][0]
        return theta[..., i : i + self.n_firms]

    def demand(self, theta: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """Effective intercept s·a and slope b, each ``[..., 1]``."""
        a = theta[..., -2:-1]
        b = theta[..., -1:]
        if context is not None:
            a = a * context[..., :1]
        return a, b

    # --- the game (override these two for a new Cournot game) -----------------------------------
    def inverse_demand(self, total: Tensor, theta: Tensor, context: Tensor | None) -> Tensor:
        """P(Q) ``[..., 1]`` for total quantity ``total [..., 1]``."""
        a, b = self.demand(theta, context)
        return a - b * total

    def cost(self, quantities: Tensor, theta: Tensor) -> Tensor:
        """C_i(q_i) ``[..., N]`` for ``quantities [..., N]``."""
        total_cost = self.marginal_costs(theta) * quantities
        d = self.quadratic_coefficients(theta)
        if d is not None:
            total_cost = total_cost + 0.5 * d * quantities**2
        return total_cost

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0]
        price = self.inverse_demand(q.sum(-1, keepdim=True), theta, context)
        return price * q - self.cost(q, theta)

    # --- closed forms (linear demand, linear + quadratic costs) ---------------------------------
    @property
    def has_closed_forms(self) -> bool:
        cls = type(self)
        return cls.inverse_demand is Cournot.inverse_demand and cls.cost is Cournot.cost

    @property
    def has_equilibrium(self) -> bool:
        return self.has_closed_forms

    @property
    def has_best_response(self) -> bool:
        return self.has_closed_forms

    def _require_closed_forms(self) -> None:
        if not self.has_closed_forms:
            raise NotImplementedError(
                f"{type(self).__name__} overrides demand or cost: no closed form; "
                "use the forward solver"
            )

    def observed_contexts(self) -> Tensor | None:
        return self.shifters[:, None] if self.context_dim else None

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """BR_i = clip((A − b Q_{-i} − c_i) / (2b + d_i), 0, q_max)."""
        self._require_closed_forms()
        q = actions[..., 0]
        a, b = self.demand(theta, context)
        c = self.marginal_costs(theta)
        d = self.quadratic_coefficients(theta)
        others = q.sum(-1, keepdim=True) - q
        curvature = 2 * b if d is None else 2 * b + d
        response = (a - b * others - c) / curvature
        return self.project_actions(response.unsqueeze(-1))

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        """Nash equilibrium; firms that would produce < 0 are shut down and the rest re-solved."""
        self._require_closed_forms()
        a, b = self.demand(theta, context)
        c = self.marginal_costs(theta)
        d = self.quadratic_coefficients(theta)
        r = 1.0 / (b if d is None else b + d)
        r = r.expand(*torch.broadcast_shapes(r.shape, c.shape, a.shape))
        active = torch.ones_like(r, dtype=torch.bool)
        for _ in range(self.n_firms):  # at most N shut-downs; each pass is one batched solve
            ra = torch.where(active, r, 0.0)
            total = (ra * (a - c)).sum(-1, keepdim=True) / (1 + b * ra.sum(-1, keepdim=True))
            q = ra * (a - c - b * total)
            # shut down only the least viable firm per pass: removing one raises the price,
            # which can make the others viable again
            worst = torch.where(active, q, torch.inf).argmin(-1, keepdim=True)
            negative = torch.gather(q, -1, worst) <= 0
            if not bool(negative.any()):
                break
            drop = torch.zeros_like(active).scatter(-1, worst, negative)
            active = active & ~drop
        return self.project_actions(q.clamp(min=0).unsqueeze(-1))
