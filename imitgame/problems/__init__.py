"""The problems: one registry keyed by ``algo.problem``, one module per problem kind.

| ``algo.problem`` | module | the stabilizer owns |
|---|---|---|
| ``inverse`` (default, one-shot games) | :mod:`~imitgame.problems.inverse` | θ; π† observed |
| ``markov_inverse`` (default, Markov games) | :mod:`~imitgame.problems.markov` | θ; π† observed |
| ``simulacral`` | :mod:`~imitgame.problems.simulacral` | θ and π, fitted to observations |
| ``noisy_inverse`` | :mod:`~imitgame.problems.noisy` | θ and π, fitted to noisy actions |
| ``qre_counts`` (finite games) | :mod:`~imitgame.problems.qre` | θ and σ, fitted to action counts |
| ``expert`` | :mod:`~imitgame.problems.expert` | θ; π† cloned from forward-solved expert play |

A new kind is a module that calls :func:`register_problem` with a :class:`ProblemSpec`; the runner
needs no change (see :mod:`imitgame.problems.base` for the contract).
"""

from imitgame.problems import expert, inverse, markov, noisy, qre, simulacral
from imitgame.problems.base import (
    PROBLEMS,
    Problem,
    ProblemDefaults,
    ProblemSpec,
    default_problem,
    problem_spec,
    register_problem,
)

__all__ = [
    "PROBLEMS",
    "Problem",
    "ProblemDefaults",
    "ProblemSpec",
    "default_problem",
    "expert",
    "inverse",
    "markov",
    "noisy",
    "problem_spec",
    "qre",
    "register_problem",
    "simulacral",
]
