"""Optional Python packages: what each is for and how to install it, for one-line errors.

The nodes run with numpy, OpenCV, PyYAML and rclpy (all with rosdep keys in ``package.xml``);
each inference backend, bag reading and the simulator need a package that rosdep does not
provide. When its import fails, the entry points (``run_node``, ``depth-nodes``) and
:func:`depth_nodes.backends.inference.load_backend` print :func:`missing_package_message`
instead of a traceback.
"""
from __future__ import annotations

__all__ = ["OPTIONAL_PACKAGES", "missing_package_message"]

#: top-level module -> (pip requirement, what needs it)
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "the ONNX Runtime backend (.onnx models); onnxruntime-gpu for CUDA"),
    "torch": ("torch", "the torch backend (.pt2/.pt models)"),
    "tensorrt": ("tensorrt", "the TensorRT backend (.engine/.plan, or .onnx with backend tensorrt)"),
    "cuda": ("cuda-python", "TensorRT's CUDA memory"),
    "rosbags": ("rosbags", "reading and writing bags"),
    "mujoco": ("mujoco", "the simulator"),
    "onnx": ("onnx", "writing ONNX models (export, test models)"),
}


def missing_package_message(exc: ImportError) -> str | None:
    """``"needs the Python package X (what for): pip install X"`` when ``exc`` is a missing optional
    package of :data:`OPTIONAL_PACKAGES`; ``None`` for any other import error (a real bug)."""
    top = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or top not in OPTIONAL_PACKAGES:
        return None
    requirement, needed_for = OPTIONAL_PACKAGES[top]
    return f"needs the Python package {requirement!r}, which is not installed ({needed_for}): pip install {requirement}"
