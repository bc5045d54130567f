"""The GDA trainer: update rules, averaging, schedules, batching, divergence, checkpoint state."""

import copy

import pytest
import torch

from envs.cournot import Cournot
from imitgame import GDA, ActionProfile, LearnedDeviation, MinMaxObjective, Stabilizer
from imitgame.config import GDAConfig
from imitgame.errors import DivergenceError, ImitgameError
from imitgame.solver.exploitability import make_evaluator
from tests.support import ExplodingCournot

pytestmark = pytest.mark.usefixtures("float64")


def _inverse(game, theta_true, **config):
    """An inverse Cournot problem over K = theta_true.shape[0] instances."""
    k = theta_true.shape[0]
    q = game.equilibrium(theta_true[:, None])
    mask = torch.tensor([n in game.learned_params for n in game.param_names])
    init = theta_true.clone()
    init[:, mask] = 50.0
    profile = ActionProfile(q, game.action_low, game.action_high, learnable=False)
    stab = Stabilizer(init, mask, game.param_low, game.param_high, profile)
    dest = LearnedDeviation(ActionProfile(q, game.action_low, game.action_high))
    objective = MinMaxObjective(game, stab, dest, batch_shape=(k, 1))
    defaults = {
        "iterations": 1500,
        "lr_theta": 0.5,
        "lr_deviation": 1.0,
        "schedule": "cosine",
        "lr_final_fraction": 1e-3,
        "eval_every": 50,
    }
    defaults.update(config)
    return GDA(objective, GDAConfig(**defaults), evaluate=make_evaluator(objective, exact=True))


def _run(trainer):
    return list(trainer.iterate(progress=False))


def _rel_error(trainer, theta_true, n):
    theta = trainer.answer.theta().detach()
    return ((theta - theta_true)[:, :n].norm(dim=-1) / theta_true[:, :n].norm(dim=-1)).max()


@pytest.mark.parametrize(
    "config",
    [
        {"method": "plain"},
        {"method": "extragradient", "lr_theta": 0.2, "lr_deviation": 0.4},
        {"method": "optimistic"},
        {"updates": "alternating", "ascent_steps": 2},
        {
            "optimizer": "sgd",
            "lr_theta": 0.2,
            "lr_deviation": 0.2,
            "schedule": "constant",
            "iterations": 3000,
        },
        {"averaging": "uniform", "average_start": 0.5, "schedule": "inverse_sqrt"},
        {"averaging": "ema", "ema_decay": 0.9, "schedule": "exponential"},
    ],
)
def test_update_rules_recover_cournot_costs(config):
    game = Cournot(n_firms=3)
    theta = game.true_params[None]
    trainer = _inverse(game, theta, **config)
    records = _run(trainer)
    assert _rel_error(trainer, theta, 3) < 1e-3
    assert records[-1].exploitability.item() < 1e-4


def test_early_stopping_freezes_converged_instances():
    game = Cournot(n_firms=2)
    theta = game.true_params.expand(3, -1).clone()
    theta[:, :2] = torch.tensor([[10.0, 20.0], [30.0, 31.0], [5.0, 40.0]])
    trainer = _inverse(game, theta, iterations=5000, tol_exploitability=1e-10, tol_step=1e-7)
    _run(trainer)
    assert bool((~trainer.active).all())
    assert trainer.step_count < 5000
    assert _rel_error(trainer, theta, 2) < 1e-5


def test_batch_equals_single_runs():
    game = Cournot(n_firms=2)
    theta = game.true_params.expand(3, -1).clone()
    theta[:, :2] = torch.tensor([[10.0, 20.0], [30.0, 31.0], [5.0, 40.0]])
    config = {"iterations": 2000, "tol_exploitability": 1e-10, "tol_step": 1e-7}
    batch = _inverse(game, theta, **config)
    _run(batch)
    for i in range(3):
        single = _inverse(game, theta[i : i + 1], **config)
        _run(single)
        assert torch.allclose(single.answer.theta(), batch.answer.theta()[i : i + 1], atol=1e-9)


def test_nan_stops_with_last_good_state():
    game = ExplodingCournot(n_firms=2, costs=[35.0, 40.0])
    theta = game.true_params[None]
    trainer = _inverse(game, theta, iterations=500)
    with pytest.raises(DivergenceError, match="non-finite") as info:
        _run(trainer)
    assert info.value.step > 0
    # the check runs before any update, so no NaN reached the players' parameters
    assert torch.isfinite(trainer.stabilizer.theta()).all()
    assert all(torch.isfinite(p).all() for p in trainer.destabilizer.parameters())


def test_state_dict_round_trip_continues_identically():
    game = Cournot(n_firms=2)
    theta = game.true_params[None]
    reference = _inverse(game, theta, iterations=300, method="optimistic")
    _run(reference)
    first = _inverse(game, theta, iterations=300, method="optimistic")
    for _ in range(120):
        first.step()
    state = copy.deepcopy(first.state_dict())
    second = _inverse(game, theta, iterations=300, method="optimistic")
    second.load_state_dict(state)
    _run(second)
    assert torch.equal(second.answer.theta(), reference.answer.theta())


@pytest.mark.parametrize(
    ("field", "value"),
    [("method", "newton"), ("optimizer", "newton"), ("iterations", 0), ("lr_theta", -1.0)],
)
def test_bad_config_is_rejected(field, value):
    with pytest.raises(ImitgameError, match=field):
        GDAConfig(**{field: value})


def test_stabilizer_hands_out_one_theta_until_it_changes_or_a_backward_pass():
    """``Stabilizer.theta()`` is one tensor while θ's entries and the grad mode stay (a game
    may key what it computes from θ on its identity); a new one after a backward pass through
    it (its graph is freed), after a step (or a write through ``.data``), under ``no_grad``,
    and in a deep copy."""
    game = Cournot()
    theta_true = game.true_params[None].clone()
    stab = _inverse(game, theta_true, iterations=1).objective.stabilizer
    first = stab.theta()
    assert stab.theta() is first
    first.sum().backward()
    second = stab.theta()
    assert second is not first and torch.equal(second, first)
    (second**2).sum().backward()  # a second backward pass works: no freed graph is reused
    with torch.no_grad():
        detached = stab.theta()
        assert detached is not second and not detached.requires_grad
        stab.theta_learned.sub_(1.0)  # a step
    stepped = stab.theta()
    assert stepped is not second and not torch.equal(stepped, second)
    stab.theta_learned.data.add_(1.0)  # a write the version counter does not see
    renewed = stab.theta()
    assert not torch.equal(renewed, stepped)
    renewed.detach().zero_()  # a caller writes into the θ it was handed
    assert not torch.equal(stab.theta(), renewed)
    assert copy.deepcopy(stab)._theta_memo is None
