"""Synthetic rectified stereo scenes with exact ground truth (for tests, the demo and benchmarks).

The scene is a stack of fronto-parallel textured rectangles (planes ``Z = z_i``) seen by a
rectified pair: the left camera at the origin, the right camera at ``X = B``, both with the
intrinsics ``K``. Every pixel is ray-traced exactly: pixel ``(u, v)`` of a camera at ``X = c``
meets plane ``i`` at ``X = c + z_i (u - cx) / fx``, ``Y = z_i (v - cy) / fy``; the nearest
plane whose rectangle contains that point is visible. The texture is fixed to each plane (a
blurred random pattern in plane coordinates, sampled bilinearly), so the right image is a true
second view, occlusions included, and the left disparity is exactly ``fx * B / z``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_nodes.geometry.camera import PinholeCamera

__all__ = ["Plane", "StereoScene", "render_stereo", "default_scene"]


@dataclass(frozen=True)
class Plane:
    z: float
    x_range: tuple[float, float] = (-np.inf, np.inf)
    y_range: tuple[float, float] = (-np.inf, np.inf)


@dataclass
class StereoScene:
    left: np.ndarray  # (H, W, 3) uint8 RGB
    right: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32, left camera, metres
    left_camera: PinholeCamera
    right_camera: PinholeCamera
    planes: list[Plane] = field(default_factory=list)

    @property
    def disparity(self) -> np.ndarray:
        return (self.left_camera.fx * self.right_camera.baseline / self.depth).astype(np.float32)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    tex = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(tex, (0, 0), 0.8)


def render_stereo(width: int, height: int, fx: float, baseline: float, planes: list[Plane], seed: int = 0,
                  texel_px: float = 1.5) -> StereoScene:
    """Render a rectified stereo pair of ``planes`` (see module docstring).

    Args:
        width, height: image size; ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``, ``fy = fx``.
        fx: focal length (pixels). baseline: metres (> 0).
        planes: fronto-parallel rectangles; the farthest should be unbounded (background).
        texel_px: texture cell size in pixels at the plane's depth (left view).
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    K = np.array([[fx, 0.0, cx], [0.0, fx, cy], [0.0, 0.0, 1.0]])
    P_left = np.hstack([K, np.zeros((3, 1))])
    P_right = P_left.copy()
    P_right[0, 3] = -fx * baseline
    left_cam = PinholeCamera(width, height, K, P=P_left, frame_id="left_optical_frame")
    right_cam = PinholeCamera(width, height, K, P=P_right, frame_id="right_optical_frame")
    rng = np.random.default_rng(seed)
    order = sorted(range(len(planes)), key=lambda i: planes[i].z)
    textures = []
    for p in planes:
        cell = texel_px * p.z / fx  # metres per texel
        # cover both views: half-width of the view at z plus the baseline
        half = max((width / 2 + 2) * p.z / fx + baseline, (height / 2 + 2) * p.z / fx)
        n = int(np.ceil(2 * half / cell)) + 4
        textures.append((_texture(rng, n), cell, half))
    u = np.arange(width, dtype=np.float64)[None, :]
    v = np.arange(height, dtype=np.float64)[:, None]

    def view(cam_x: float) -> tuple[np.ndarray, np.ndarray]:
        img = np.zeros((height, width, 3), dtype=np.uint8)
        depth = np.full((height, width), np.nan, dtype=np.float32)
        free = np.ones((height, width), dtype=bool)
        for i in order:
            p = planes[i]
            X = cam_x + p.z * (u - cx) / fx + 0 * v
            Y = p.z * (v - cy) / fx + 0 * u
            inside = free & (X >= p.x_range[0]) & (X <= p.x_range[1]) & (Y >= p.y_range[0]) & (Y <= p.y_range[1])
            if not inside.any():
                continue
            tex, cell, half = textures[i]
            # texel centres at (k + 0.5) * cell - half  ->  map coordinate k = (X + half)/cell - 0.5
            map_x = ((X + half) / cell - 0.5).astype(np.float32)
            map_y = ((Y + half) / cell - 0.5).astype(np.float32)
            sampled = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            img[inside] = sampled[inside]
            depth[inside] = p.z
            free &= ~inside
        return img, depth

    left, depth = view(0.0)
    right, _ = view(baseline)
    return StereoScene(left, right, depth, left_cam, right_cam, list(planes))


def default_scene(width: int = 640, height: int = 480, seed: int = 0) -> StereoScene:
    """Background wall at 4 m, a box face at 2 m and a small panel at 1.2 m; fx scales with width."""
    fx = 0.9 * width
    planes = [
        Plane(4.0),
        Plane(2.0, (-0.6, 0.3), (-0.5, 0.4)),
        Plane(1.2, (0.15, 0.45), (-0.1, 0.2)),
    ]
    return render_stereo(width, height, fx, 0.12, planes, seed=seed)
