"""``depth-train``: one command, one subcommand per tool.

Each module listed in :data:`SUBCOMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subparser(s) and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning
an exit code) as the parser default.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# One line per subcommand module; keep the list short and explicit (no plugin magic).
SUBCOMMAND_MODULES: list[str] = [
    "depth_training.bags.cli",
    "depth_training.sim.cli",
    "depth_training.modes.cli",
    "depth_training.evaluation.cli",
    "depth_training.modes.descriptors",
    "depth_training.evaluation.descriptors_cli",
]


class UserError(Exception):
    """An error caused by the user's input (bad file, missing topic, bad argument).

    ``depth-train`` prints its message (which names the file/topic/problem) without a traceback
    and exits with status 2.
    """


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-train",
        description="Record, inspect, train, evaluate and export depth_nodes networks.",
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
        print(f"depth-train {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
