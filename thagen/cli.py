"""`thagen`: one command, with subcommands registered by each package's own `cli` module.

Each package's `cli.add_commands(subparsers)` only declares arguments; heavy imports (moderngl,
torch, mediapipe) happen inside the handlers, so `thagen --help` is instant and `thagen inspect`
never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Packages whose `cli` module contributes subcommands, in help order.
COMMAND_MODULES = ("mmd_loader.cli", "render.cli", "pipeline.cli", "training.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thagen", description="MMD models to Talking Head Anime training data, and training."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. A user error (bad path, bad value, unloadable model) prints one line
    and exits 2; set THAGEN_DEBUG=1 to see the traceback instead."""
    from mmd_loader.errors import ModelLoadError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, ModelLoadError) as error:
        if os.environ.get("THAGEN_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
