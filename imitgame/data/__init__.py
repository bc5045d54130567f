"""Observed behaviour: play of one-shot games (observed) and trajectory files of Markov
games (trajectories)."""
