"""Dense descriptors -> tracked reference keypoints, in camera pixels and 3D (ROS-free).

Per frame::

    x, lb = preprocess(image, encoding, desc)               # depth_io (the network's input conventions)
    F     = descriptor_window(backend.infer(x)[desc.output_name], lb, desc.output_stride)
                                                            # (D, h_r, w_r): the image's window (a model with
                                                            # output.stride s: its grid, interpolated on demand)
    track = KeypointTracker.update(F)                       # keypoint_tracking, network pixels
    u_cam = (u_net + 0.5) / s_x - 0.5,  v_cam = (v_net + 0.5) / s_y - 0.5   (pixel-centre convention)
    X     = z(u_cam, v_cam) * K^-1 [u_cam, v_cam, 1]^T     # with a registered depth image, else NaN

The search radius and the lost threshold are in network pixels and descriptor units.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_nodes.backends.description import ModelDescription
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.pipelines.depth_io import Letterbox, crop_output, preprocess, to_channels
from depth_nodes.pipelines.descriptor_grid import GridDescriptors, descriptors_dhw
from depth_nodes.pipelines.keypoint_tracking import DescriptorPCA, KeypointTracker, TrackerConfig, TrackResult

__all__ = ["TrackerInputError", "TrackedKeypoints", "DescriptorTrackingPipeline", "keypoints_3d", "draw_keypoints",
           "descriptor_window"]


class TrackerInputError(ValueError):
    """A frame that cannot be processed (depth or camera_info inconsistent with the image)."""


@dataclass
class TrackedKeypoints:
    """``track`` in network pixels; ``pixels`` ``(K, 2)`` camera ``u, v`` (NaN lost); ``xyz`` ``(K, 3)``
    metres in the camera's optical frame (NaN without depth); ``features`` the ``(D, h_r, w_r)``
    descriptor window (for the colour view): a view into the network's output, not a copy, or the
    :class:`GridDescriptors` of a model with ``output_stride`` > 1; ``letterbox`` where the image
    sits in the input."""

    track: TrackResult
    pixels: np.ndarray
    xyz: np.ndarray
    features: np.ndarray | GridDescriptors
    timings: dict = field(default_factory=dict)
    letterbox: Letterbox | None = None


def descriptor_window(output: np.ndarray, letterbox: Letterbox, stride: int = 1) -> np.ndarray | GridDescriptors:
    """The image's window of a descriptor network's output: ``crop_output`` of a full-resolution
    ``(1, D, H, W)`` map (a view), or, with ``stride`` ``s > 1``, :class:`GridDescriptors` over the
    ``(1, D, H/s, W/s)`` grid (nothing interpolated yet). Raises :class:`TrackerInputError` when
    the output's size is not the input's divided by ``s``."""
    if stride <= 1:
        return crop_output(output, letterbox)
    grid = descriptors_dhw(output)
    expect = (letterbox.net_height // stride, letterbox.net_width // stride)
    if grid.shape[1:] != expect or expect[0] * stride != letterbox.net_height or expect[1] * stride != letterbox.net_width:
        raise TrackerInputError(f"model output of shape {np.shape(output)} is not the {letterbox.net_height}x"
                                f"{letterbox.net_width} input at stride {stride} (output.stride)")
    return GridDescriptors(grid, stride, letterbox.left, letterbox.top, letterbox.resized_height,
                           letterbox.resized_width)


def keypoints_3d(pixels: np.ndarray, depth: np.ndarray | None, camera: PinholeCamera | None) -> np.ndarray:
    """``(K, 2)`` camera pixels -> ``(K, 3)`` points ``z K^-1 [u, v, 1]`` with ``z`` the depth at the
    nearest pixel; NaN where lost, outside the image, without depth, or without a camera."""
    k = len(pixels)
    out = np.full((k, 3), np.nan, np.float32)
    if depth is None or camera is None:
        return out
    if not camera.matches(depth.shape[1], depth.shape[0]):
        raise TrackerInputError(f"depth image is {depth.shape[1]}x{depth.shape[0]} but camera_info is "
                                f"{camera.width}x{camera.height}")
    ok = np.isfinite(pixels).all(axis=1)
    ui = np.rint(np.where(ok, pixels[:, 0], -1)).astype(np.int64)
    vi = np.rint(np.where(ok, pixels[:, 1], -1)).astype(np.int64)
    ok &= (ui >= 0) & (ui < depth.shape[1]) & (vi >= 0) & (vi < depth.shape[0])
    z = np.full(k, np.nan, np.float32)
    z[ok] = depth[vi[ok], ui[ok]]
    ok &= np.isfinite(z) & (z > 0)
    out[ok, 0] = (pixels[ok, 0] - camera.cx) / camera.fx * z[ok]
    out[ok, 1] = (pixels[ok, 1] - camera.cy) / camera.fy * z[ok]
    out[ok, 2] = z[ok]
    return out


def draw_keypoints(image_rgb: np.ndarray, pixels: np.ndarray, ids: np.ndarray, names: list[str] | None = None,
                   radius: int = 5) -> np.ndarray:
    """Overlay ``(H, W, 3)`` uint8 RGB: a circle and the id (or name) at every tracked keypoint."""
    out = np.ascontiguousarray(image_rgb).copy()
    for i, (p, kid) in enumerate(zip(pixels, ids)):
        if not np.isfinite(p).all():
            continue
        hue = int(kid) * 47 % 180
        colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
        c = (int(round(p[0])), int(round(p[1])))
        cv2.circle(out, c, radius, colour, 2, cv2.LINE_AA)
        label = names[i] if names else str(int(kid))
        cv2.putText(out, label, (c[0] + radius + 2, c[1] - radius), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1,
                    cv2.LINE_AA)
    return out


class DescriptorTrackingPipeline:
    """See module docstring."""

    def __init__(self, backend, desc: ModelDescription, references: np.ndarray, config: TrackerConfig | None = None):
        if desc.output_kind != "descriptors":
            raise ValueError(f"{desc.source or desc.name}: output kind is {desc.output_kind}, not descriptors")
        self.backend, self.desc = backend, desc
        self.tracker = KeypointTracker(references, config)
        self.pca = DescriptorPCA()
        self._input = None

    @property
    def config(self) -> TrackerConfig:
        return self.tracker.config

    def process(self, image: np.ndarray, encoding: str, *, depth: np.ndarray | None = None,
                camera: PinholeCamera | None = None) -> TrackedKeypoints:
        t0 = time.perf_counter()
        x, lb = preprocess(image, encoding, self.desc, out=self._input)
        self._input = x
        t1 = time.perf_counter()
        outputs = self.backend.infer({self.desc.input_name: x})
        if self.desc.output_name not in outputs:
            raise TrackerInputError(f"model has no output {self.desc.output_name!r} (outputs: {sorted(outputs)})")
        t2 = time.perf_counter()
        window = descriptor_window(outputs[self.desc.output_name], lb, self.desc.output_stride)
        if len(window.shape) != 3 or window.shape[0] != self.tracker.references.shape[1]:
            raise TrackerInputError(f"model output has {window.shape[0] if len(window.shape) == 3 else 1} channels, "
                                    f"the reference descriptors {self.tracker.references.shape[1]}")
        features = window if window.dtype == np.float32 else window.astype(np.float32)  # a view: no 60 MB copy
        track = self.tracker.update(features)  # a grid: coarse to fine where it searches the whole image
        pixels = np.empty_like(track.pixels)
        pixels[:, 0] = (track.pixels[:, 0] + 0.5) / lb.scale_x - 0.5
        pixels[:, 1] = (track.pixels[:, 1] + 0.5) / lb.scale_y - 0.5
        xyz = keypoints_3d(pixels, depth, camera)
        t3 = time.perf_counter()
        return TrackedKeypoints(track, pixels, xyz, features,
                                {"preprocess": t1 - t0, "inference": t2 - t1, "tracking": t3 - t2}, lb)

    #: the colour view of a descriptor window with more pixels than this is projected on a grid of
    #: every ``step``-th row and column (the pixel in the middle of each ``step x step`` block), with
    #: ``step`` chosen so that the grid has at most ``PREVIEW_GRID_PIXELS`` pixels, and scaled back
    #: linearly: projecting every pixel reads the whole map (~80 MB for D = 64 at 640x480, memory
    #: bound, 2.5 ms); the grid reads 1/step of its rows (0.5 ms). For a zero-shot backbone
    #: exported at full resolution (``strided=False``) the map is its stride-8 grid interpolated,
    #: so an 8-pixel grid (what 640x480 gets) loses nothing of it. The keypoints are unaffected.
    PREVIEW_FULL_PIXELS = 100_000
    PREVIEW_GRID_PIXELS = 5_000

    @classmethod
    def preview_step(cls, height: int, width: int) -> int:
        """Grid step of the colour view: 1 up to ``PREVIEW_FULL_PIXELS`` pixels, else
        ``ceil(sqrt(height * width / PREVIEW_GRID_PIXELS))``."""
        pixels = height * width
        return 1 if pixels <= cls.PREVIEW_FULL_PIXELS else int(np.ceil(np.sqrt(pixels / cls.PREVIEW_GRID_PIXELS)))

    def descriptor_image(self, features: np.ndarray, height: int, width: int) -> np.ndarray:
        """PCA colour view (RGB uint8) of ``features`` ``(D, h, w)`` at camera resolution ``height x
        width``: every pixel projected for small windows (nearest-neighbour scaling), a grid of every
        :meth:`preview_step`-th row and column for large ones (linear scaling)."""
        step = self.preview_step(features.shape[1], features.shape[2])
        if step > 1:  # the grid as one small contiguous array (a strided gather of 1/step of the rows)
            features = np.ascontiguousarray(features[:, step // 2::step, step // 2::step])
        rgb = self.pca.colorize(features)
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST if step == 1 else cv2.INTER_LINEAR)
        return rgb

    def descriptor_view(self, result: TrackedKeypoints, height: int, width: int) -> np.ndarray:
        """PCA colour view (RGB uint8, ``height x width``, the camera image's size) of a frame's
        descriptors: from the network's stride-``s`` grid when it outputs one (``features`` is
        :class:`GridDescriptors`), else :meth:`descriptor_image` of the full map.

        The full map is the grid interpolated bilinearly (``align_corners=False``) to the network's
        input size, and the view is affine in the descriptors, so projecting the grid (``D x 3`` per
        cell) and interpolating the colours the same way (``cv2.resize`` of the grid to the input
        size: network pixel ``x`` samples the grid at ``(x + 0.5) / s - 0.5``, as the network does)
        gives the view of the full map up to uint8 rounding and saturation; the image's window is
        then cut out and scaled to the camera size as :meth:`descriptor_image` does. It reads
        ``1/s^2`` of what the full map holds.
        """
        lb = result.letterbox
        grid = result.features
        if not isinstance(grid, GridDescriptors) or lb is None:
            return self.descriptor_image(result.features, height, width)
        rgb = self.pca.colorize(grid.grid)
        rgb = cv2.resize(rgb, (lb.net_width, lb.net_height), interpolation=cv2.INTER_LINEAR)
        rgb = rgb[lb.top:lb.top + lb.resized_height, lb.left:lb.left + lb.resized_width]
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(rgb)

    @staticmethod
    def rgb_of(image: np.ndarray, encoding: str) -> np.ndarray:
        img = to_channels(image, encoding, "RGB")
        return img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
