"""`thagen`: one command, with subcommands registered by each package's own `cli` module.

Each package's `cli.add_commands(subparsers)` only declares arguments; heavy imports (moderngl,
torch, mediapipe) happen inside the handlers, so `thagen --help` is instant and `thagen inspect`
never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

# Packages whose `cli` module contributes subcommands, in help order.
COMMAND_MODULES = ("characters.cli", "render.cli", "pipeline.cli", "tracking.cli", "training.cli")


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
    # Commands of packages that may not read MMD files (training's `pose`) get motions
    # converted here, where every package may be imported.
    parser.set_defaults(convert_motion=convert_motion)
    return parser


def convert_motion(motion: str, model: str, schema: str, fps: float):
    """A .vmd/.vpd on its MMD model as a pose sequence of `schema` (a shipped name or a YAML):
    iterable `poses.sequence.Frame`s with `fps`, `names` and a `report`."""
    from mmd_loader.motion_schema import load_mapped
    from poses.schema import load_schema

    return load_mapped(motion, model, load_schema(schema), fps)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the input or the request is wrong", reported as one line.

    Every package raises its own (all `ValueError`s but these two); their modules import
    nothing heavy."""
    from mmd_loader.errors import ModelLoadError
    from render.errors import RenderError

    return (OSError, ValueError, ModelLoadError, RenderError)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a command the way Ctrl-C does: workers stopped, complete work kept."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand: the one place user errors are handled. A user error (bad path, bad
    value, unloadable model) prints one line and exits 2; set THAGEN_DEBUG=1 to see the
    traceback instead. Ctrl-C and SIGTERM exit 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except user_errors() as error:
        if os.environ.get("THAGEN_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
