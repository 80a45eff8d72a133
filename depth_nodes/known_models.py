"""Tiny ONNX networks whose outputs are known in closed form, with their sidecars.

For tests, benchmarks and the demo's wiring checks of the nodes: the node under test runs the
same backend, pre- and post-processing as with a trained network, and its outputs can be
checked exactly against the formula.

* :func:`write_affine_depth_model`: ``y = a + b * R`` where ``R`` is the red channel of the
  network input (``pixel / 255`` in ``[0, 1]``), output ``(1, 1, H, W)``; the sidecar declares
  the output kind (``metric_depth``, ``relative_depth`` or ``relative_inverse_depth``).
* :func:`write_colour_descriptor_model`: ``F = s * [R, G, B]`` (``D = 3``), output
  ``descriptors`` ``(1, 3, H, W)``: a pixel's descriptor is its scaled colour, so a keypoint is
  tracked exactly where its colour is.

``extra_ops`` adds that many 3x3 convolutions whose result is multiplied by 0 and added to
the output (the answer is unchanged) to give the network a realistic cost for benchmarks.

Sidecars follow the export format ``depth_nodes.onnx_depth/1`` (see
``training/evaluation/export.py``); ``source_model_sha256`` is the SHA-256 of the ONNX bytes.
Needs the ``onnx`` package (imported when called).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

__all__ = ["write_affine_depth_model", "write_colour_descriptor_model"]

SIDECAR_FORMAT = "depth_nodes.onnx_depth/1"


def _graph(height: int, width: int, out_name: str, out_channels: int, body, extra_ops: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    last = body(nodes, const)
    rng = np.random.default_rng(0)
    x = "image"
    for i in range(extra_ops):
        w = const(f"w{i}", rng.normal(0, 0.2, size=(3, 3, 3, 3)))
        nodes.append(helper.make_node("Conv", [x, w], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    if extra_ops:
        nodes.append(helper.make_node("ReduceMean", [x], ["rm"], axes=[1], keepdims=1))
        nodes.append(helper.make_node("Mul", ["rm", const("zero", 0.0)], ["z0"]))
        nodes.append(helper.make_node("Add", [last, "z0"], [out_name]))
    else:
        nodes.append(helper.make_node("Identity", [last], [out_name]))
    graph = helper.make_graph(
        nodes, "known_model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [1, out_channels, height, width])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _write(path: Path, data: bytes, sidecar: dict) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    sidecar = {"format": SIDECAR_FORMAT, "onnx": path.name, "onnx_sha256": digest, "source_model_sha256": digest,
               **sidecar}
    side = path.with_suffix(".json")
    side.write_text(json.dumps(sidecar, indent=2))
    return path, side


def write_affine_depth_model(path, height: int, width: int, *, a: float = 1.0, b: float = 4.0,
                             kind: str = "metric_depth", extra_ops: int = 0,
                             min_depth: float | None = None, max_depth: float | None = None) -> tuple[Path, Path]:
    """Write ``y = a + b * R`` (see module docstring) to ``path`` and its sidecar; returns both paths."""
    from onnx import helper

    def body(nodes, const):
        nodes.append(helper.make_node("Slice", ["image", "s0", "s1", "s_ax"], ["red"]))
        const("s0", [0]), const("s1", [1]), const("s_ax", [1])
        nodes.append(helper.make_node("Mul", ["red", const("b", b)], ["bred"]))
        nodes.append(helper.make_node("Add", ["bred", const("a", a)], ["affine"]))
        return "affine"

    import onnx
    from onnx import numpy_helper

    data = _graph(height, width, "depth", 1, body, extra_ops)
    model = onnx.load_from_string(data)  # Slice indices must be int64
    for init in model.graph.initializer:
        if init.name in ("s0", "s1", "s_ax"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.int64), init.name))
    data = model.SerializeToString()
    side = {"input": {"name": "image", "shape": [1, 3, height, width], "range": [0.0, 1.0], "channels": "RGB"},
            "output": {"name": "depth", "kind": kind, "shape": [1, 1, height, width]},
            "height": height, "width": width, "multiple": 1, "depth_is_metric": kind == "metric_depth",
            "name": f"affine_depth_{a:g}_{b:g}"}
    if min_depth is not None:
        side["min_depth"] = min_depth
    if max_depth is not None:
        side["max_depth"] = max_depth
    return _write(path, data, side)


def write_colour_descriptor_model(path, height: int, width: int, *, scale: float = 4.0,
                                  extra_ops: int = 0) -> tuple[Path, Path]:
    """Write ``F = scale * [R, G, B]`` (``D = 3``) to ``path`` and its sidecar; returns both paths."""
    from onnx import helper

    def body(nodes, const):
        nodes.append(helper.make_node("Mul", ["image", const("scale", scale)], ["desc"]))
        return "desc"

    data = _graph(height, width, "descriptors", 3, body, extra_ops)
    side = {"input": {"name": "image", "shape": [1, 3, height, width], "range": [0.0, 1.0], "channels": "RGB"},
            "output": {"name": "descriptors", "kind": "descriptors", "shape": [1, 3, height, width]},
            "height": height, "width": width, "multiple": 1, "descriptor_dim": 3,
            "name": f"colour_descriptors_{scale:g}"}
    return _write(path, data, side)
