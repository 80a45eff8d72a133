"""``depth-nodes``: runtime tools (engine building, backend verification, bag playback).

Each module listed in :data:`SUBCOMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subparser(s) and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning
an exit code) as the parser default. Modules are imported only to build the parser, so they must
not import heavy dependencies (torch, tensorrt, rclpy) at module level.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# One line per subcommand module; keep the list short and explicit (no plugin magic).
SUBCOMMAND_MODULES: list[str] = [
    "depth_nodes.tools.play",
    "depth_nodes.backends.cli",
]


class UserError(Exception):
    """An error caused by the user's input (bad file, bad argument).

    ``depth-nodes`` prints its message (which names the file and the problem) without a
    traceback and exits with status 2.
    """


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-nodes",
        description="Build and verify inference engines and play recordings for the depth_nodes nodes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"depth-nodes {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional package (rosbags, onnxruntime, ...): one line naming it
        from depth_nodes.optional_deps import missing_package_message

        message = missing_package_message(exc)
        if message is None:
            raise
        print(f"depth-nodes {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"depth-nodes {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run the package module's main: subcommands raise ``depth_nodes.cli.UserError``, which is a
    # different class from this ``__main__`` module's copy.
    from depth_nodes.cli import main as _package_main

    sys.exit(_package_main())
