"""Adapters between imitgame and other multiagent-learning libraries (optional extra ``sim``).

Simulators we did not write, as imitgame games: :mod:`~imitgame.adapters.vmas` (VMAS scenarios,
differentiable) and :mod:`~imitgame.adapters.pettingzoo` (any PettingZoo ``ParallelEnv``, a black
box); and the other direction, our games as TorchRL environments:
:mod:`~imitgame.adapters.torchrl_env`. Each imports its library lazily."""
