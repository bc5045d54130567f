"""Reproduce the paper's Table 2 (synthetic inverse games) on its own protocols, then go past it.

    python scripts/reproduce_table2.py [--out runs/table2] [--only NAME ...] [--instances K]
                                       [--device cpu|cuda] [--seed S]

Writes ``<out>/table2.md`` (our figures beside the paper's) and ``<out>/table2.json``
(``{"rows": [{"name", "instances", "recovery_rate", "paper_recovery_rate", ...}]}``).
The rows, the batched runner and the scoring live in :mod:`experiments.table2`.
"""

from __future__ import annotations

import argparse

import torch

from experiments.table2 import run_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/table2")
    parser.add_argument("--only", nargs="*", help="run rows whose name contains one of these")
    parser.add_argument("--instances", type=int, default=None, help="cap K on every row")
    parser.add_argument("--big", type=int, default=None, help="K for the 500-instance rows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (small tensors: 1 is fastest)"
    )
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    # intra-op threads only add synchronisation on these small tensors (and thrash when other
    # processes share the cores): measured 50x slower with 2 threads on a loaded 2-core machine
    torch.set_num_threads(args.threads)
    table = run_table(
        args.out,
        only=args.only,
        instances=args.instances,
        big=args.big,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
