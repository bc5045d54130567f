"""check_game: every shipped game passes; each kind of broken game fails with a message that names
the check and says what to change."""

from __future__ import annotations

import re
import time

import pytest
import torch
from torch import Tensor

from envs.bertrand import Bertrand
from envs.bertrand_differentiated import BertrandDifferentiated
from envs.cournot import Cournot
from envs.dynamic_cournot import DynamicCournot
from envs.electricity import ElectricityMarket
from envs.entry_game import EntryGame
from envs.fish_war import ConstantFraction, FishWar
from envs.fisher import Fisher
from imitgame import StaticGame
from imitgame.game.strategies import Strategy
from imitgame.testing import GameReport, check_game
from tests.support import IsoelasticCournot


# --- a tiny game and its broken variants ----------------------------------------------------------
class Duopoly(StaticGame):
    """u_i = (a − q_1 − q_2 − c) q_i with θ = (c, a); the equilibrium is q_i* = (a − c) / 3."""

    def __init__(self) -> None:
        super().__init__(
            n_agents=2,
            action_dim=1,
            action_low=0.0,
            action_high=20.0,
            param_names=["c", "a"],
            param_low=[0.0, 5.0],
            param_high=[5.0, 20.0],
            true_params=[1.0, 10.0],
        )

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0]
        c, a = theta[..., :1], theta[..., 1:2]
        return (a - q.sum(-1, keepdim=True) - c) * q


class ClosedFormDuopoly(Duopoly):
    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = (theta[..., 1:2] - theta[..., :1]) / 3
        return self.project_actions(q.unsqueeze(-1).expand(*q.shape[:-1], 2, 1))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        q = actions[..., 0]
        others = q.sum(-1, keepdim=True) - q
        response = (theta[..., 1:2] - theta[..., :1] - others) / 2
        return self.project_actions(response.unsqueeze(-1))


class WrongEquilibriumNoBestResponse(Duopoly):
    """The monopoly quantity split in two, q_i = (a − c) / 4: not a Nash equilibrium."""

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = (theta[..., 1:2] - theta[..., :1]) / 4
        return q.unsqueeze(-1).expand(*q.shape[:-1], 2, 1)


class WrongBestResponse(ClosedFormDuopoly):
    """Responds with 80% of the best quantity."""

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        return 0.8 * super().best_response(actions, theta, context)


class RoundPayoffs(Duopoly):
    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0]
        c, a = torch.round(theta[..., :1]), theta[..., 1:2]
        return (a - q.sum(-1, keepdim=True) - c) * q


class NaNPayoffs(Duopoly):
    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        return super().payoffs(actions, theta) + torch.log(actions[..., 0] - 5.0)


class DetachPayoffs(Duopoly):
    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        return super().payoffs(actions, theta).detach()


class NumpyPayoffs(Duopoly):
    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0].numpy()
        c, a = theta[..., :1].numpy(), theta[..., 1:2].numpy()
        return torch.as_tensor((a - q.sum(-1, keepdims=True) - c) * q)


class ItemPayoffs(Duopoly):
    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0]
        return (theta[..., 1:2].mean().item() - q.sum(-1, keepdim=True)) * q


class UnimplementedBestResponse(ClosedFormDuopoly):
    """Declares best_response but cannot compute it (and does not say so in has_best_response)."""

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        raise NotImplementedError("no closed form in this variant")


class ThetaFreePayoffs(Duopoly):
    """Ignores the learned cost: nothing identifies it."""

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        q = actions[..., 0]
        return (theta[..., 1:2] - q.sum(-1, keepdim=True)) * q


