"""Loading torch files without running code from them.

``torch.load(weights_only=True)`` unpickles only tensors, containers and plain Python values;
a file that names any other global (a class, ``os.system`` ...) is refused before anything in
it runs. :func:`safe_torch_load` adds a message that names the file and what it asked for, so a
user handed a foreign or crafted ``model.pt`` learns why it does not load.
"""
from __future__ import annotations

import os
import pickle
import re
from typing import Any

import torch

__all__ = ["UnsafeFileError", "safe_torch_load"]

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class UnsafeFileError(ValueError):
    """A torch file that needs arbitrary Python objects to load (so loading it could run code)."""


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file that needs other objects -> :class:`UnsafeFileError`.

    Other failures (missing, truncated, not a torch file) propagate unchanged.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if "Weights only load failed" not in str(exc) or found is None:
            raise  # not a refused object: a corrupt or foreign file, reported by the caller
        what = f" ({found.group(1)})"
        raise UnsafeFileError(
            f"{os.fspath(path)}: refused: the file needs Python objects other than tensors and plain values"
            f"{what} to load, and loading it could run code; only files written by depth-train "
            "(model.pt, checkpoints) are accepted") from None
