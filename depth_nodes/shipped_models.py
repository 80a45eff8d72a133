"""Models that ship with the package (``depth_nodes/models/``: ONNX + sidecar, a few MB each).

Each is produced by a script from pinned inputs (``scripts/``) and listed with its evaluation in
docs/training.md; the nodes use them when ``model_path`` is empty.

=============== ============================ =====================================================
kind            file                         made by
=============== ============================ =====================================================
``descriptors`` ``descriptors_xfeat.onnx``   ``scripts/descriptor_shipped_model.sh``
``mono_depth``  ``mono_depth_xfeat.onnx``    ``scripts/mono_shipped_model.sh``
=============== ============================ =====================================================
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED", "MODELS_DIR", "shipped_model"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
SHIPPED = {"descriptors": "descriptors_xfeat.onnx", "mono_depth": "mono_depth_xfeat.onnx"}


def shipped_model(kind: str) -> Path | None:
    """The shipped model file of ``kind`` (with its ``.json`` sidecar beside it), or ``None`` when
    this installation has none of that kind."""
    name = SHIPPED.get(kind)
    if name is None:
        return None
    path = MODELS_DIR / name
    return path if path.is_file() and path.with_suffix(".json").is_file() else None
