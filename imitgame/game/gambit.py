"""Gambit interoperability for finite games, through pygambit (the ``gambit`` extra).

* :func:`read_nfg` — a game from a Gambit ``.nfg`` file, with the payoff entries a user marks as
  unknown turned into θ (each one feature, its value in the file the reference value);
* :func:`write_nfg` / :func:`to_gambit` — our game at θ as a Gambit game (``.nfg`` text);
* :func:`gambit_qre` — Gambit's logit QRE at λ (``pygambit.qre.logit_solve_lambda``);
* :func:`gambit_estimate` — Gambit's maximum-likelihood λ for observed counts, payoffs known
  (``pygambit.qre.logit_estimate``).

Gambit's logit QRE is ours: σ_i ∝ exp(λ q_i) with raw payoffs, so λ compares directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imitgame.errors import ImitgameError
from imitgame.game.finite import Concept, FiniteGame

#: an unknown payoff: (player index, pure profile (a_1, ..., a_n)) or "player:a_1,...,a_n"
PayoffEntry = tuple[int, Sequence[int]] | str


def _pygambit() -> Any:
    try:
        import pygambit
    except ImportError:
        raise ImitgameError(
            "Gambit support needs pygambit: pip install 'imitgame[gambit]'"
        ) from None
    return pygambit


def _entry(spec: PayoffEntry, n: int) -> tuple[int, tuple[int, ...]]:
    if isinstance(spec, str):
        try:
            player, profile = spec.split(":")
            parsed = int(player), tuple(int(a) for a in profile.split(","))
        except ValueError:
            raise ImitgameError(
                f"unknown payoff {spec!r}: expected 'player:a_1,...,a_n' (0-based indices)"
            ) from None
    else:
        parsed = int(spec[0]), tuple(int(a) for a in spec[1])
    if not 0 <= parsed[0] < n or len(parsed[1]) != n:
        raise ImitgameError(f"unknown payoff {spec!r} does not name a player and a profile of {n}")
    return parsed


class GambitGame(FiniteGame):
    """A finite game read from a Gambit ``.nfg`` file; the ``unknown`` payoff entries are θ.

    Usable from a config (``_target_: imitgame.game.gambit.GambitGame``, ``path``, ``unknown``).
    """

    def __init__(
        self,
        path: str,
        unknown: Sequence[Any] = (),
        equilibrium: Concept = "logit_qre",
        qre_lambda: float = 1.0,
        learn_lambda: bool = False,
        payoff_bounds: Sequence[float] = (-100.0, 100.0),
        lambda_bounds: Sequence[float] = (0.01, 100.0),
    ) -> None:
        gbt = _pygambit()
        file = Path(path)
        if not file.is_file():
            raise ImitgameError(f"no .nfg file at {path}")
        try:
            game = gbt.read_nfg(str(file))
        except Exception as err:  # pygambit raises several kinds on a malformed file
            raise ImitgameError(f"{path}: not a readable .nfg file ({err})") from None
        arrays = [np.asarray(a, dtype=float) for a in game.to_arrays(dtype=float)]
        base = torch.as_tensor(np.stack(arrays), dtype=torch.get_default_dtype())
        n = base.shape[0]
        entries = [_entry(u, n) for u in unknown]
        if not entries and not learn_lambda:
            raise ImitgameError("mark at least one payoff as unknown (or learn λ)")
        features = torch.zeros(len(entries), *base.shape, dtype=base.dtype)
        values = []
        for k, (player, profile) in enumerate(entries):  # construction only
            try:
                values.append(float(base[(player, *profile)]))
            except IndexError:
                raise ImitgameError(
                    f"unknown payoff {unknown[k]!r} lies outside the game"
                ) from None
            features[(k, player, *profile)] = 1.0
            base[(player, *profile)] = 0.0
        names = [f"u{p}_" + "_".join(str(a) for a in prof) for p, prof in entries]
        if not entries:  # λ alone: one dummy feature so that θ has a payoff part
            names, values = ["unused"], [0.0]
            features = torch.zeros(1, *base.shape, dtype=base.dtype)
        learn = list(names) if entries else []
        super().__init__(
            base=base,
            features=features,
            param_names=names,
            param_low=payoff_bounds[0],
            param_high=payoff_bounds[1],
            true_params=values,
            learn=learn + (["lambda"] if learn_lambda else []),
            equilibrium=equilibrium,
            qre_lambda=qre_lambda,
            lambda_bounds=lambda_bounds,
            action_names=[
                [str(s.label) or f"a{j}" for j, s in enumerate(p.strategies)] for p in game.players
            ],
            agent_names=[str(p.label) or f"player_{i}" for i, p in enumerate(game.players)],
        )
        self.title = str(game.title)


def read_nfg(path: str | Path, unknown: Sequence[PayoffEntry] = (), **options: Any) -> GambitGame:
    """Load a ``.nfg`` file; ``unknown`` payoff entries (``(player, profile)`` or
    ``"player:a_1,...,a_n"``, 0-based) become θ (see :class:`GambitGame` for ``options``)."""
    return GambitGame(str(path), list(unknown), **options)


def to_gambit(game: FiniteGame, theta: Tensor, title: str = "imitgame") -> Any:
    """Our game's payoffs at ``theta [p]`` as a ``pygambit.Game`` (padding dropped)."""
    gbt = _pygambit()
    payoff = game.payoff_tensor(theta.detach()).cpu().numpy()
    keep = tuple(slice(0, a) for a in game.n_actions)
    arrays = [payoff[(i, *keep)] for i in range(game.n_agents)]
    result = gbt.Game.from_arrays(*arrays, title=title)
    for player, names in zip(result.players, game.action_names):
        for strategy, name in zip(player.strategies, names):
            strategy.label = name
    for player, name in zip(result.players, game.possible_agents):
        player.label = name
    return result


def write_nfg(game: FiniteGame, theta: Tensor, path: str | Path, title: str = "imitgame") -> Path:
    """Write our game at ``theta [p]`` as a Gambit ``.nfg`` file; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_gambit(game, theta, title).to_nfg())
    return out


def _profile(game: FiniteGame, gambit_game: Any, values: Tensor) -> Any:
    data = [values[i, :a].tolist() for i, a in enumerate(game.n_actions)]
    return gambit_game.mixed_strategy_profile(data=data)


def gambit_qre(game: FiniteGame, theta: Tensor, lam: float) -> Tensor:
    """Gambit's logit QRE ``[n, A]`` at precision ``lam`` under ``theta [p]``."""
    gbt = _pygambit()
    gambit_game = to_gambit(game, theta)
    result = gbt.qre.logit_solve_lambda(gambit_game, [float(lam)])[0]
    sigma = torch.zeros(game.n_agents, game.action_dim, dtype=game.dtype)
    for i, player in enumerate(gambit_game.players):
        probs = [float(result.profile[s]) for s in player.strategies]
        sigma[i, : len(probs)] = torch.tensor(probs, dtype=game.dtype)
    return sigma


def gambit_estimate(game: FiniteGame, theta: Tensor, counts: Tensor) -> tuple[float, float]:
    """Gambit's maximum-likelihood λ for ``counts [n, A]`` with the payoffs at ``theta [p]``
    known, and its wall time in seconds."""
    gbt = _pygambit()
    gambit_game = to_gambit(game, theta)
    profile = _profile(game, gambit_game, counts.detach().cpu().double())
    started = time.perf_counter()
    result = gbt.qre.logit_estimate(profile)
    return float(result.lam), time.perf_counter() - started
