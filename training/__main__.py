"""`python -m training NETWORK --data ... --out ...`: `thagen train` for torchrun's ranks.

    torchrun --nproc_per_node 8 -m training morpher --data data/d --out runs/m --precision bf16

takes the arguments of `thagen train` (a leading `train` is allowed). `thagen train --nproc N`
starts exactly this through torchrun. A user error prints one line and exits 2, as `thagen` does
(training may not import the CLI package, so the same rule is kept here).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from training.cli import add_commands
from training.distributed import PARENT_ENV


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (torchrun stopping the ranks) ends a rank as Ctrl-C does: quietly, exit 130."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *argv])
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():  # a rank of `thagen train --nproc`: it dies with that command
        from media.lifetime import die_with_parent

        die_with_parent(int(parent), ignore_sigint=False)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as error:
        if os.environ.get("THAGEN_DEBUG"):
            raise
        rank = os.environ.get("RANK")
        print(f"error{f' (rank {rank})' if rank else ''}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
