"""ONNX export of a depth model file, with a JSON sidecar for the runtime and a parity check.

The exported graph is :class:`depth_training.models.DepthInference` (only the scale-0 head):

* input ``image``: ``(B, 3, H, W)`` float32 RGB in ``[0, 1]``, ``B`` dynamic, ``H, W`` fixed
  (the model's training size unless given; multiples of 32);
* output ``depth`` or ``disparity``: ``(B, 1, H, W)`` float32. ``disparity`` is the sigmoid output
  in ``(0, 1)``; ``depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) disparity)``, in metres
  for a ``metric_depth`` model and up to scale otherwise (the sidecar says which).

``OUT.json`` next to ``OUT.onnx`` (``format: "depth_nodes.onnx_depth/1"``) holds what a node needs
without the model's source: input/output names, shapes and value ranges, the export size, the
model's depth range and output kind, the full model config, the ONNX file's SHA-256 and the
verification numbers.

Verification: onnxruntime (CPU) and torch run the same random ``(2, 3, H, W)`` input (seed 0,
batch 2 exercises the dynamic axis); the export fails unless
``max|onnx - torch| <= rtol * max|torch|`` (``rtol = 1e-4``). Nothing is left at ``OUT.onnx`` /
``OUT.json`` by a failed export (both are written to temporaries and renamed).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from depth_training.engine.checkpoint import atomic_write_bytes
from depth_training.models.depth_decoder import DepthInference

__all__ = ["SIDECAR_FORMAT", "MIN_OPSET", "ExportResult", "ExportVerificationError", "default_output",
           "sidecar_path", "export_onnx", "verify_onnx", "export_descriptor_onnx"]

SIDECAR_FORMAT = "depth_nodes.onnx_depth/1"
MIN_OPSET = 17
INPUT_NAME = "image"


class ExportVerificationError(RuntimeError):
    """onnxruntime and torch disagree beyond the tolerance (the export is discarded)."""


@dataclass
class ExportResult:
    onnx_path: Path
    sidecar_path: Path
    max_abs_diff: float
    max_rel_diff: float
    sidecar: dict


def default_output(config: Mapping[str, Any]) -> str:
    """``"disparity"`` for a ``relative_disparity`` model (its depth has no meaning), else ``"depth"``."""
    return "disparity" if config["output"] == "relative_disparity" else "depth"


def sidecar_path(onnx_path: str | Path) -> Path:
    """``OUT.onnx`` -> ``OUT.json``."""
    return Path(onnx_path).with_suffix(".json")


def verify_onnx(onnx_path: str | Path, module: torch.nn.Module, height: int, width: int, *, batch: int = 2,
                seed: int = 0) -> tuple[float, float]:
    """Run ``onnx_path`` (onnxruntime, CPU) and ``module`` on one random input.

    Every output is compared (``module`` returns a tensor or a tuple of them, in the graph's order).

    Returns:
        ``(max|onnx - torch|, max|onnx - torch| / max|torch|)``, the largest over the outputs.
    """
    import onnxruntime as ort

    x = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {INPUT_NAME: x.numpy()})
    with torch.inference_mode():
        refs = module(x)
    refs = [r.numpy() for r in (refs if isinstance(refs, (tuple, list)) else (refs,))]
    if len(outs) != len(refs):
        raise ExportVerificationError(f"{onnx_path}: onnxruntime gives {len(outs)} outputs, torch {len(refs)}")
    max_abs = max_rel = 0.0
    for out, ref in zip(outs, refs):
        if out.shape != ref.shape:
            raise ExportVerificationError(f"{onnx_path}: onnxruntime output {out.shape} != torch output {ref.shape}")
        diff = float(np.abs(out.astype(np.float64) - ref).max())
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(float(np.abs(ref).max()), 1e-12))
    return max_abs, max_rel


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _export_size(config: Mapping[str, Any], height: int | None, width: int | None, opset: int) -> tuple[int, int]:
    """The graph's input size (default: the model's training size), checked with ``opset``."""
    height = int(config["height"] if height is None else height)
    width = int(config["width"] if width is None else width)
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise ValueError(f"height/width: must be positive multiples of 32, got {height}x{width}")
    if opset < MIN_OPSET:
        raise ValueError(f"opset: must be >= {MIN_OPSET}, got {opset}")
    return height, width


def _second_size(height: int, width: int) -> tuple[int, int]:
    """A second verification size for a dynamic export: neither side's size, the other orientation
    where the box is not square (``3/4`` of the shorter side where it is), multiples of 32."""
    if height != width:
        return width, height
    return max(32, (height * 3 // 4) // 32 * 32), width


def _export_verified(module: torch.nn.Module, out: Path, output_name: str | Sequence[str], height: int, width: int,
                     opset: int, rtol: float, source: str | None,
                     describe: Callable[[], dict[str, Any]], dynamic: bool = False) -> ExportResult:
    """Trace ``module`` to ONNX at ``out``, check it, verify it against torch and write its sidecar.

    The sidecar is ``format``, ``onnx``, ``onnx_sha256``, ``input``, then ``describe()`` (the
    output and model fields of each kind of export), then ``opset``, ``source_model``,
    ``source_model_sha256`` and ``verification``. Nothing is left at ``out`` when a step fails.
    With ``dynamic`` the input's height and width (and the outputs') are dynamic axes, and the graph
    is verified at a second, non-square size too (:func:`_second_size`).
    """
    import onnx
    import onnxruntime as ort

    names = [output_name] if isinstance(output_name, str) else list(output_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and tracer notices
            spatial = {2: "height", 3: "width"} if dynamic else {}
            torch.onnx.export(module, (torch.rand(1, 3, height, width),), str(tmp), opset_version=opset,
                              dynamo=False, input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes={INPUT_NAME: {0: "batch", **spatial},
                                            **{n: {0: "batch", **{a: f"{n}_{d}" for a, d in spatial.items()}}
                                               for n in names}})
        onnx.checker.check_model(onnx.load(str(tmp)))
        sizes = [(height, width)] + ([_second_size(height, width)] if dynamic else [])
        checks = [verify_onnx(tmp, module, h, w) for h, w in sizes]
        max_abs, max_rel = max(c[0] for c in checks), max(c[1] for c in checks)
        if not max_rel <= rtol:
            raise ExportVerificationError(
                f"{out}: onnxruntime and torch differ by {max_abs:.3g} (relative {max_rel:.3g} > {rtol:g}); "
                f"export discarded")
        sidecar = {
            "format": SIDECAR_FORMAT,
            "onnx": out.name,
            "onnx_sha256": _sha256(tmp),
            "input": {"name": INPUT_NAME, "shape": ["batch", 3, *(("height", "width") if dynamic else (height, width))],
                      "dtype": "float32", "layout": "NCHW", "channels": "RGB", "range": [0.0, 1.0]},
            **describe(),
            "opset": opset,
            "source_model": source,
            "source_model_sha256": _sha256(Path(source)) if source and Path(source).is_file() else None,
            "verification": {"input_shape": [2, 3, height, width],
                             **({"input_shapes": [[2, 3, h, w] for h, w in sizes]} if dynamic else {}),
                             "max_abs_diff": max_abs,
                             "max_rel_diff": max_rel, "rtol": rtol, "onnxruntime": ort.__version__,
                             "torch": torch.__version__},
        }
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    side = sidecar_path(out)
    atomic_write_bytes(side, (json.dumps(sidecar, indent=2, default=str) + "\n").encode())
    return ExportResult(out, side, max_abs, max_rel, sidecar)


def export_onnx(net: torch.nn.Module, config: Mapping[str, Any], out: str | Path, *, output: str | None = None,
                height: int | None = None, width: int | None = None, opset: int = MIN_OPSET, rtol: float = 1e-4,
                source: str | None = None) -> ExportResult:
    """Export ``net`` (a :class:`~depth_training.models.DepthNet` with its model ``config``) to ``out``.

    Args:
        output: ``"depth"`` or ``"disparity"`` (default :func:`default_output`).
        height, width: the graph's fixed input size (default: the model's training size).
        opset: ONNX opset, at least :data:`MIN_OPSET`.
        rtol: verification tolerance relative to ``max|torch output|``.
        source: the model file's path, recorded in the sidecar.

    Raises:
        ValueError: bad size, opset or output.
        ExportVerificationError: onnxruntime disagrees with torch (nothing is written).
    """
    out = Path(out)
    output = output or default_output(config)
    height, width = _export_size(config, height, width, opset)
    module = DepthInference(net.cpu().eval(), output, float(config["min_depth"]), float(config["max_depth"])).eval()
    return _export_verified(module, out, output, height, width, opset, rtol, source, lambda: {
        "output": {"name": output, "kind": output, "shape": ["batch", 1, height, width], "dtype": "float32"},
        "height": height, "width": width,
        "min_depth": float(config["min_depth"]), "max_depth": float(config["max_depth"]),
        "model_output": config["output"],
        "depth_is_metric": output == "depth" and config["output"] == "metric_depth",
        "model": dict(config),
    })


def export_descriptor_onnx(net: torch.nn.Module, config: Mapping[str, Any], out: str | Path, *,
                           height: int | None = None, width: int | None = None, opset: int = MIN_OPSET,
                           rtol: float = 1e-4, source: str | None = None, strided: bool = True,
                           dynamic: bool = False) -> ExportResult:
    """Export a :class:`~depth_training.models.descriptor.DescriptorNet` to ``out`` (same checks as
    :func:`export_onnx`): input ``image`` ``(B, 3, H, W)`` float32 RGB in ``[0, 1]``, output
    ``descriptors`` ``(B, D, H, W)`` float32; the sidecar has ``output.kind = "descriptors"``,
    ``descriptor_dim`` and ``source_model_sha256`` (SHA-256 of the exported model file, what keypoint
    reference files are checked against).

    With ``strided`` (default) and a network whose output is its stride-``s`` map interpolated
    (:func:`~depth_training.models.backbone_descriptor.grid_stride`: a zero-shot backbone), the
    output is that map, ``descriptors`` ``(B, D, H/s, W/s)``, and the sidecar's ``output.stride`` is
    ``s``: the dense descriptors are its bilinear interpolation (``align_corners=False``), which the
    tracker node computes only where it searches (the graph is half as dear on the CPU without the
    full-resolution map). ``strided=False`` exports the full-resolution map.

    With ``dynamic`` the graph takes any size that is a multiple of 32 and the sidecar says
    ``dynamic: true``, ``orientation: any``: the runtime letterboxes a camera image into ``height x
    width`` as into a fixed-size input, turned to ``width x height`` for an image of the other
    orientation, so a portrait camera runs upright at the scale a landscape one gets instead of
    letterboxed into a landscape input; a landscape camera runs exactly as with a fixed input.
    """
    from depth_training.models.backbone_descriptor import StrideDescriptors, grid_stride

    out = Path(out)
    height, width = _export_size(config, height, width, opset)
    dim = int(config["descriptor_dim"])
    net = net.cpu().eval()
    stride = grid_stride(net, height, width) if strided else 0
    output = {"name": "descriptors", "kind": "descriptors", "shape": ["batch", dim, height, width], "dtype": "float32"}
    module = net
    if stride:
        module = StrideDescriptors(net).eval()
        output.update(shape=["batch", dim, height // stride, width // stride], stride=stride)
    if dynamic:
        output["shape"] = ["batch", dim, *((f"height/{stride}", f"width/{stride}") if stride else ("height", "width"))]
    return _export_verified(module, out, "descriptors", height, width, opset, rtol, source, lambda: {
        "output": output,
        "height": height, "width": width,
        **({"dynamic": True, "multiple": 32, "orientation": "any"} if dynamic else {}),
        "descriptor_dim": dim,
        "model_output": "descriptors",
        "model": dict(config),
    }, dynamic=dynamic)
