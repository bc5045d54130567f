"""Train TorchRL's MAPPO on an imitgame game (a TorchRLGameEnv) and compare with its equilibrium.

    python scripts/torchrl_mappo.py env=fish_war
    python scripts/torchrl_mappo.py env=fish_war --iterations 100 --envs 512

A short, standard multi-agent PPO loop written against TorchRL's public API only: one policy MLP
per agent (``MultiAgentMLP``, TanhNormal actions inside the game's action box), a centralised
critic on every agent's observation (MAPPO), GAE and ``ClipPPOLoss``. Each iteration plays one
episode in each of ``--envs`` environments. Every agent maximises its own return, so if the
learners settle, they settle at a Nash equilibrium of the game; the script prints the mean
(deterministic) action and discounted return per agent next to the game's closed-form
equilibrium's, on the same shocks, and how far the learned profile is from an equilibrium: its
exploitability Σ_i max_ρi [u_i(ρ_i, π_-i) − u_i(π)], measured by imitgame's own trained best
responses (:func:`imitgame.adapters.torchrl_env.policy_exploitability`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from imitgame.errors import ImitgameError
from imitgame.game.hooks import attribute
from imitgame.run.runner import build_game

ROOT = Path(__file__).resolve().parents[1]


def discounted_returns(td, discount: float) -> torch.Tensor:
    """Σ_t γ^t r_t averaged over environments, per agent ``[n]``, from a rollout ``[B, T]``."""
    rewards = td["next", "agents", "reward"][..., 0]  # [B, T, n]
    powers = discount ** torch.arange(rewards.shape[1], dtype=rewards.dtype)
    return (rewards * powers[None, :, None]).sum(1).mean(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=fish_war")
    parser.add_argument("--iterations", type=int, default=60, help="collect-and-train rounds")
    parser.add_argument("--envs", type=int, default=256, help="episodes per iteration")
    parser.add_argument("--epochs", type=int, default=8, help="PPO epochs per iteration")
    parser.add_argument("--minibatch", type=int, default=512, help="frames per PPO minibatch")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam step size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    overrides = args.overrides or ["env=fish_war"]
    try:
        from imitgame.adapters.torchrl_env import TorchRLGameEnv

        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        game = build_game(cfg.env)
        if game.n_discrete_actions is not None:
            raise ImitgameError("this example trains continuous actions (TanhNormal policies)")
        torch.manual_seed(args.seed)
        env = TorchRLGameEnv(game, batch_size=(args.envs,), seed=args.seed)
        train(env, args)
    except (ImitgameError, HydraException, OmegaConfBaseException) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


def train(env, args: argparse.Namespace) -> nn.Module:
    from tensordict.nn import NormalParamExtractor, TensorDictModule
    from torchrl.envs.utils import ExplorationType, set_exploration_type
    from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal, ValueOperator
    from torchrl.objectives import ClipPPOLoss, ValueEstimators

    from imitgame.adapters.torchrl_env import equilibrium_actor, policy_exploitability

    game = env.game
    n, obs_dim, act_dim = game.n_agents, game.obs_dim, game.action_dim
    scale = torch.as_tensor(attribute(game, "obs_scale"), dtype=game.dtype)
    action_spec = env.full_action_spec["agents", "action"]
    bounds = env.full_action_spec_unbatched["agents", "action"]  # [n, d]: one env's box

    class Scaled(nn.Module):
        """o / obs_scale (the game's typical magnitudes), then the wrapped net."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("scale", scale)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.net(obs / self.scale)

    policy_net = nn.Sequential(
        Scaled(
            MultiAgentMLP(
                obs_dim,
                2 * act_dim,
                n_agents=n,
                centralised=False,
                share_params=False,
                depth=2,
                num_cells=64,
                activation_class=nn.Tanh,
            )
        ),
        NormalParamExtractor(),
    )
    actor = ProbabilisticActor(
        TensorDictModule(
            policy_net,
            in_keys=[("agents", "observation")],
            out_keys=[("agents", "loc"), ("agents", "scale")],
        ),
        spec=action_spec,
        in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[("agents", "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": bounds.space.low, "high": bounds.space.high},
        return_log_prob=True,
    )
    critic = ValueOperator(
        Scaled(
            MultiAgentMLP(
                obs_dim,
                1,
                n_agents=n,
                centralised=True,
                share_params=True,
                depth=2,
                num_cells=64,
                activation_class=nn.Tanh,
            )
        ),
        in_keys=[("agents", "observation")],
        out_keys=[("agents", "state_value")],
    )
    loss = ClipPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coeff=1e-3)
    log_prob_key = ("agents", "action_log_prob")
    loss.set_keys(
        reward=("agents", "reward"),
        action=("agents", "action"),
        sample_log_prob=log_prob_key,
        value=("agents", "state_value"),
        done=("agents", "done"),
        terminated=("agents", "terminated"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=env.discount, lmbda=0.95)
    optim = torch.optim.Adam(loss.parameters(), lr=args.lr)
    # the step size decays (cosine) so that the learners settle rather than circle
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(args.iterations, 1))

    def evaluate(policy) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean action [n] and discounted return [n] on the evaluation shocks (seed + 1)."""
        env.set_seed(args.seed + 1)
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            td = env.rollout(game.horizon, policy)
        return td["agents", "action"].float().mean((0, 1)).flatten(), discounted_returns(
            td, env.discount
        )

    eq_action, eq_return = evaluate(equilibrium_actor(env))
    names = list(game.possible_agents)
    fmt = lambda v: "  ".join(f"{x:9.4f}" for x in v.tolist())  # noqa: E731
    print(
        f"MAPPO on {type(game).__name__} via TorchRLGameEnv: {args.envs} episodes × "
        f"{game.horizon} periods per iteration, {args.iterations} iterations, agents {names}"
    )
    print(f"{'iteration':>9}  {'mean action per agent':>22}  {'discounted return per agent':>28}")
    started = time.perf_counter()
    env.set_seed(args.seed)
    for it in range(args.iterations + 1):
        if it % max(args.iterations // 6, 1) == 0 or it == args.iterations:
            action, ret = evaluate(actor)
            print(f"{it:9d}  {fmt(action):>22}  {fmt(ret):>28}")
            env.set_seed(args.seed + 1000 + it)
        if it == args.iterations:
            break
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            batch = env.rollout(game.horizon, actor)  # [B, T], sampled actions
            reward_shape = batch["next", "agents", "reward"].shape
            for key in ("done", "terminated"):  # per-agent flags for the per-agent GAE
                flag = batch["next", key].unsqueeze(-1).expand(reward_shape)
                batch.set(("next", "agents", key), flag)
            loss.value_estimator(
                batch,
                params=loss.critic_network_params,
                target_params=loss.target_critic_network_params,
            )
        flat = batch.reshape(-1)
        for _ in range(args.epochs):
            for index in torch.randperm(flat.shape[0]).split(args.minibatch):
                parts = loss(flat[index])
                total = parts["loss_objective"] + parts["loss_critic"] + parts["loss_entropy"]
                optim.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optim.step()
        schedule.step()
    seconds = time.perf_counter() - started
    print(f"{'equilibrium':>9}  {fmt(eq_action):>22}  {fmt(eq_return):>28}   (closed form)")
    print(f"trained in {seconds:.0f} s ({args.iterations * args.envs * game.horizon} frames)")
    # NashConv Σ_i max_ρi u_i(ρ_i, π_-i) − u_i(π) by imitgame's trained best responses
    learned = policy_exploitability(env, actor, seed=args.seed)
    equilibrium = policy_exploitability(env, equilibrium_actor(env).strategy, seed=args.seed)
    print(
        f"exploitability (imitgame's trained best response): MAPPO {learned:.4g}, "
        f"equilibrium {equilibrium:.3g}"
    )
    return actor


if __name__ == "__main__":
    sys.exit(main())
