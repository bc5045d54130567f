"""Adapters between imitgame games and other multiagent-learning libraries (optional extras)."""
