"""Where the shared real images with ground truth live, for tests that measure on real data.

``../shared/real`` beside the repository (see its README: formats and licences), or the folder
named by ``DEPTH_NODES_REAL_DATA``. Tests call :func:`real_path`, which skips the test with the
reason when the data is absent, so the suite still runs on a machine without it. Nothing is ever
copied into the repository and nothing trains on these images.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["REAL_DATA", "real_path"]

REAL_DATA = Path(os.environ.get("DEPTH_NODES_REAL_DATA")
                 or Path(__file__).resolve().parents[1].parent / "shared" / "real")


def real_path(*parts: str) -> Path:
    """``REAL_DATA/parts...``; skips the calling test (with the path) when it does not exist."""
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real evaluation data not found at {path} (set DEPTH_NODES_REAL_DATA or place "
                    "shared/real beside the repository)")
    return path
