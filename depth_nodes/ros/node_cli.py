"""Command-line front of a node: ``--help`` from its declared parameters, a checked ``--params-file``.

Every node's ``main`` calls, before ``rclpy.init``::

    code = handle_command_line(argv, usage)
    if code is not None:
        return code

:func:`handle_command_line` prints the usage and returns 0 for ``-h``/``--help`` (outside the
``--ros-args`` section, so the node never starts), and prints one line and returns 2 when a
``--params-file`` given after ``--ros-args`` is missing, unreadable or not YAML (rcl would
otherwise raise an ``RCLError`` traceback). :class:`NodeUsage` holds what the usage shows: the
node's name and summary, its input and output topics and its :class:`~depth_nodes.ros.params.ParamSpec`
table.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

from depth_nodes.ros.params import ParamSpec

__all__ = ["NodeUsage", "usage_text", "params_file_problems", "handle_command_line"]


@dataclass(frozen=True)
class NodeUsage:
    """What ``--help`` prints. ``inputs``/``outputs``: ``(topic, type name, note)`` rows."""

    executable: str
    summary: str
    inputs: Sequence[tuple[str, str, str]] = ()
    outputs: Sequence[tuple[str, str, str]] = ()
    params: Sequence[ParamSpec] = ()
    example: str = ""
    notes: Sequence[str] = field(default_factory=tuple)


def _range_text(spec: ParamSpec) -> str:
    if spec.choices is not None:
        return "{" + ", ".join(map(str, spec.choices)) + "}"
    if spec.min is not None and spec.max is not None and not isinstance(spec.default, bool):
        return f"[{spec.min:g}..{spec.max:g}]"
    return ""


def usage_text(usage: NodeUsage) -> str:
    """The ``--help`` text: usage line, topics, every parameter with default, range and description."""
    lines = [f"usage: {usage.executable} [-h] [--managed] [--ros-args [--params-file FILE] [-p NAME:=VALUE] "
             "[-r FROM:=TO] [--log-level LEVEL]]", "", usage.summary, "",
             "--managed: a lifecycle node (configure loads the model, outputs only while active)", ""]
    for title, rows in (("subscribes", usage.inputs), ("publishes", usage.outputs)):
        if rows:
            lines.append(f"{title} (relative names; remap with -r NAME:=/new/name):")
            width = max(len(t) for t, _, _ in rows)
            lines += [f"  {t:<{width}}  {typ}" + (f"  ({note})" if note else "") for t, typ, note in rows]
            lines.append("")
    if usage.params:
        lines.append("parameters (-p NAME:=VALUE or --params-file; * = can change at run time):")
        width = max(len(s.name) for s in usage.params)
        for s in usage.params:
            default = f"{s.default!r}" if isinstance(s.default, str) else str(s.default).lower() \
                if isinstance(s.default, bool) else str(s.default)
            extra = _range_text(s)
            lines.append(f"  {s.name:<{width}} {'*' if s.dynamic else ' '} default {default}"
                         + (f" {extra}" if extra else "") + f": {s.description}")
        lines.append("")
    lines += list(usage.notes)
    if usage.example:
        lines += ["example:", f"  {usage.example}"]
    return "\n".join(lines).rstrip() + "\n"


def _ros_args_sections(argv: Sequence[str]) -> list[str]:
    """The arguments inside ``--ros-args ... [--]`` sections."""
    out, inside = [], False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
        elif arg == "--" and inside:
            inside = False
        elif inside:
            out.append(arg)
    return out


def _user_args(argv: Sequence[str]) -> list[str]:
    out, inside = [], False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
        elif arg == "--" and inside:
            inside = False
        elif not inside:
            out.append(arg)
    return out


def params_file_problems(argv: Sequence[str]) -> list[str]:
    """One ``"--params-file X: why"`` line per params file (after ``--ros-args``) that rcl cannot read."""
    import yaml

    ros = _ros_args_sections(argv)
    problems = []
    for i, arg in enumerate(ros):
        if arg != "--params-file":
            continue
        if i + 1 >= len(ros):
            problems.append("--params-file: missing the file name")
            continue
        path = Path(ros[i + 1])
        if not path.exists():
            problems.append(f"--params-file {path}: no such file")
        elif not path.is_file():
            problems.append(f"--params-file {path}: not a file")
        else:
            try:
                yaml.safe_load(path.read_text())
            except OSError as exc:
                problems.append(f"--params-file {path}: cannot read it ({exc.strerror})")
            except yaml.YAMLError as exc:
                where = getattr(exc, "problem_mark", None)
                at = f" at line {where.line + 1}" if where is not None else ""
                problems.append(f"--params-file {path}: not valid YAML{at}")
    return problems


def handle_command_line(argv: Sequence[str] | None, usage: NodeUsage, out: TextIO | None = None,
                        err: TextIO | None = None) -> int | None:
    """``--help`` -> usage on ``out``, 0; bad ``--params-file`` -> one line per file on ``err``, 2; else ``None``.

    ``argv`` includes the program name (``sys.argv`` when ``None``).
    """
    argv = list(sys.argv if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    user = _user_args(argv[1:])
    if "-h" in user or "--help" in user:
        out.write(usage_text(usage))
        return 0
    problems = params_file_problems(argv[1:])
    if problems:
        for p in problems:
            err.write(f"{usage.executable}: {p}\n")
        return 2
    return None
