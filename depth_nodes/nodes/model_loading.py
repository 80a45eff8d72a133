"""Loading a node's network and its description at start-up, with one clear error.

Shared by ``mono_depth_node`` and ``descriptor_tracker_node``: every problem (no path, missing
or corrupt file, unknown backend, bad description) becomes a
:class:`~depth_nodes.ros.params.ParameterError` naming the parameter and the file, which the
node's ``main`` prints before exiting with status 2; an absent runtime (onnxruntime, torch,
tensorrt) is one line naming the package to install.
"""
from __future__ import annotations

from pathlib import Path

from depth_nodes.backends.base import BackendError, MissingRuntimeError
from depth_nodes.backends.description import ModelDescription, load_description
from depth_nodes.backends.inference import backend_for_path, load_backend
from depth_nodes.ros.params import ParameterError

__all__ = ["load_model", "MODEL_PATH_REQUIRED", "tensorrt_build_options"]

MODEL_PATH_REQUIRED = "model_path: required (a .onnx, .engine/.plan or .pt2 file)"


def load_model(model_path: str, description_path: str, backend: str, device: str, *, shipped: str | None = None,
               log=None):
    """``(backend, description)`` for the node's ``model_path`` parameters; warmed up. An empty
    ``model_path`` takes the package's shipped model of kind ``shipped`` (one ``log`` line says so)."""
    if not model_path and shipped is not None:
        from depth_nodes.shipped_models import shipped_model

        default = shipped_model(shipped)
        if default is not None:
            model_path = str(default)
            if log is not None:
                log(f"model_path is empty: using the shipped {shipped} model {model_path}")
    if not model_path:
        raise ParameterError("invalid parameters:\n  " + MODEL_PATH_REQUIRED)
    if not Path(model_path).is_file():  # before the description, which would be reported missing instead
        raise ParameterError(f"invalid parameters:\n  model_path: {model_path}: "
                             f"{'is a directory' if Path(model_path).is_dir() else 'no such file'}")
    try:
        desc: ModelDescription = load_description(model_path, description_path or None)
    except BackendError as exc:
        raise ParameterError(f"invalid parameters:\n  description_path: {exc}") from exc
    try:
        options = {}
        if backend_for_path(model_path, backend) == "tensorrt" and Path(model_path).suffix.lower() == ".onnx":
            build = tensorrt_build_options(desc)
            if build is not None:  # an engine for a dynamic graph needs its shape range
                options["build_options"] = build
        net = load_backend(model_path, backend, device, **options)
    except MissingRuntimeError as exc:  # one line: the package to install
        raise ParameterError(f"model_path: {exc}") from exc
    except BackendError as exc:
        raise ParameterError(f"invalid parameters:\n  model_path: {exc}") from exc
    try:
        if desc.dynamic:  # a generic warm-up would feed 1x1 to the dynamic sides: run at the description's box
            _warm_up_at_box(net, desc)
        else:
            net.warmup()
    except BackendError as exc:
        net.close()
        raise ParameterError(f"invalid parameters:\n  model_path: {exc}") from exc
    return net, desc


def _warm_up_at_box(net, desc: ModelDescription) -> None:
    """Two runs on zeros of the description's ``height x width`` (a dynamic network's largest input)."""
    import numpy as np

    from depth_nodes.backends.inference import resolve_description

    name = resolve_description(net, desc).input_name
    for _ in range(2):
        net.infer({name: np.zeros((1, 3, desc.height, desc.width), np.float32)})


def tensorrt_build_options(desc: ModelDescription):
    """The TensorRT build options a node uses for an ONNX model whose description says it takes its
    input turned (``any_orientation``, the shipped descriptor model): one optimisation profile from
    the square of the box's shorter side to the square of its longer side, optimal at the box
    (``1x3x480x480 .. 1x3x480x640 .. 1x3x640x640``), which holds both orientations. ``None`` for any
    other description (a fixed graph needs none; other dynamic graphs need a ``--profile`` from
    ``depth-nodes build-engine``). Not verified here: no TensorRT."""
    if not (desc.dynamic and desc.any_orientation):
        return None
    from depth_nodes.backends.engine_cache import BuildOptions, Profile

    lo, hi = sorted((int(desc.height), int(desc.width)))
    return BuildOptions(profiles=(Profile(desc.input_name or "image", (1, 3, lo, lo), (1, 3, desc.height, desc.width),
                                          (1, 3, hi, hi)),))
