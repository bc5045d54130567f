"""``python -m imitgame env=cournot [overrides]``: the same command line as ``python train.py``."""

from imitgame.run.cli import console_main

if __name__ == "__main__":
    console_main(prog="python -m imitgame")
