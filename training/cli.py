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


def _one_line_warnings(command: str) -> None:
    """Print the recording warnings (``BagWarning``) as ``depth-train CMD: warning: ...``, no source line."""
    import warnings

    from depth_training.bags.errors import BagWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BagWarning):
            print(f"depth-train {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _interrupted_line(command: str, exc: KeyboardInterrupt) -> str:
    step = getattr(exc, "resume_step", None)
    if step is None:
        return f"depth-train {command}: interrupted"
    if step == 0:
        return f"depth-train {command}: interrupted before the first checkpoint; rerun the same command to start again"
    return (f"depth-train {command}: interrupted; checkpoint of step {step} is in {exc.checkpoint_dir}: "
            f"rerun the same command to resume from step {step}")


def main(argv: list[str] | None = None) -> int:
    command = "?"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        _one_line_warnings(command)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"depth-train {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, the shell's status for SIGINT
        print(_interrupted_line(command, exc), file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a real failure, keep the traceback
            raise
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
        print(f"depth-train {command}: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