class MarketData(ClosedFormDuopoly):
    """The duopoly in markets of known size s (the context), with the price a·s − Q observed: the
    simulacral hooks."""

    def __init__(self) -> None:
        StaticGame.__init__(
            self,
            n_agents=2,
            action_dim=1,
            action_low=0.0,
            action_high=40.0,
            param_names=["c", "a"],
            param_low=[0.0, 5.0],
            param_high=[5.0, 20.0],
            true_params=[1.0, 10.0],
            context_dim=1,
        )
        self.register_buffer("sizes", torch.linspace(1.0, 2.0, 8)[:, None])
        self.learned_params = ["a"]

    def _shifted(self, theta: Tensor, context: Tensor | None) -> Tensor:
        a = theta[..., 1:2] * (1.0 if context is None else context[..., :1])
        return torch.cat([theta[..., :1].expand_as(a), a], -1)

    def payoffs(self, actions: Tensor, theta: Tensor, context: Tensor | None = None) -> Tensor:
        return super().payoffs(actions, self._shifted(theta, context))

    def equilibrium(self, theta: Tensor, context: Tensor | None = None) -> Tensor:
        return super().equilibrium(self._shifted(theta, context))

    def best_response(
        self, actions: Tensor, theta: Tensor, context: Tensor | None = None
    ) -> Tensor:
        return super().best_response(actions, self._shifted(theta, context))

    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        price = theta[..., 1] * context[..., 0] - actions[..., 0].sum(-1)
        return price.unsqueeze(-1)

    def observed_contexts(self) -> Tensor:
        return self.sizes

    def observed_outcomes(self) -> Tensor | None:
        return torch.linspace(3.0, 6.0, 8, dtype=self.dtype)[:, None]

    def observation_weights(self) -> Tensor | None:
        return torch.ones(8, dtype=self.dtype)

    def initial_theta(self) -> Tensor:
        return torch.tensor([1.0, 0.0], dtype=self.dtype)

    def profile_from_observations(
        self, observations: Tensor, theta: Tensor, context: Tensor
    ) -> Tensor:
        total = theta[..., 1:2] * context[..., :1] - observations
        return self.project_actions((total / 2).unsqueeze(-1).expand(*total.shape[:-1], 2, 1))


class FlatObservationMap(MarketData):
    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        return super().observation_map(actions, theta, context)[..., 0]


class NegativeWeights(MarketData):
    def observation_weights(self) -> Tensor | None:
        return torch.linspace(-1.0, 1.0, 8, dtype=self.dtype)


class FlatOutcomes(MarketData):
    def observed_outcomes(self) -> Tensor | None:
        return torch.linspace(3.0, 6.0, 8, dtype=self.dtype)


class TooFewOutcomes(MarketData):
    def observed_outcomes(self) -> Tensor | None:
        return torch.linspace(3.0, 6.0, 5, dtype=self.dtype)[:, None]


class DetachedObservationMap(MarketData):
    def observation_map(self, actions: Tensor, theta: Tensor, context: Tensor) -> Tensor:
        return super().observation_map(actions, theta, context).detach()


class OutOfBoundsProfile(MarketData):
    def profile_from_observations(
        self, observations: Tensor, theta: Tensor, context: Tensor
    ) -> Tensor:
        return super().profile_from_observations(observations, theta, context) - 100.0


class OverHarvestingBestResponse(FishWar):
    """Answers the equilibrium with 1.5 times the best fraction."""

    def best_response_policy(self, profile: Strategy, theta: Tensor) -> Strategy | None:
        best = super().best_response_policy(profile, theta)
        if best is None:
            return None
        high = self.action_high[:, 0].to(best.fraction)
        return ConstantFraction(torch.minimum(1.5 * best.fraction, high))


class WrongMPE(FishWar):
    """An equilibrium policy that harvests too little (its best response, correct, gains)."""

    def equilibrium_policy(self, theta: Tensor) -> Strategy:
        return ConstantFraction(0.5 * self.mpe_fraction(theta)[:, None].expand(-1, self.n_agents))


BROKEN = [
    (WrongEquilibriumNoBestResponse, "closed-form equilibrium is not an equilibrium"),
    (WrongBestResponse, "best_response is not a best response|beaten by a random deviation"),
    (RoundPayoffs, r"payoffs has zero gradient in θ \(is it built from non-differentiable ops"),
    (ThetaFreePayoffs, r"zero gradient in θ .*\['c'\]"),
    (UnimplementedBestResponse, "override the property has_best_response to return False"),
    (NaNPayoffs, r"payoffs returned NaN at \d+ of \d+ random interior points"),
    (DetachPayoffs, "payoffs must stay a differentiable torch expression of actions and θ"),
    (NumpyPayoffs, "payoffs must stay a differentiable torch expression.*numpy"),
    (ItemPayoffs, r"zero gradient in θ.*\.item\(\).*must stay a differentiable torch"),
    (FlatObservationMap, r"observation_map has shape \[2, 3\], want \[2, 3, o\]"),
    (DetachedObservationMap, "observation_map must stay a differentiable torch expression"),
    (NegativeWeights, "observation_weights must be >= 0"),
    (FlatOutcomes, r"observed_outcomes has shape \[8\], want \[M, o\] = \[8, 1\]"),
    (TooFewOutcomes, r"observed_outcomes has shape \[5, 1\], want \[8, 1\]"),
    (OutOfBoundsProfile, "profile_from_observations returns actions outside the action bounds"),
    (OverHarvestingBestResponse, "best_response_policy gains less than the equilibrium"),
    (WrongMPE, "the equilibrium_policy is exploitable"),
]


