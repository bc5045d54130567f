"""The one trainer: (stochastic) gradient descent ascent on the min-max objective.

One outer iteration, top to bottom:

1. the destabilizer takes ``ascent_steps`` ascent steps on L (the last one together with the
   stabilizer's descent step when ``updates="simultaneous"``, before it when ``"alternating"``);
2. the stabilizer takes one descent step; both project onto their feasible sets;
3. the iterate average (the answer of plain GDA) is updated; learning-rate schedules advance;
4. every ``eval_every`` iterations the answer is evaluated (regret, exploitability) and instances
   that meet the stopping criteria are frozen; the run ends when all are.

``method`` chooses the update rule: ``plain``; ``extragradient`` (step from the gradient at a
look-ahead point θ − η∇); ``optimistic`` (step along 2∇_t − ∇_{t−1}).
``optimizer=lbfgs`` (θ only, against an exact max-oracle, so that there is no ascent player):
step 2 becomes 20 quasi-Newton iterations with a strong-Wolfe line search on φ(θ) = max_ρ ψ,
whose gradient is ∇_θ ψ at the oracle's ρ (Danskin) — scale-free steps for ill-conditioned θ.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from imitgame.config import GDAConfig
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.solver.objective import MinMaxObjective, ObjectiveTerms
from imitgame.solver.stabilizer import Stabilizer


@dataclass
class Player:
    """One side of the game: its parameter groups, optimiser, schedule and projection."""

    name: str
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    project: Callable[[], None]
    maximize: bool
    previous_grads: list[Tensor] | None = field(default=None)


def _constant(t: int) -> float:
    return 1.0


def _lr_lambda(config: GDAConfig) -> Callable[[int], float]:
    total = max(config.iterations, 1)
    final = config.lr_final_fraction
    if config.schedule == "inverse_sqrt":
        return lambda t: (1.0 + t / config.schedule_timescale) ** -0.5
    if config.schedule == "cosine":
        return lambda t: final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(t / total, 1.0)))
    if config.schedule == "exponential":
        return lambda t: final ** min(t / total, 1.0)
    return lambda t: 1.0


class IterateAverage:
    """Per-instance running average of a stabilizer's trainable parameters (uniform or EMA).

    Plain GDA converges only on average; frozen (converged) instances stop being averaged so
    that a batch of K instances gives the same answers as K single runs.
    """

    def __init__(self, stabilizer: Stabilizer, mode: str, ema_decay: float) -> None:
        self.mode = mode
        self.ema_decay = ema_decay
        self.model = copy.deepcopy(stabilizer)
        for p in self.model.parameters():
            p.requires_grad_(False)
        k = stabilizer.n_instances
        self.count = torch.zeros(k, device=stabilizer.theta_fixed.device)

    @torch.no_grad()
    def update(self, stabilizer: Stabilizer, active: Tensor, started: bool) -> None:
        if self.mode == "none":
            return  # the last iterate is the answer; nothing to keep
        if not started:
            for avg, p in zip(self.model.parameters(), stabilizer.parameters()):
                avg.copy_(p)
            return
        self.count += active.to(self.count.dtype)
        if self.mode == "uniform":
            weight = torch.where(active, 1.0 / self.count.clamp(min=1), 0.0)
        else:
            weight = torch.where(active, 1.0 - self.ema_decay, 0.0)
        for avg, p in zip(self.model.parameters(), stabilizer.parameters()):
            if p.dim() and p.shape[0] == weight.shape[0]:
                w = weight.view(-1, *([1] * (p.dim() - 1))).to(p.dtype)
                avg.add_(w * (p - avg))
            else:
                avg.copy_(p)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.count.copy_(state["count"])


@dataclass
class EvalRecord:
    """What the trainer reports at an evaluation: per-instance tensors, ``[K]`` or ``[K, p]``."""

    step: int
    regret: Tensor
    value: Tensor
    exploitability: Tensor | None
    observation_loss: Tensor | None
    theta: Tensor
    theta_step: Tensor
    active: Tensor
    learning_rates: dict[str, float]


class GDA:
    """Gradient descent (stabilizer) ascent (destabilizer) on a :class:`MinMaxObjective`.

    ``evaluate(stabilizer) -> [K]`` measures the exploitability of the stabilizer's answer (an
    exact oracle or a fresh ascent); without it the current ψ stands in (a lower bound).

    ``config.lr_theta = 0`` holds θ fixed (``holds_theta``): θ gets no descent step, and when the
    stabilizer owns nothing else the run is an evaluation — the destabilizer alone ascends (or, with
    nothing to train at all, :meth:`iterate` yields the starting evaluation and ends).
    """

    def __init__(
        self,
        objective: MinMaxObjective,
        config: GDAConfig,
        *,
        evaluate: Callable[[Stabilizer], Tensor] | None = None,
    ) -> None:
        self.objective = objective
        self.config = config
        self.evaluate_fn = evaluate
        self.stabilizer = objective.stabilizer
        self.destabilizer = objective.destabilizer
        self.step_count = 0
        self.stop_requested = False  # stop after the current step ...
        self.stop_event: threading.Event | None = None  # ... or once this is set (a signal)
        k = self.stabilizer.n_instances
        self.active = torch.ones(k, dtype=torch.bool, device=self.stabilizer.theta_fixed.device)
        self.last_theta = self.stabilizer.theta().detach().clone()
        self.average = IterateAverage(self.stabilizer, config.averaging, config.ema_decay)

        # lr_theta = 0 holds θ fixed: no θ group (the run measures the profile's exploitability)
        self.holds_theta = bool(self.stabilizer.theta_parameters()) and config.lr_theta == 0
        theta_params = [] if self.holds_theta else self.stabilizer.theta_parameters()
        groups = [
            {"params": theta_params, "lr": config.lr_theta, "name": "theta"},
            {
                "params": self.stabilizer.profile_parameters(),
                "lr": config.lr_profile,
                "name": "profile",
            },
        ]
        groups = [g for g in groups if g["params"]]
        deviation = [p for p in self.destabilizer.parameters() if p.requires_grad]
        self.players: list[Player] = []
        self.descent = self._player("stabilizer", groups, self.stabilizer.project, maximize=False)
        self.ascent = None
        if deviation:
            dev_groups = [{"params": deviation, "lr": config.lr_deviation, "name": "deviation"}]
            self.ascent = self._player(
                "destabilizer", dev_groups, self.destabilizer.project, maximize=True
            )
        if self.descent is None and not self.holds_theta:
            raise ImitgameError("the stabilizer owns nothing to learn (no θ entries, fixed π)")
        if config.optimizer == "lbfgs" and (self.ascent is not None or config.method != "plain"):
            raise ImitgameError(
                "algo.optimizer=lbfgs needs an exact max-oracle (algo.destabilizer=best_response) "
                "and algo.method=plain: a learned destabilizer moves the objective under the "
                "line search"
            )

    def _player(
        self, name: str, groups: list[dict], project: Callable[[], None], *, maximize: bool
    ) -> Player | None:
        if not groups:
            return None
        schedule = _lr_lambda(self.config)
        if self.config.optimizer == "lbfgs" and not maximize:
            smooth = getattr(self.stabilizer.profile(), "unconstrained", False)
            if groups[0]["name"] != "theta" or (len(groups) != 1 and not smooth):
                raise ImitgameError(
                    "algo.optimizer=lbfgs needs a stabilizer that owns θ alone (inverse problems) "
                    "or θ and an unconstrained profile (no projection); use adam"
                )
            # quasi-Newton steps on θ with a strong-Wolfe line search (20 iterations per step):
            # scale-free, and exact when the destabilizer is an exact max-oracle (Danskin)
            optimizer = torch.optim.LBFGS(
                [p for g in groups for p in g["params"]],
                lr=groups[0]["lr"],
                max_iter=20,  # inner quasi-Newton iterations per GDA step (projection after)
                history_size=20,
                line_search_fn="strong_wolfe",
                # the trainer's own criteria decide when θ has converged, not L-BFGS's defaults
                # (which stop at a loss change of 1e-9, far above float64's floor on φ)
                tolerance_grad=1e-14,
                tolerance_change=1e-16,
            )
            optimizer.param_groups[0]["name"] = "theta"
            schedule = _constant
        elif self.config.optimizer in ("adam", "auto", "lbfgs"):
            betas = (self.config.adam_beta1, self.config.adam_beta2)
            optimizer = torch.optim.Adam(groups, betas=betas, maximize=maximize)
        else:
            optimizer = torch.optim.SGD(groups, maximize=maximize)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        player = Player(
            name=name,
            params=[p for g in groups for p in g["params"]],
            optimizer=optimizer,
            scheduler=scheduler,
            project=project,
            maximize=maximize,
        )
        self.players.append(player)
        return player

    # --- one iteration ---------------------------------------------------------------------------
    def _gradients(self, players: list[Player]) -> tuple[list[list[Tensor]], ObjectiveTerms]:
        terms = self.objective()
        if not torch.isfinite(terms.loss):
            raise DivergenceError(
                f"the objective became non-finite ({terms.loss.item()}) at step {self.step_count}",
                self.step_count,
            )
        flat = [p for player in players for p in player.params]
        grads = torch.autograd.grad(terms.loss, flat, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(flat, grads)]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise DivergenceError(
                f"a gradient became non-finite at step {self.step_count}", self.step_count
            )
        out, i = [], 0
        for player in players:
            out.append(grads[i : i + len(player.params)])
            i += len(player.params)
        return out, terms

    def _update(self, players: list[Player]) -> ObjectiveTerms:
        grads, terms = self._gradients(players)
        if self.config.method == "extragradient":
            saved = [[p.detach().clone() for p in player.params] for player in players]
            with torch.no_grad():
                for player, player_grads in zip(players, grads):
                    sign = 1.0 if player.maximize else -1.0
                    lrs = _param_lrs(player)
                    for p, g, lr in zip(player.params, player_grads, lrs):
                        p.add_(sign * lr * g)
                    player.project()
            try:
                grads, _ = self._gradients(players)
            finally:
                with torch.no_grad():
                    for player, values in zip(players, saved):
                        for p, v in zip(player.params, values):
                            p.copy_(v)
        elif self.config.method == "optimistic":
            current = grads
            grads = []
            for player, player_grads in zip(players, current):
                previous = player.previous_grads or player_grads
                grads.append([2 * g - h for g, h in zip(player_grads, previous)])
                player.previous_grads = [g.detach().clone() for g in player_grads]

        frozen = None if bool(self.active.all()) else self._snapshot(players)
        for player, player_grads in zip(players, grads):
            for p, g in zip(player.params, player_grads):
                p.grad = g
            player.optimizer.step()
            player.optimizer.zero_grad(set_to_none=True)
            player.project()
        if frozen is not None:
            self._restore_frozen(players, frozen)
        return terms

    def _snapshot(self, players: list[Player]) -> list[list[Tensor]]:
        return [[p.detach().clone() for p in player.params] for player in players]

    @torch.no_grad()
    def _restore_frozen(self, players: list[Player], saved: list[list[Tensor]]) -> None:
        k = self.active.shape[0]
        for player, values in zip(players, saved):
            for p, v in zip(player.params, values):
                if p.dim() and p.shape[0] == k:
                    keep = self.active.view(-1, *([1] * (p.dim() - 1)))
                    p.copy_(torch.where(keep, p, v))

    def _lbfgs_update(self, player: Player) -> ObjectiveTerms:
        """L-BFGS iterations of the stabilizer: the closure re-evaluates the objective (and
        with it the exact best responses) at every line-search point."""
        frozen = None if bool(self.active.all()) else self._snapshot([player])
        last: dict[str, ObjectiveTerms] = {}

        def closure() -> Tensor:
            grads, terms = self._gradients([player])
            for p, g in zip(player.params, grads[0]):
                p.grad = g
            last["terms"] = terms
            return terms.loss.detach()

        start = self._snapshot([player])
        try:
            player.optimizer.step(closure)
        except DivergenceError:
            self._restore_all([player], start)  # the line search left θ at its failed trial
            raise
        player.optimizer.zero_grad(set_to_none=True)
        before = [p.detach().clone() for p in player.params]
        player.project()
        if frozen is not None:
            self._restore_frozen([player], frozen)
        if any(not torch.equal(b, p) for b, p in zip(before, player.params)):
            # projection (or freezing) moved θ off the quasi-Newton step: its curvature pairs
            # no longer describe the steps taken, so start the history afresh
            player.optimizer.state.clear()
        return last["terms"]

    @torch.no_grad()
    def _restore_all(self, players: list[Player], saved: list[list[Tensor]]) -> None:
        for player, values in zip(players, saved):
            for p, v in zip(player.params, values):
                p.copy_(v)

    def step(self) -> ObjectiveTerms:
        """One outer GDA iteration."""
        cfg = self.config
        if self.descent is None:  # θ held fixed, nothing else to learn: the deviations ascend
            terms = self._ascend_only()
            self._after_step()
            return terms
        if cfg.optimizer == "lbfgs":
            terms = self._lbfgs_update(self.descent)
            self._after_step()
            return terms
        if self.ascent is not None:
            extra = cfg.ascent_steps if cfg.updates == "alternating" else cfg.ascent_steps - 1
            for _ in range(extra):
                self._update([self.ascent])
        if cfg.updates == "simultaneous" and self.ascent is not None:
            terms = self._update([self.ascent, self.descent])
        else:
            terms = self._update([self.descent])
        self._after_step()
        return terms

    def _ascend_only(self) -> ObjectiveTerms:
        """``ascent_steps`` destabilizer updates (an evaluation run: the stabilizer is fixed)."""
        if self.ascent is None:
            with torch.no_grad():
                return self.objective()
        for _ in range(self.config.ascent_steps):
            terms = self._update([self.ascent])
        return terms

    def _after_step(self) -> None:
        cfg = self.config
        started = self.step_count >= int(cfg.average_start * cfg.iterations)
        self.average.update(self.stabilizer, self.active, started)
        for player in self.players:
            player.scheduler.step()
        self.step_count += 1

    # --- evaluation and stopping -----------------------------------------------------------------
    @property
    def answer(self) -> Stabilizer:
        """The stabilizer whose θ and π are reported: the iterate average, or the last iterate."""
        return self.average.model if self.config.averaging != "none" else self.stabilizer

    def evaluate(self) -> EvalRecord:
        answer = self.answer
        with torch.no_grad():
            terms = self.objective(answer)
        exploit = self.evaluate_fn(answer) if self.evaluate_fn is not None else None
        theta = answer.theta().detach().clone()
        scale = self.last_theta.abs().clamp(min=1e-8)
        theta_step = ((theta - self.last_theta).abs() / scale).amax(-1)
        self.last_theta = theta
        cfg = self.config
        criteria = cfg.tol_exploitability is not None or cfg.tol_step is not None
        if criteria and self.step_count > 0:
            done = torch.ones_like(self.active)
            if cfg.tol_exploitability is not None:
                measure = exploit if exploit is not None else terms.regret.clamp(min=0)
                done &= measure <= cfg.tol_exploitability
            if cfg.tol_step is not None:
                done &= theta_step <= cfg.tol_step
            self.active &= ~done
        lrs = {
            g["name"]: float(g["lr"])
            for player in self.players
            for g in player.optimizer.param_groups
        }
        return EvalRecord(
            step=self.step_count,
            regret=terms.regret.detach(),
            value=terms.value.detach(),
            exploitability=None if exploit is None else exploit.detach(),
            observation_loss=None
            if terms.observation_loss is None
            else terms.observation_loss.detach(),
            theta=theta,
            theta_step=theta_step,
            active=self.active.clone(),
            learning_rates=lrs,
        )

    def iterate(self, *, progress: bool = True) -> Iterator[EvalRecord]:
        """Run to ``config.iterations`` (or until every instance has converged), yielding an
        :class:`EvalRecord` every ``eval_every`` iterations and at the end."""
        cfg = self.config
        bar = tqdm(
            total=cfg.iterations,
            initial=self.step_count,
            disable=not progress,
            desc="GDA",
            dynamic_ncols=True,
            leave=False,
        )
        try:
            if self.step_count == 0:
                yield self.evaluate()  # the starting point, for the record
            if not self.players:
                return  # θ held fixed and nothing else learns: the first evaluation is the run
            while self.step_count < cfg.iterations and bool(self.active.any()):
                if self.stop_requested or (
                    self.stop_event is not None and self.stop_event.is_set()
                ):
                    self.stop_requested = True
                    return
                self.step()
                bar.update(1)
                if self.step_count % cfg.eval_every == 0 or self.step_count == cfg.iterations:
                    record = self.evaluate()
                    postfix = {"regret": f"{record.regret.mean().item():.3g}"}
                    if record.exploitability is not None:
                        # the evaluator's running figure for the current answer (Markov games: a
                        # short warm-started ascent, not the final exploitability)
                        postfix["run_exploit"] = f"{record.exploitability.mean().item():.3g}"
                    postfix["active"] = int(record.active.sum())
                    bar.set_postfix(postfix)
                    yield record
        finally:
            bar.close()

    # --- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_count,
            "stabilizer": self.stabilizer.state_dict(),
            "destabilizer": self.destabilizer.state_dict(),
            "average": self.average.state_dict(),
            "active": self.active.clone(),
            "last_theta": self.last_theta.clone(),
            "players": [
                {
                    "optimizer": p.optimizer.state_dict(),
                    "scheduler": p.scheduler.state_dict(),
                    "previous_grads": p.previous_grads,
                }
                for p in self.players
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
        self.stabilizer.load_state_dict(state["stabilizer"])
        self.destabilizer.load_state_dict(state["destabilizer"])
        self.average.load_state_dict(state["average"])
        self.active.copy_(state["active"])
        self.last_theta.copy_(state["last_theta"])
        for player, saved in zip(self.players, state["players"]):
            player.optimizer.load_state_dict(saved["optimizer"])
            player.scheduler.load_state_dict(saved["scheduler"])
            player.previous_grads = saved["previous_grads"]


def _param_lrs(player: Player) -> list[float]:
    return [float(g["lr"]) for g in player.optimizer.param_groups for _ in g["params"]]
