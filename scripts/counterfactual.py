"""Counterfactuals of a finished run: change parameters or inputs of the fitted game, solve again.

    python scripts/counterfactual.py RUN_DIR c_0=25
    python scripts/counterfactual.py RUN_DIR --remove-agent 1          # firm 1 leaves the market
    python scripts/counterfactual.py RUN_DIR env.demand_shifters=[1.2]
    python scripts/counterfactual.py RUN_DIR alpha=0.5 --solver forward_iterations=500
    python scripts/counterfactual.py RUN env.wind_scale=1.5 --at env.period=[2016-03-01,2016-03-31]

Changes are ``PARAM=VALUE`` (a name from the run's ``param_names``) or ``env.KEY=VALUE`` (an
override of the run's env config); ``--at env.KEY=VALUE`` sets where both sides are evaluated.
Writes ``RUN_DIR/counterfactuals/<name>/counterfactual.json`` and ``counterfactual.png``
(:mod:`imitgame.run.counterfactual`).
"""

from __future__ import annotations

import argparse
import sys

from imitgame.errors import ImitgameError
from imitgame.run.counterfactual import counterfactual, parse_assignments, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a finished run folder (config.yaml, results.json)")
    parser.add_argument("changes", nargs="*", help="PARAM=VALUE or env.KEY=VALUE")
    parser.add_argument("--name", help="folder name under RUN_DIR/counterfactuals/")
    parser.add_argument("--instance", type=int, default=0, help="which instance's θ̂ (default 0)")
    parser.add_argument(
        "--remove-agent",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="remove agent I (its _I parameters are dropped); repeatable",
    )
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="env.KEY=VALUE",
        help="an env override applied before and after (e.g. env.period=[2016-03-01,2016-03-31])",
    )
    parser.add_argument(
        "--solver",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="forward-solver option (e.g. iterations=2000; Markov: forward_iterations=500)",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--no-figure", action="store_true", help="skip counterfactual.png")
    args = parser.parse_args(argv)
    try:
        report = counterfactual(
            args.run_dir,
            parse_assignments(args.changes),
            name=args.name,
            instance=args.instance,
            setting=parse_assignments(args.at, "--at"),
            remove_agent=args.remove_agent,
            solver=parse_assignments(args.solver, "--solver"),
            device=args.device,
            figure=not args.no_figure,
        )
    except ImitgameError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
