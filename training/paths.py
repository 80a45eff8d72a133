"""Checking output paths before the work that writes them (one clear line instead of an ``OSError`` at the end)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["output_path_problem"]


def output_path_problem(path: str | os.PathLike, *, directory: bool = False) -> str | None:
    """Why ``path`` cannot be created as a file (``directory=False``) or directory, or ``None``.

    Finds a parent that is a file (``out/model.pt/x``), an existing path of the other kind, and a
    nearest existing parent that is not writable.
    """
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            return f"{path} exists and is a file, not a directory"
        if not directory and path.is_dir():
            return f"{path} is a directory"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, so {path} cannot be created under it"
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable, so {path} cannot be created"
    return None
