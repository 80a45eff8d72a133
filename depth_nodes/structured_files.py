"""Reading a YAML or JSON file (model descriptions, evaluation manifests) with errors naming the file.

The format follows the suffix: ``.json`` is JSON, ``.yaml`` / ``.yml`` YAML, anything else the
caller's ``default``. Every problem (unreadable, not UTF-8, a syntax error) is raised as the
caller's exception class with one line: ``<path>: cannot read[ the <what>] (<reason>)``,
``<path>: not valid JSON (<reason>)`` or ``<path>: not valid YAML (<first line of the reason>)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_yaml_or_json"]


def read_yaml_or_json(path: str | Path, error: type[Exception], *, default: str = "json", what: str = "") -> Any:
    """The document in ``path`` (any YAML/JSON value; the caller checks its shape).

    Args:
        error: exception class raised with the one-line message.
        default: ``"json"`` or ``"yaml"``, the format of a file with another suffix.
        what: the file's role for the unreadable-file message (``"manifest"``).
    """
    if default not in ("json", "yaml"):
        raise ValueError(f"default: expected 'json' or 'yaml', got {default!r}")
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read{' the ' + what if what else ''} ({exc})") from None
    suffix = path.suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else default
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{path}: not valid JSON ({exc})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
