"""Simulators we did not write, as imitgame games: :mod:`~imitgame.adapters.vmas` (VMAS
scenarios, differentiable) and :mod:`~imitgame.adapters.pettingzoo` (any PettingZoo
``ParallelEnv``, a black box). Each imports its simulator lazily."""
