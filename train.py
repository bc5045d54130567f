"""Run an inverse problem end to end: ``python train.py env=cournot [overrides]``.

A thin shim over :func:`imitgame.run.cli.console_main` (also ``python -m imitgame`` and the
``imitgame`` command) with the ``configs/`` folder beside this file; ``--help`` lists the options.
"""

from pathlib import Path

from imitgame.run.cli import console_main

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

if __name__ == "__main__":
    console_main(config_dir=CONFIG_DIR, prog="python train.py")
