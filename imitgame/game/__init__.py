"""The game contract: base classes, declared optional hooks, strategies, policy networks
and the PettingZoo face."""
