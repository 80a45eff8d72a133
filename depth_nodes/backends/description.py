"""What a network expects and produces, without its source code: :class:`ModelDescription`.

Two sources:

* the export sidecar ``X.json`` next to ``X.onnx`` / ``X.engine`` / ``X.pt2`` written by
  ``depth-train export`` (``format: "depth_nodes.onnx_depth/1"``, see
  ``training/evaluation/export.py``): RGB in ``[0, 1]``, fixed size, output ``depth`` or
  ``disparity``, or ``descriptors`` for descriptor models;
* a hand-written YAML for public models (``config/models/*.yaml``,
  ``format: "depth_nodes.model_description/1"``)::

      format: depth_nodes.model_description/1
      name: midas_v21_small
      input: {name: "0", height: 256, width: 256, multiple: 32, keep_aspect: false,
              dynamic: false, channels: RGB, scale: 0.00392156862745098,
              mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
      output: {name: "1", kind: relative_inverse_depth}

Output kinds (:data:`OUTPUT_KINDS`): ``metric_depth`` (metres), ``relative_depth`` (depth up to
scale), ``relative_inverse_depth`` (inverse depth up to scale and shift, MiDaS / Depth Anything
and our SSI-trained sigmoid disparity), ``disparity`` (stereo disparity in pixels of the network
input; depth = fx * baseline / d) and ``descriptors`` (``(B, D, H, W)`` dense descriptors).

Sidecar mapping: output ``disparity`` of an export is the network's sigmoid disparity in
``(0, 1)`` (not pixels), hence ``relative_inverse_depth``; output ``depth`` is ``metric_depth``
when ``depth_is_metric`` and ``relative_depth`` otherwise.

Preprocessing (see :mod:`depth_nodes.pipelines.depth_io`): ``x = (pixel * scale - mean) / std``
per channel in ``channels`` order; the image is resized to fit ``height x width`` (keeping the
aspect when ``keep_aspect``) and padded to ``height x width`` (``dynamic: false``) or only up to
the next multiple of ``multiple`` (``dynamic: true``, for networks with dynamic spatial axes).

How public models resize (``input.resize``, :data:`RESIZE_POLICIES`; the sizes follow the
``Resize`` transform of MiDaS / Depth Anything V2, see
:func:`depth_nodes.pipelines.depth_io.letterbox_geometry`):

* ``fit_inside_pad`` (default; ``keep_aspect: true``): fit inside ``height x width`` keeping the
  aspect, pad (today's behaviour, the export sidecars);
* ``stretch`` (``keep_aspect: false``): stretch to ``height x width`` (MiDaS release ONNX files);
* ``short_side``: keep the aspect, scale so that the image covers the box (the shorter side
  becomes ``height``/``width``), each side rounded to a multiple of ``multiple`` (never below the
  box), no padding; needs ``dynamic: true`` (Depth Anything V2: 640x480 -> 686x518);
* ``long_side``: keep the aspect, scale so that the image fits inside the box, each side rounded
  to a multiple of ``multiple`` (never above the box), no padding; needs ``dynamic: true`` (the
  MiDaS torch-hub transforms: 640x480 -> 256x192).

``input.interpolation`` (:data:`INTERPOLATIONS`): ``auto`` (default: area averaging when
shrinking, bilinear when growing, on the 8-bit image), or ``linear``/``cubic``/``area``:
OpenCV's ``INTER_LINEAR``/``INTER_CUBIC``/``INTER_AREA`` on the float image ``pixel * scale``, as
the references resize ``image / 255.0``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from depth_nodes.backends.base import BackendError
from depth_nodes.structured_files import read_yaml_or_json

__all__ = ["OUTPUT_KINDS", "SIDECAR_FORMAT", "DESCRIPTION_FORMAT", "IMAGENET_MEAN", "IMAGENET_STD",
           "DescriptionError", "ModelDescription", "description_from_mapping", "load_description",
           "RESIZE_POLICIES", "INTERPOLATIONS"]

OUTPUT_KINDS = ("metric_depth", "relative_depth", "relative_inverse_depth", "disparity", "descriptors")
SIDECAR_FORMAT = "depth_nodes.onnx_depth/1"
DESCRIPTION_FORMAT = "depth_nodes.model_description/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ("RGB", "BGR")
RESIZE_POLICIES = ("fit_inside_pad", "short_side", "long_side", "stretch")
INTERPOLATIONS = ("auto", "linear", "cubic", "area")


class DescriptionError(BackendError, ValueError):
    """A model description (sidecar JSON or YAML) that cannot be used; the message names the file.

    A :class:`BackendError` too, so a node can catch one error type for "this model cannot run".
    """


@dataclass(frozen=True)
class ModelDescription:
    """Input and output conventions of one network.

    Attributes:
        height, width: network input size (the box the image is fitted into), pixels.
        multiple: spatial sides must be multiples of this (padding target when ``dynamic``).
        dynamic: the network takes any size (multiple of ``multiple``): pad only to the multiple.
        keep_aspect: letterbox (resize keeping aspect, then pad) instead of stretching.
        channels: ``"RGB"`` or ``"BGR"``, the colour order the network takes.
        scale, mean, std: ``x = (pixel * scale - mean) / std`` per channel.
        input_name, output_name: tensor names in the network (``""`` in a YAML: the network's
            only input / output, see :func:`~depth_nodes.backends.inference.bind_description`).
        output_kind: one of :data:`OUTPUT_KINDS`.
        min_depth, max_depth: valid depth range, metres (``None`` = unbounded); for metric kinds
            depth outside it becomes NaN.
        descriptor_dim: ``D`` for descriptor models.
        source_model_sha256: SHA-256 of the training model file that was exported.
        model_sha256: SHA-256 of the ONNX file the description was written for.
        name: a human-readable name; ``source``: the file the description came from.
        extra: everything else the file held (the training config, verification numbers).
        resize: one of :data:`RESIZE_POLICIES` (module docstring); ``None``: from ``keep_aspect``
            (``fit_inside_pad`` or ``stretch``). ``keep_aspect`` is set to ``resize != "stretch"``.
        interpolation: one of :data:`INTERPOLATIONS` (module docstring).
        output_stride: ``s > 1`` for a descriptors model whose output is ``(1, D, H/s, W/s)``: the
            dense descriptors are that grid interpolated bilinearly to the input size (half-pixel
            centres, ``align_corners=False``), as a zero-shot backbone's are (sidecar
            ``output.stride``; the tracker interpolates only where it searches). 1: full resolution.
        any_orientation: ``height x width`` is the input for an image in that orientation; an image
            in the other orientation (portrait for a landscape box) gets it turned, ``width x
            height``, and is letterboxed into it as into a fixed-size input (sidecar ``orientation:
            any``; needs ``dynamic``: the graph takes both).
    """

    height: int
    width: int
    output_kind: str
    multiple: int = 1
    dynamic: bool = False
    keep_aspect: bool = True
    channels: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_name: str = "image"
    output_name: str = "depth"
    min_depth: float | None = None
    max_depth: float | None = None
    descriptor_dim: int | None = None
    source_model_sha256: str | None = None
    model_sha256: str | None = None
    name: str = ""
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    resize: str | None = None
    interpolation: str = "auto"
    output_stride: int = 1
    any_orientation: bool = False

    def __post_init__(self):
        where = self.source or "model description"
        self._check_resize(where)
        if self.output_kind not in OUTPUT_KINDS:
            raise DescriptionError(f"{where}: output kind must be one of {OUTPUT_KINDS}, got {self.output_kind!r}")
        if self.channels not in CHANNEL_ORDERS:
            raise DescriptionError(f"{where}: channels must be one of {CHANNEL_ORDERS}, got {self.channels!r}")
        if int(self.multiple) < 1:
            raise DescriptionError(f"{where}: multiple must be >= 1, got {self.multiple}")
        if int(self.height) < 1 or int(self.width) < 1:
            raise DescriptionError(f"{where}: input size must be positive, got {self.height}x{self.width}")
        if not self.dynamic and (self.height % self.multiple or self.width % self.multiple):
            raise DescriptionError(f"{where}: input size {self.height}x{self.width} is not a multiple of "
                                   f"{self.multiple}")
        for key in ("mean", "std"):
            v = getattr(self, key)
            if len(v) != 3 or not all(math.isfinite(float(x)) for x in v):
                raise DescriptionError(f"{where}: {key} must be 3 finite numbers, got {v!r}")
        if any(float(s) <= 0 for s in self.std) or not float(self.scale) > 0:
            raise DescriptionError(f"{where}: std and scale must be positive")
        if self.min_depth is not None and self.max_depth is not None and not 0 <= self.min_depth < self.max_depth:
            raise DescriptionError(f"{where}: need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.output_kind == "descriptors" and not (self.descriptor_dim and self.descriptor_dim > 0):
            raise DescriptionError(f"{where}: a descriptors model needs a positive descriptor_dim")
        if self.any_orientation and not self.dynamic:
            raise DescriptionError(f"{where}: orientation: any needs a network with dynamic spatial axes (dynamic: true)")
        if int(self.output_stride) < 1 or (int(self.output_stride) > 1 and self.output_kind != "descriptors"):
            raise DescriptionError(f"{where}: output.stride must be 1, or > 1 for a descriptors model, got "
                                   f"{self.output_stride} for {self.output_kind}")

    def _check_resize(self, where: str) -> None:
        """Validate (and derive) ``resize`` / ``interpolation``; see the class docstring."""
        if self.resize is None:
            object.__setattr__(self, "resize", "fit_inside_pad" if self.keep_aspect else "stretch")
        if self.resize not in RESIZE_POLICIES:
            raise DescriptionError(f"{where}: resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise DescriptionError(f"{where}: interpolation must be one of {INTERPOLATIONS}, "
                                   f"got {self.interpolation!r}")
        if self.resize in ("short_side", "long_side") and not self.dynamic:
            raise DescriptionError(f"{where}: resize {self.resize} gives each image its own input size, which "
                                   f"needs a network with dynamic spatial axes (dynamic: true)")
        object.__setattr__(self, "keep_aspect", self.resize != "stretch")

    def with_size(self, height: int, width: int) -> "ModelDescription":
        """The same description for another network input size."""
        return replace(self, height=int(height), width=int(width))


def _floats3(value, where: str, key: str) -> tuple[float, float, float]:
    if isinstance(value, str) and value.lower() == "imagenet":
        return IMAGENET_MEAN if key == "mean" else IMAGENET_STD
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise DescriptionError(f"{where}: {key} must be a list of 3 numbers or 'imagenet', got {value!r}") from exc
    if len(out) != 3:
        raise DescriptionError(f"{where}: {key} must have 3 values, got {len(out)}")
    return out  # type: ignore[return-value]


def _from_sidecar(doc: Mapping[str, Any], where: str) -> ModelDescription:
    try:
        inp, out = doc["input"], doc["output"]
        height, width = int(doc.get("height", inp["shape"][2])), int(doc.get("width", inp["shape"][3]))
        out_name = str(out["name"])
        kind = str(out.get("kind", out_name))
        output_stride = int(out.get("stride", 1))
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise DescriptionError(f"{where}: sidecar lacks input/output fields ({exc!r})") from exc
    if kind == "disparity":  # the export's sigmoid disparity in (0, 1): inverse depth up to scale and shift
        kind = "relative_inverse_depth"
    elif kind == "depth":
        kind = "metric_depth" if doc.get("depth_is_metric") else "relative_depth"
    channels = str(inp.get("channels", "RGB")).upper()
    lo, hi = (inp.get("range") or [0.0, 1.0])[:2]
    if float(hi) <= float(lo):
        raise DescriptionError(f"{where}: input range {inp.get('range')!r} is empty")
    metric = kind == "metric_depth"
    return ModelDescription(
        height=height, width=width, output_kind=kind, multiple=int(doc.get("multiple", 32)),
        dynamic=bool(doc.get("dynamic", False)), keep_aspect=bool(doc.get("keep_aspect", True)), channels=channels,
        scale=(float(hi) - float(lo)) / 255.0, mean=(-float(lo),) * 3, std=(1.0, 1.0, 1.0),  # lo + pixel/255*(hi-lo)
        input_name=str(inp.get("name", "image")), output_name=out_name,
        min_depth=float(doc["min_depth"]) if metric and doc.get("min_depth") is not None else None,
        max_depth=float(doc["max_depth"]) if metric and doc.get("max_depth") is not None else None,
        descriptor_dim=int(doc["descriptor_dim"]) if doc.get("descriptor_dim") else None,
        source_model_sha256=doc.get("source_model_sha256"), model_sha256=doc.get("onnx_sha256"),
        name=str(doc.get("name") or Path(str(doc.get("onnx") or where)).stem), source=where,
        extra=dict(doc), output_stride=output_stride, any_orientation=str(doc.get("orientation", "")) == "any")


def _resize_fields(inp: Mapping[str, Any], where: str) -> dict:
    """``resize`` / ``interpolation`` of a YAML ``input`` mapping; a ``keep_aspect`` that contradicts
    ``resize`` is refused (``keep_aspect: false`` means ``stretch``)."""
    out: dict = {}
    if "resize" in inp:
        out["resize"] = str(inp["resize"])
        if "keep_aspect" in inp and bool(inp["keep_aspect"]) != (out["resize"] != "stretch"):
            raise DescriptionError(f"{where}: keep_aspect {inp['keep_aspect']} contradicts resize {out['resize']} "
                                   f"(give only resize)")
    if "interpolation" in inp:
        out["interpolation"] = str(inp["interpolation"])
    return out


def description_from_mapping(doc: Mapping[str, Any], where: str = "model description") -> ModelDescription:
    """Build a description from a parsed sidecar (``format`` :data:`SIDECAR_FORMAT`) or YAML document."""
    if not isinstance(doc, Mapping):
        raise DescriptionError(f"{where}: expected a mapping, found {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt == SIDECAR_FORMAT:
        return _from_sidecar(doc, where)
    if fmt != DESCRIPTION_FORMAT:
        raise DescriptionError(f"{where}: format must be {SIDECAR_FORMAT!r} or {DESCRIPTION_FORMAT!r}, got {fmt!r}")
    inp, out = doc.get("input"), doc.get("output")
    if not isinstance(inp, Mapping) or not isinstance(out, Mapping):
        raise DescriptionError(f"{where}: needs 'input' and 'output' mappings")
    known_in = {"name", "height", "width", "multiple", "dynamic", "keep_aspect", "channels", "scale", "mean", "std",
                "resize", "interpolation"}
    known_out = {"name", "kind", "min_depth", "max_depth", "descriptor_dim"}
    for part, keys, known in (("input", inp, known_in), ("output", out, known_out)):
        unknown = sorted(set(keys) - known)
        if unknown:
            raise DescriptionError(f"{where}: unknown {part} keys {unknown} (known: {sorted(known)})")
    try:
        return ModelDescription(
            height=int(inp["height"]), width=int(inp["width"]), output_kind=str(out["kind"]),
            multiple=int(inp.get("multiple", 1)), dynamic=bool(inp.get("dynamic", False)),
            keep_aspect=bool(inp.get("keep_aspect", True)), channels=str(inp.get("channels", "RGB")).upper(),
            scale=float(inp.get("scale", 1.0 / 255.0)), mean=_floats3(inp.get("mean", (0, 0, 0)), where, "mean"),
            std=_floats3(inp.get("std", (1, 1, 1)), where, "std"), input_name=str(inp.get("name") or ""),
            output_name=str(out.get("name") or ""),
            min_depth=None if out.get("min_depth") is None else float(out["min_depth"]),
            max_depth=None if out.get("max_depth") is None else float(out["max_depth"]),
            descriptor_dim=None if out.get("descriptor_dim") is None else int(out["descriptor_dim"]),
            source_model_sha256=doc.get("source_model_sha256"), model_sha256=doc.get("model_sha256"),
            name=str(doc.get("name", "")), source=where, extra=dict(doc),
            **_resize_fields(inp, where))
    except KeyError as exc:
        raise DescriptionError(f"{where}: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DescriptionError):
            raise
        raise DescriptionError(f"{where}: {exc}") from exc


def load_description(model_path: str | os.PathLike, description_path: str | os.PathLike | None = None
                     ) -> ModelDescription:
    """Read the description of ``model_path``.

    ``description_path`` (a ``.json`` sidecar or ``.yaml``/``.yml`` file) when given, else the
    sidecar ``X.json`` next to ``X.onnx`` / ``X.engine`` / ``X.plan`` / ``X.pt2``.

    Raises:
        DescriptionError: no description found, unreadable or invalid (the message names the file).
    """
    path = Path(description_path) if description_path is not None else Path(model_path).with_suffix(".json")
    if not path.is_file():
        hint = "" if description_path is not None else " (pass a model description YAML for public models)"
        raise DescriptionError(f"{path}: no model description for {model_path}{hint}")
    doc = read_yaml_or_json(path, DescriptionError, default="json")
    return description_from_mapping(doc, str(path))
