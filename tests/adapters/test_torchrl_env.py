"""imitgame games as TorchRL environments: TorchRL's own spec checker, and rewards identical to
imitgame's own rollouts of the same policy under the same shocks."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("torchrl")

from tensordict import TensorDict  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from envs.cournot import Cournot  # noqa: E402
from envs.dynamic_cournot import DynamicCournot  # noqa: E402
from envs.entry_game import EntryGame  # noqa: E402
from envs.fish_war import ConstantFraction, FishWar  # noqa: E402
from envs.lq_stock import LQStock  # noqa: E402
from imitgame.adapters.torchrl_env import (  # noqa: E402
    PolicyStrategy,
    StrategyActor,
    TorchRLGameEnv,
    equilibrium_actor,
    policy_exploitability,
)
from imitgame.config import MarkovConfig  # noqa: E402
from imitgame.errors import ImitgameError  # noqa: E402
from imitgame.results import Results  # noqa: E402
from imitgame.solver.exploitability import exact_exploitability  # noqa: E402
from imitgame.solver.rollout import episode_generator, sample_trajectories  # noqa: E402
from imitgame.solver.stabilizer import Stabilizer  # noqa: E402

MARKOV = [FishWar, DynamicCournot, EntryGame, LQStock]
ALL = [*MARKOV, Cournot]


@pytest.mark.parametrize("game_cls", ALL, ids=lambda c: c.__name__)
def test_torchrl_check_env_specs(game_cls):
    env = TorchRLGameEnv(game_cls(), batch_size=(5,))
    check_env_specs(env, seed=0, break_when_any_done="both")
    n = env.game.n_agents
    assert env.full_action_spec["agents", "action"].shape[:2] == (5, n)
    assert env.full_reward_spec["agents", "reward"].shape == (5, n, 1)
    assert env.group_map == {"agents": list(env.game.possible_agents)}


@pytest.mark.parametrize("game_cls", ALL, ids=lambda c: c.__name__)
def test_equilibrium_rewards_match_imitgame_rollout(game_cls):
    """Same seed, same shocks, same (closed-form equilibrium) policy -> the same rewards."""
    game, batch, seed = game_cls(), 32, 3
    env = TorchRLGameEnv(game, batch_size=(batch,), seed=seed)
    torch.manual_seed(11)  # the entry game's logit policy samples from torch's generator
    td = env.rollout(game.horizon, equilibrium_actor(env))
    rewards_env = td["next", "agents", "reward"].squeeze(-1).movedim(1, 0)  # [T, B, n]

    torch.manual_seed(11)
    theta = game.true_params[None]
    if isinstance(game, Cournot):
        policy = equilibrium_actor(env).strategy
    else:
        policy = game.equilibrium_policy(theta)
    traj = sample_trajectories(
        game, theta, policy, (1, batch), generator=episode_generator(game, seed)
    )
    expected = traj.rewards[:, 0]  # [T, B, n] (a one-shot game's profile: [T, 1, n])
    torch.testing.assert_close(rewards_env, expected.expand_as(rewards_env), rtol=0, atol=0)
    assert bool(td["next", "terminated"][:, -1].all())
    assert not bool(td["next", "done"][:, :-1].any())
    assert td["period"][0].flatten().tolist() == list(range(game.horizon))


def test_fish_war_equilibrium_beats_deviation_in_env():
    """A unilateral deviation from the MPE does not pay (checked through the env's rewards)."""
    game = FishWar(shock_std=0.0)
    env = TorchRLGameEnv(game, batch_size=(64,), seed=0)
    eq = equilibrium_actor(env)
    k = float(game.mpe_fraction(game.true_params))

    def returns(fraction_0: float) -> torch.Tensor:
        def policy(td):
            td = eq(td)
            action = td["agents", "action"].clone()
            action[:, 0] = fraction_0
            return td.set(("agents", "action"), action)

        env.set_seed(0)
        td = env.rollout(game.horizon, policy)
        rewards = td["next", "agents", "reward"][..., 0]  # [B, T, n]
        discounts = env.discount ** torch.arange(game.horizon, dtype=rewards.dtype)
        return (rewards * discounts[None, :, None]).sum(1).mean(0)

    base = returns(k)[0]
    for dev in (0.5 * k, 1.5 * k):
        assert returns(dev)[0] < base - 1e-3


def test_seed_reproduces_and_changes_rollouts():
    env = TorchRLGameEnv(FishWar(), batch_size=(8,))
    env.set_seed(5)
    a = env.reset()["state"]
    env.set_seed(5)
    b = env.reset()["state"]
    env.set_seed(6)
    c = env.reset()["state"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_theta_is_fixed_per_env_and_checked():
    game = FishWar(shock_std=0.0, initial_spread=0.0)
    theta = game.true_params.expand(3, 2).clone()
    theta[:, 0] = torch.tensor([0.3, 0.6, 0.9])
    env = TorchRLGameEnv(game, theta, batch_size=(3,))
    check_env_specs(env, seed=0)
    td = env.reset()
    td["agents", "action"] = torch.full((3, 2, 1), 0.2)
    td = env.step(td)["next"]
    td["agents", "action"] = torch.full((3, 2, 1), 0.2)
    stock = env.step(td)["next", "state"][:, 0]
    # x_0 = 1 and no shocks: x_1 = 0.6^α, x_2 = (0.6 x_1)^α, one α per environment
    expected = (0.6 ** theta[:, 0] * 0.6) ** theta[:, 0]
    torch.testing.assert_close(stock, expected)
    with pytest.raises(ImitgameError, match="parameters"):
        TorchRLGameEnv(game, [0.5])
    with pytest.raises(ImitgameError, match="outside the parameter bounds"):
        TorchRLGameEnv(game, [0.99, 0.95])
    with pytest.raises(ImitgameError, match="batch_size"):
        TorchRLGameEnv(game, theta, batch_size=(4,))
    with pytest.raises(ImitgameError, match="MarkovGame"):
        TorchRLGameEnv("fish_war")


def test_actions_are_projected_onto_the_box():
    game = LQStock()
    env = TorchRLGameEnv(game, batch_size=(2,))
    td = env.reset()
    td["agents", "action"] = torch.tensor([[[-5.0], [50.0]], [[1.0], [2.0]]])
    reward = env.step(td)["next", "agents", "reward"][..., 0]
    state = td["state"]
    clipped = torch.tensor([[[0.0], [20.0]], [[1.0], [2.0]]])
    torch.testing.assert_close(reward, game.reward(state, clipped, game.true_params))


def test_one_hot_actions_and_partial_reset():
    game = EntryGame()
    env = TorchRLGameEnv(game, batch_size=(4,), categorical_actions=False)
    check_env_specs(env, seed=0)
    actor = equilibrium_actor(env)
    td = actor(env.reset())
    assert td["agents", "action"].shape == (4, 2, 2)
    assert bool((td["agents", "action"].sum(-1) == 1).all())
    assert td["agents", "action_log_prob"].shape == (4, 2)  # the logit policy's log π(a|s)
    for _ in range(2):
        td = actor(env.step(td)["next"])
    mask = torch.tensor([[True], [False], [True], [False]])
    env.reset(TensorDict({"_reset": mask}, batch_size=(4,)))
    assert env._period.tolist() == [0, 2, 0, 2]


def test_torchrl_policy_modules_drive_the_env():
    """A TorchRL stochastic actor (MultiAgentMLP + TanhNormal) rolls out on the env's specs."""
    from tensordict.nn import NormalParamExtractor, TensorDictModule
    from torch import nn
    from torchrl.envs.utils import ExplorationType, set_exploration_type
    from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal

    env = TorchRLGameEnv(LQStock(), batch_size=(16,))
    n, spec = env.game.n_agents, env.full_action_spec["agents", "action"]
    box = env.full_action_spec_unbatched["agents", "action"].space  # one env's [n, d] box
    net = nn.Sequential(
        MultiAgentMLP(2, 2, n_agents=n, centralised=False, share_params=True, depth=1),
        NormalParamExtractor(),
    )
    module = TensorDictModule(
        net, in_keys=[("agents", "observation")], out_keys=[("agents", "loc"), ("agents", "scale")]
    )
    actor = ProbabilisticActor(
        module,
        spec=spec,
        in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[("agents", "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": box.low, "high": box.high},
        return_log_prob=True,
    )
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        td = env.rollout(env.horizon, actor)
    assert td.shape == (16, env.horizon)
    assert td["agents", "action_log_prob"].shape == (16, env.horizon, n)
    assert spec.is_in(td["agents", "action"][:, 0])
    assert bool(td["next", "done"][:, -1].all())


def test_from_run_uses_the_fitted_theta(tmp_path):
    game = FishWar()
    theta_hat = torch.tensor([[0.55, 0.95]])
    Results(
        problem="markov_inverse",
        param_names=game.param_names,
        learned_params=["alpha"],
        theta_hat=theta_hat,
        theta_true=game.true_params[None],
        exploitability=torch.zeros(1),
        exploitability_exact=True,
        converged=None,
    ).save(tmp_path)
    env_cfg = {"_target_": "envs.fish_war.FishWar", "horizon": 4}
    OmegaConf.save(OmegaConf.create({"env": env_cfg}), tmp_path / "config.yaml")
    env = TorchRLGameEnv.from_run(tmp_path, batch_size=(2,))
    torch.testing.assert_close(env.theta, theta_hat[0])
    assert env.horizon == 4
    with pytest.raises(ImitgameError, match="out of range"):
        TorchRLGameEnv.from_run(tmp_path, instance=1)
    with pytest.raises(ImitgameError, match="config.yaml"):
        TorchRLGameEnv.from_run(tmp_path / "missing")


def test_strategy_actor_reads_the_period():
    """A time-varying policy (the LQ game's MPE) gets each environment's own period."""
    game = LQStock()
    env = TorchRLGameEnv(game, batch_size=(2,))
    policy = game.equilibrium_policy(game.true_params[None])
    actor = StrategyActor(policy, env)
    td = env.reset()
    td["period"] = torch.tensor([[0], [game.horizon - 1]])
    td["agents", "observation"][:] = 10.0
    actions = actor(td)["agents", "action"]
    obs = td["agents", "observation"][None]
    torch.testing.assert_close(actions[0], policy.act(obs, 0).actions[0, 0])
    torch.testing.assert_close(actions[1], policy.act(obs, game.horizon - 1).actions[0, 1])
    assert not torch.allclose(actions[0], actions[1])


def test_missing_torchrl_is_one_clear_error(monkeypatch):
    import importlib
    import sys

    for name in [m for m in sys.modules if m == "torchrl" or m.startswith("torchrl.")]:
        monkeypatch.setitem(sys.modules, name, None)  # what an install without the extra sees
    monkeypatch.delitem(sys.modules, "imitgame.adapters.torchrl_env")
    with pytest.raises(ImitgameError, match=r"imitgame\[sim\]"):
        importlib.import_module("imitgame.adapters.torchrl_env")


def test_policy_strategy_round_trip():
    """imitgame strategy -> TorchRL policy -> imitgame strategy gives the same actions."""
    game = LQStock()
    env = TorchRLGameEnv(game, batch_size=(3,))
    policy = game.equilibrium_policy(game.true_params[None])
    back = PolicyStrategy(StrategyActor(policy, env), env)
    obs = torch.randn(2, 1, 3, game.n_agents, game.obs_dim)  # [D, K, B, n, obs_dim]
    for t in (0, 4):
        torch.testing.assert_close(back.act(obs, t).actions, policy.act(obs, t).actions)


def test_policy_exploitability_matches_the_closed_form():
    """A TorchRL policy's exploitability by imitgame's trained best response equals the exact one
    (fish war: constant harvest fractions have closed-form best responses)."""
    from tensordict.nn import TensorDictModule
    from torch import nn

    class Constant(nn.Module):
        def __init__(self, fractions: list[float]) -> None:
            super().__init__()
            self.k = nn.Parameter(torch.tensor(fractions).view(-1, 1))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:  # [..., n, 2] -> [..., n, 1]
            return self.k + 0 * obs[..., :1]

    game = FishWar()
    env = TorchRLGameEnv(game, batch_size=(4,))
    config = MarkovConfig(best_response_steps=80, eval_environments=128)
    theta = game.true_params[None]
    fractions = [0.25, 0.35]
    module = TensorDictModule(
        Constant(fractions), in_keys=[("agents", "observation")], out_keys=[("agents", "action")]
    )
    learned = policy_exploitability(env, module, config=config, seed=1)
    stabilizer = Stabilizer(
        theta,
        torch.zeros(2, dtype=torch.bool),
        game.param_low,
        game.param_high,
        ConstantFraction(torch.tensor([fractions])),
    )
    exact = exact_exploitability(
        game, theta, stabilizer, batch_shape=(1, 4096), generator=episode_generator(game, 5)
    )
    assert float(exact[0]) > 0.1
    assert all(p.requires_grad for p in module.parameters())  # the caller's policy is untouched
    assert learned == pytest.approx(float(exact[0]), rel=0.02)
    config = MarkovConfig(best_response_steps=30, eval_environments=128)
    at_equilibrium = policy_exploitability(env, game.equilibrium_policy(theta), config=config)
    assert at_equilibrium < 1e-4
