"""Single-view depth: camera image -> network -> metric (or relative) depth, cloud and preview (ROS-free).

Per frame::

    x, lb  = preprocess(image, encoding, desc)                 # depth_io: colour, letterbox, normalise
    y      = backend.infer({desc.input_name: x})[desc.output_name]
    raw    = network output at camera resolution (crop + resize, <= 0 -> NaN)
    depth  = to_metric_depth(raw, kind, scale_mode, ...)       # mono_scale: metric | fixed | align
             (align: fit 1/z_ref ~ a x + b against the sparse metric depth of the same frame)
    depth[depth < min_depth or > max_depth] = NaN
    cloud  = organized_points(camera, depth, rgb, decimation)  # only when asked for

``scale_mode == "relative"`` publishes the relative inverse depth (:func:`inverse_depth_of`) and
no metric depth or cloud. :meth:`MonoDepthPipeline.process` returns every stage's time so the
node and the benchmark can tell inference from the rest.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from depth_nodes.backends.description import ModelDescription
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.geometry.pointcloud import organized_points
from depth_nodes.pipelines.depth_io import postprocess_depth, preprocess, to_channels
from depth_nodes.pipelines.mono_scale import (
    InverseDepthFit, check_scale_mode, fit_inverse_depth, resolve_scale_mode, inverse_depth_of, to_metric_depth)
from depth_nodes.visualization import colorize

__all__ = ["MonoInputError", "MonoFrame", "MonoResult", "MonoDepthPipeline"]


class MonoInputError(ValueError):
    """A frame that cannot be processed (sizes disagree, no reference depth for ``align``)."""


@dataclass
class MonoFrame:
    """``image`` ``(H, W[, 3|4])`` uint8 in ``encoding``; ``camera`` of the image (needed for clouds);
    ``reference_depth`` ``(H', W')`` metres, NaN = none, registered to the image (``align`` only;
    resized to ``H x W`` with nearest neighbour when the aspect ratio matches)."""

    image: np.ndarray
    encoding: str
    camera: PinholeCamera | None = None
    reference_depth: np.ndarray | None = None


@dataclass
class MonoResult:
    depth: np.ndarray | None              # (H, W) float32 metres, NaN invalid (None in relative mode)
    relative_inverse: np.ndarray | None   # (H, W) float32, relative mode only
    cloud: np.ndarray | None              # (H', W', 3|4) float32 (see organized_points)
    colorized: np.ndarray | None          # (H, W, 3) uint8 BGR
    fit: InverseDepthFit | None           # align mode
    timings: dict = field(default_factory=dict)  # seconds: preprocess, inference, postprocess, cloud, colorize


class MonoDepthPipeline:
    """See module docstring. Attributes other than ``backend``/``desc``/``scale_mode`` may change between frames;
    ``scale_mode`` is the resolved one (``auto`` becomes ``metric`` or ``relative``)."""

    def __init__(self, backend, desc: ModelDescription, scale_mode: str = "metric", *, scale_factor: float = 1.0,
                 min_depth: float = 0.0, max_depth: float = float("inf"), align_with_shift: bool = True,
                 align_min_samples: int = 20, decimation: int = 1, colorize_points: bool = True,
                 colorize_min: float = 0.0, colorize_max: float = 0.0):
        scale_mode = resolve_scale_mode(scale_mode, desc.output_kind)
        check_scale_mode(scale_mode, desc.output_kind, desc.source or desc.name or "the model")
        self.backend, self.desc, self.scale_mode = backend, desc, scale_mode
        self.scale_factor = scale_factor
        self.min_depth, self.max_depth = min_depth, max_depth
        self.align_with_shift, self.align_min_samples = align_with_shift, align_min_samples
        self.decimation, self.colorize_points = decimation, colorize_points
        self.colorize_min, self.colorize_max = colorize_min, colorize_max
        # raw output at camera resolution, whatever the kind (postprocess of a "relative_depth" at scale 1)
        self._raw_desc = replace(desc, output_kind="relative_depth", min_depth=None, max_depth=None)
        self._input = None  # reused network input buffer

    def cloud_shape(self, height: int, width: int) -> tuple[int, int, int]:
        n = self.decimation
        return (-(-height // n), -(-width // n), 4 if self.colorize_points else 3)

    def process(self, frame: MonoFrame, *, with_cloud: bool = False, with_colorized: bool = False,
                cloud_out: np.ndarray | None = None) -> MonoResult:
        t0 = time.perf_counter()
        x, lb = preprocess(frame.image, frame.encoding, self.desc, out=self._input)
        self._input = x
        t1 = time.perf_counter()
        outputs = self.backend.infer({self.desc.input_name: x})
        if self.desc.output_name not in outputs:
            raise MonoInputError(f"model has no output {self.desc.output_name!r} (outputs: {sorted(outputs)})")
        y = outputs[self.desc.output_name]
        t2 = time.perf_counter()
        raw = postprocess_depth(y, lb, self._raw_desc)
        kind = self.desc.output_kind
        fit = None
        depth = relative = None
        if self.scale_mode == "relative":
            relative = inverse_depth_of(raw, kind)
        else:
            if self.scale_mode == "align":
                ref = self._reference(frame, raw.shape)
                fit = fit_inverse_depth(inverse_depth_of(raw, kind), ref, with_shift=self.align_with_shift,
                                        min_samples=self.align_min_samples)
                if not fit.ok:
                    raise MonoInputError(f"align: {fit.reason}")
            depth = to_metric_depth(raw, kind, self.scale_mode, scale_factor=self.scale_factor, fit=fit)
            if self.desc.min_depth is not None or self.desc.max_depth is not None:
                lo = self.desc.min_depth if self.desc.min_depth is not None else 0.0
                hi = self.desc.max_depth if self.desc.max_depth is not None else np.inf
                if kind == "metric_depth":
                    depth[(depth < lo) | (depth > hi)] = np.nan
            with np.errstate(invalid="ignore"):
                depth[(depth < self.min_depth) | (depth > self.max_depth)] = np.nan
        t3 = time.perf_counter()
        cloud = None
        if with_cloud and depth is not None:
            if frame.camera is None:
                raise MonoInputError("no camera_info for the point cloud")
            if not frame.camera.matches(depth.shape[1], depth.shape[0]):
                raise MonoInputError(f"camera_info is {frame.camera.width}x{frame.camera.height} but the image is "
                                     f"{depth.shape[1]}x{depth.shape[0]}")
            rgb = to_channels(frame.image, frame.encoding, "RGB") if self.colorize_points else None
            cloud = organized_points(frame.camera, depth, rgb, decimation=self.decimation, out=cloud_out)
        t4 = time.perf_counter()
        colour = None
        if with_colorized:
            values = depth if depth is not None else relative
            if self.colorize_max > self.colorize_min:
                lo, hi = self.colorize_min, self.colorize_max
            else:  # automatic: 2nd/98th percentiles of every 4th row and column (16x fewer values to sort)
                sample = values[::4, ::4]
                sample = sample[np.isfinite(sample)]
                lo, hi = (np.percentile(sample, [2, 98]).tolist() if sample.size else (None, None))
            # near is warm: depth is inverted, relative inverse depth already grows when near
            colour = colorize(values, lo, hi, inverse=depth is not None, bgr=True)
        t5 = time.perf_counter()
        return MonoResult(depth, relative, cloud, colour, fit,
                          {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2, "cloud": t4 - t3,
                           "colorize": t5 - t4})

    @staticmethod
    def _reference(frame: MonoFrame, shape: tuple[int, int]) -> np.ndarray:
        ref = frame.reference_depth
        if ref is None:
            raise MonoInputError("align: no reference depth received yet")
        ref = np.asarray(ref, dtype=np.float32)
        if ref.shape != shape:
            h, w = shape
            if ref.ndim != 2 or abs(ref.shape[1] / ref.shape[0] - w / h) > 0.01:
                raise MonoInputError(f"align: reference depth is {ref.shape[1]}x{ref.shape[0]}, the image {w}x{h} "
                                     "(register it to the camera first)")
            ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_NEAREST)
        return ref
