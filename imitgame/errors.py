"""Errors that imitgame reports to a user as one line.

Every check on user input raises :class:`ImitgameError` with a message that names the problem;
the entry point prints ``error: <message>`` and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import torch


class ImitgameError(ValueError):
    """A problem with the user's input (config, data, game definition)."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite value; the last good state was kept."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class Interrupted(Exception):
    """The run was stopped (a signal) after a checkpoint was written; it can be resumed."""


class NotConverged(Exception):
    """``strict=true`` and some instance did not converge (results were still written)."""


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ImitgameError if ``tensor`` holds NaN or inf."""
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        n_bad = int(bad.sum())
        raise ImitgameError(f"{name} contains {n_bad} NaN/inf value(s) of {tensor.numel()}")


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int | None, ...]) -> None:
    """Raise ImitgameError unless ``tensor`` ends in ``expected`` (None matches any size)."""
    tail = tuple(tensor.shape[-len(expected) :]) if expected else ()
    ok = tensor.dim() >= len(expected) and all(e is None or e == s for e, s in zip(expected, tail))
    if not ok:
        want = "[..., " + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise ImitgameError(f"{name} has shape {list(tensor.shape)}, expected {want}")
