"""Shared experiment helpers that scripts and benchmarks import."""