@pytest.mark.parametrize(("make", "message"), BROKEN, ids=[m.__name__ for m, _ in BROKEN])
def test_broken_game_fails_with_a_message_that_says_what_to_change(make, message):
    with pytest.raises(AssertionError, match=message) as failure:
        check_game(make())
    assert len(str(failure.value)) > 40


def test_the_tiny_games_pass_and_every_declared_hook_is_checked():
    assert check_game(Duopoly()).hooks == []
    report = check_game(ClosedFormDuopoly())
    assert report.hooks == ["equilibrium", "best_response"]
    assert "equilibrium has zero exploitability" in report.checks
    assert "best responses beat gradient ascent" in report.checks
    report = check_game(MarketData())
    assert report.hooks == [
        "equilibrium",
        "best_response",
        "observation_map",
        "observed_contexts",
        "observed_outcomes",
        "observation_weights",
        "initial_theta",
        "profile_from_observations",
    ]
    for hook in report.hooks:
        assert any(check.startswith(hook) for check in report.checks), hook


def test_equilibrium_without_best_response_is_checked_by_gradient_ascent():
    class RightEquilibriumOnly(Duopoly):
        equilibrium = ClosedFormDuopoly.equilibrium

    report = check_game(RightEquilibriumOnly())
    assert report.hooks == ["equilibrium"]
    assert "equilibrium has no profitable deviation (gradient ascent on ψ)" in report.checks


def test_switched_off_closed_forms_are_reported_not_called():
    report = check_game(IsoelasticCournot(n_firms=3, costs=[10, 12, 14], max_quantity=50.0))
    assert "equilibrium" in report.hooks
    assert any("switched off" in reason for reason in report.notes)
    assert not any(check.startswith("equilibrium") for check in report.checks)


def test_check_game_leaves_the_global_random_state_and_threads_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_game(Duopoly())
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


# --- every shipped game passes --------------------------------------------------------------------
SHIPPED = {
    "cournot": Cournot,
    "cournot_markets": lambda: Cournot(n_firms=2, quadratic_costs=1.0, demand_shifters=[1.0, 2.0]),
    "bertrand": lambda: Bertrand(n_firms=3, cost=5.0, intercept=50.0, slope=2.0),
    "bertrand_differentiated": BertrandDifferentiated,
    "bertrand_logit": lambda: BertrandDifferentiated(demand="logit"),
    "fisher_cobb_douglas": lambda: Fisher(utility="cobb_douglas"),
    "fisher_leontief": lambda: Fisher(utility="leontief"),
    "fisher_linear": Fisher,
    "fish_war": FishWar,
    "dynamic_cournot": lambda: DynamicCournot(horizon=4),
    "entry_game": lambda: EntryGame(horizon=3),
    "electricity": lambda: ElectricityMarket(data_path=None),
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_game_passes(name):
    game = SHIPPED[name]()
    start = time.perf_counter()
    report = check_game(game)
    assert isinstance(report, GameReport)
    assert time.perf_counter() - start < 30
    assert {"shapes", "batching", "pettingzoo.parallel_api_test"} <= set(report.checks)
    checked = " ".join(report.checks)
    for hook in report.hooks:
        assert hook in checked or any(r.startswith(hook) for r in report.notes), hook


def test_a_data_gap_is_reported_not_failed():
    """With few observed hours, some hour weights act in no observed context: reported."""
    report = check_game(ElectricityMarket(per_hour_slopes=False, synthetic_hours=20))
    assert any("outside observed_contexts" in reason for reason in report.notes)


def test_messages_print_plain_numbers():
    """The messages print lists of numbers, not tensor reprs."""
    with pytest.raises(AssertionError) as failure:
        check_game(NaNPayoffs())
    assert "tensor(" not in str(failure.value)
    assert re.search(r"actions \[[-\d.e, ]+\]", str(failure.value))
