"""Stereo depth pipeline (ROS-free): rectified pair -> disparity, depth, organized cloud.

    preprocess (checks, colour)  ->  matcher.compute (backend)  ->  z = f*B/d, cloud

The node hands in decoded numpy images and camera models; everything here is testable and
benchmarkable without ROS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from depth_nodes.backends.base import StereoMatcher
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.geometry.pointcloud import organized_points
from depth_nodes.geometry.stereo import disparity_to_depth

__all__ = ["StereoInputError", "StereoFrame", "StereoResult", "StereoPipeline"]


class StereoInputError(ValueError):
    """A stereo frame that cannot be processed (sizes, calibration); the message says why."""


@dataclass
class StereoFrame:
    """One synchronised, rectified stereo frame.

    ``left``/``right``: ``(H, W)`` uint8/uint16 grey or ``(H, W, 3)`` uint8 RGB.
    ``left_camera``/``right_camera``: rectified models (``right_camera.P[0, 3] = -fx * B``).
    """

    left: np.ndarray
    right: np.ndarray
    left_camera: PinholeCamera
    right_camera: PinholeCamera


@dataclass
class StereoResult:
    disparity: np.ndarray  # (H, W) float32 pixels, NaN invalid
    depth: np.ndarray  # (H, W) float32 metres, NaN invalid
    cloud: np.ndarray | None  # (H', W', 3|4) float32, see geometry.pointcloud; None if not requested
    fx: float
    baseline: float
    doffs: float
    min_disparity: float
    max_disparity: float
    # wall time of each stage in seconds: "match" (the matcher call alone), "depth" (z = f*B/d and
    # the range filter), "cloud" (0 when no cloud was built)
    timings: dict = field(default_factory=dict)


@dataclass
class StereoPipeline:
    matcher: StereoMatcher
    min_depth: float = 0.0
    max_depth: float = float("inf")
    decimation: int = 1
    colorize_cloud: bool = True
    focal_tolerance: float = 1e-3

    def check(self, frame: StereoFrame) -> tuple[float, float, float]:
        """Validate a frame; return ``(fx, baseline, doffs)``.

        Raises :class:`StereoInputError` for: left/right size mismatch, camera_info size not
        matching its image, zero/negative baseline, left/right focal lengths that differ (not a
        rectified pair).
        """
        lh, lw = frame.left.shape[:2]
        rh, rw = frame.right.shape[:2]
        if (lh, lw) != (rh, rw):
            raise StereoInputError(f"left image is {lw}x{lh} but right image is {rw}x{rh}")
        for side, cam, (h, w) in (("left", frame.left_camera, (lh, lw)), ("right", frame.right_camera, (rh, rw))):
            if not cam.matches(w, h):
                raise StereoInputError(
                    f"{side} camera_info is {cam.width}x{cam.height} but its image is {w}x{h}")
        fx = frame.left_camera.fx
        if abs(frame.right_camera.fx - fx) > self.focal_tolerance * fx:
            raise StereoInputError(
                f"left fx={fx:.3f} and right fx={frame.right_camera.fx:.3f} differ: images are not a rectified pair")
        baseline = frame.right_camera.baseline
        if not baseline > 0:
            raise StereoInputError(
                f"baseline is {baseline:.4g} m: right camera_info P[0,3] (Tx = -fx*B) must be negative "
                f"(got Tx={frame.right_camera.Tx:.4g})")
        doffs = frame.left_camera.cx - frame.right_camera.cx
        return fx, baseline, doffs

    def cloud_shape(self, frame: StereoFrame) -> tuple[int, int, int]:
        """Shape of the cloud :meth:`process` builds for ``frame`` (for a ``cloud_out`` buffer)."""
        h, w = frame.left.shape[:2]
        n = int(self.decimation)
        return (-(-h // n), -(-w // n), 4 if self._cloud_rgb(frame) is not None else 3)

    def _cloud_rgb(self, frame: StereoFrame) -> np.ndarray | None:
        if not self.colorize_cloud:
            return None
        if frame.left.ndim == 3:
            return frame.left
        if frame.left.dtype == np.uint8:
            return np.broadcast_to(frame.left[:, :, None], frame.left.shape + (3,))
        return None

    def process(self, frame: StereoFrame, with_cloud: bool = True,
                cloud_out: np.ndarray | None = None) -> StereoResult:
        """Match, convert to depth (``z = f*B/d``, NaN outside the inclusive range
        ``[min_depth, max_depth]``, bounds rounded to float32) and, if ``with_cloud``, build
        the organized cloud (``cloud`` is ``None`` otherwise), into ``cloud_out`` when given
        (shape :meth:`cloud_shape`)."""
        fx, baseline, doffs = self.check(frame)
        matcher = self.matcher  # read once: the node may swap it between frames
        t0 = time.perf_counter()
        disparity = matcher.compute(frame.left, frame.right)
        t1 = time.perf_counter()
        depth = disparity_to_depth(disparity, fx, baseline, doffs)
        if self.min_depth > 0 or np.isfinite(self.max_depth):
            # inclusive range, compared in the published precision: min_depth <= z <= max_depth
            # is kept, with both bounds rounded to float32 like z
            lo_z, hi_z = np.float32(self.min_depth), np.float32(self.max_depth)
            depth[~((depth >= lo_z) & (depth <= hi_z))] = np.nan
        t2 = time.perf_counter()
        lo, hi = matcher.disparity_bounds
        cloud = None
        if with_cloud:
            cloud = organized_points(frame.left_camera, depth, self._cloud_rgb(frame), decimation=self.decimation,
                                     out=cloud_out)
        t3 = time.perf_counter()
        return StereoResult(disparity, depth, cloud, fx, baseline, doffs, lo, hi,
                            timings={"match": t1 - t0, "depth": t2 - t1, "cloud": t3 - t2})
