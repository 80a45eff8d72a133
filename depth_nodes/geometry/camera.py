"""Pinhole camera model shared by the nodes and the training tools (numpy, ROS-free).

Conventions (sensor_msgs/CameraInfo, REP 103/104):

* Pixel ``(u, v)`` with integer values at pixel centres; ``u`` right, ``v`` down.
* Optical frame: ``x`` right, ``y`` down, ``z`` forward.
* Projection ``[u, v, 1]^T ~ K [x/z, y/z, 1]^T``; back-projection ``X = z * K^-1 [u, v, 1]^T``.
* For a rectified stereo pair the right camera's projection matrix holds the baseline:
  ``P_right[0, 3] = Tx = -fx' * B``, hence ``B = -Tx / fx'``.
* For rectified images (R, P given and non-trivial), the model uses the *rectified* intrinsics
  ``K' = P[:, :3]``: this is what ``image_rect`` topics are expressed in.

Resizing and cropping (``resized``, ``cropped``, binning/ROI from CameraInfo) follow the
pixel-centre convention: scaling an image by ``s_x = W'/W`` maps ``u' + 0.5 = s_x (u + 0.5)``,
so ``fx' = s_x fx`` and ``cx' = s_x (cx + 0.5) - 0.5``; cropping at ``(x0, y0)`` maps
``cx' = cx - x0``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CameraModelError", "PinholeCamera", "CameraModelCache"]


class CameraModelError(ValueError):
    """Inconsistent camera parameters; the message names the field."""


def _field(msg, *names):
    for name in names:
        if hasattr(msg, name):
            return getattr(msg, name)
    raise CameraModelError(f"{names[0]}: camera_info has no field {names[0]!r}")


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """An undistorted (rectified) pinhole camera.

    Attributes:
        width, height: image size in pixels.
        K: ``(3, 3)`` float64 intrinsic matrix of the (rectified) image.
        D: distortion coefficients of the raw image (kept for reference; rectified images have none).
        R: ``(3, 3)`` rectification rotation.
        P: ``(3, 4)`` projection matrix; ``P[0, 3] = -fx * B`` for the right camera of a stereo pair.
        distortion_model: e.g. ``"plumb_bob"``.
        frame_id: optical frame of the images.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray | None = None
    distortion_model: str = "plumb_bob"
    frame_id: str = ""

    def __post_init__(self):
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "R", np.asarray(self.R, dtype=np.float64).reshape(3, 3))
        P = self.P
        if P is None:
            P = np.hstack([K, np.zeros((3, 1))])
        object.__setattr__(self, "P", np.asarray(P, dtype=np.float64).reshape(3, 4))
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraModelError(f"width/height: invalid image size {self.width}x{self.height}")
        if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraModelError(f"K: focal lengths must be positive and finite, got fx={K[0, 0]}, fy={K[1, 1]}")
        object.__setattr__(self, "_rays_cache", None)
        object.__setattr__(self, "_planes_cache", None)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_camera_info(cls, msg, *, use_rectified: bool = True) -> "PinholeCamera":
        """Build from a sensor_msgs/CameraInfo-like object (rclpy, rosbags, ROS 1 field names).

        Binning and ROI are applied: the returned model describes the image that is actually
        published (ROI crop first, then binning), as image_geometry does.

        Args:
            use_rectified: take ``K' = P[:, :3]`` when ``P`` is set (the ``image_rect`` model);
                otherwise use ``K``.

        Raises:
            CameraModelError: K all zeros, wrong array sizes, zero image size.
        """
        width, height = int(_field(msg, "width")), int(_field(msg, "height"))
        K = np.asarray(_field(msg, "k", "K"), dtype=np.float64)
        if K.size != 9:
            raise CameraModelError(f"k: expected 9 values, got {K.size}")
        if not np.any(K):
            raise CameraModelError("k: camera_info intrinsic matrix K is all zeros (uncalibrated camera)")
        R = np.asarray(_field(msg, "r", "R"), dtype=np.float64)
        P = np.asarray(_field(msg, "p", "P"), dtype=np.float64)
        if R.size != 9:
            raise CameraModelError(f"r: expected 9 values, got {R.size}")
        if P.size != 12:
            raise CameraModelError(f"p: expected 12 values, got {P.size}")
        R = R.reshape(3, 3) if np.any(R) else np.eye(3)
        K = K.reshape(3, 3)
        P = P.reshape(3, 4) if np.any(P) else np.hstack([K, np.zeros((3, 1))])
        if use_rectified and np.any(P[:, :3]):
            K_used = P[:, :3].copy()
        else:
            K_used = K
        D = np.asarray(_field(msg, "d", "D"), dtype=np.float64)
        model = getattr(msg, "distortion_model", "plumb_bob") or "plumb_bob"
        header = getattr(msg, "header", None)
        frame_id = getattr(header, "frame_id", "") if header is not None else ""
        cam = cls(width, height, K_used, D, R, P, model, frame_id)
        roi = getattr(msg, "roi", None)
        if roi is not None and int(getattr(roi, "width", 0)) > 0 and int(getattr(roi, "height", 0)) > 0:
            cam = cam.cropped(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
        bx = max(1, int(getattr(msg, "binning_x", 0) or 1))
        by = max(1, int(getattr(msg, "binning_y", 0) or 1))
        if bx > 1 or by > 1:
            cam = cam.resized(cam.width // bx, cam.height // by)
        return cam

    # ------------------------------------------------------------------ parameters
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def Tx(self) -> float:
        """``P[0, 3]``: ``-fx * B`` for the right camera of a rectified pair, 0 for the left."""
        return float(self.P[0, 3])

    @property
    def baseline(self) -> float:
        """Stereo baseline ``B = -Tx / fx`` in metres (0 for a left/mono camera)."""
        return (-self.Tx / float(self.P[0, 0]) + 0.0) if self.P[0, 0] else 0.0  # + 0.0: no "-0"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    # ------------------------------------------------------------------ resize / crop
    def resized(self, width: int, height: int) -> "PinholeCamera":
        """The model of this image resized to ``width x height`` (pixel-centre convention)."""
        if width <= 0 or height <= 0:
            raise CameraModelError(f"width/height: invalid target size {width}x{height}")
        sx, sy = width / self.width, height / self.height
        S = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        return PinholeCamera(width, height, S @ self.K, self.D, self.R, S @ self.P,
                             self.distortion_model, self.frame_id)

    def cropped(self, x: int, y: int, width: int, height: int) -> "PinholeCamera":
        """The model of the sub-image ``[y:y+height, x:x+width]``."""
        if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > self.width or y + height > self.height:
            raise CameraModelError(
                f"roi: crop ({x}, {y}, {width}x{height}) does not fit the {self.width}x{self.height} image"
            )
        T = np.array([[1.0, 0.0, -x], [0.0, 1.0, -y], [0.0, 0.0, 1.0]])
        return PinholeCamera(width, height, T @ self.K, self.D, self.R, T @ self.P,
                             self.distortion_model, self.frame_id)

    # ------------------------------------------------------------------ rays and points
    def rays(self) -> np.ndarray:
        """Back-projection rays ``K^-1 [u, v, 1]^T`` for every pixel, ``(H, W, 3)`` float32, z = 1.

        Computed once per model and cached (read-only array).
        """
        cached = self._rays_cache
        if cached is None:
            u = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx
            v = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy
            skew = self.K[0, 1] / self.fx
            rays = np.empty((self.height, self.width, 3), dtype=np.float32)
            rays[..., 0] = u[None, :] - skew * v[:, None]
            rays[..., 1] = v[:, None]
            rays[..., 2] = 1.0
            rays.setflags(write=False)
            object.__setattr__(self, "_rays_cache", rays)
            cached = rays
        return cached

    def ray_planes(self) -> tuple[np.ndarray, np.ndarray]:
        """The x and y components of :meth:`rays` as two C-contiguous ``(H, W)`` float32 planes
        (``x = (u - cx)/fx - s (v - cy)/(fx fy)``, ``y = (v - cy)/fy``); cached, read-only."""
        cached = self._planes_cache
        if cached is None:
            rays = self.rays()
            cached = (np.ascontiguousarray(rays[..., 0]), np.ascontiguousarray(rays[..., 1]))
            for plane in cached:
                plane.setflags(write=False)
            object.__setattr__(self, "_planes_cache", cached)
        return cached

    def depth_to_points(self, depth: np.ndarray) -> np.ndarray:
        """Depth image ``(H, W)`` (metres, NaN invalid) -> points ``(H, W, 3)`` float32 in the optical frame.

        ``X(u, v) = depth(u, v) * K^-1 [u, v, 1]^T``; NaN depth gives NaN points.
        """
        depth = np.asarray(depth)
        if depth.shape != self.shape:
            raise CameraModelError(f"depth: image is {depth.shape[::-1]} but the camera is {self.width}x{self.height}")
        return self.rays() * depth.astype(np.float32, copy=False)[..., None]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(N, 3)`` in the optical frame -> pixel coordinates ``(N, 2)`` and depth ``z`` ``(N,)``.

        ``u = fx x/z + s y/z + cx``, ``v = fy y/z + cy``. Points with ``z <= 0`` get NaN pixels.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        z = pts[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn, yn = pts[:, 0] / z, pts[:, 1] / z
        uv = np.stack([self.fx * xn + self.K[0, 1] * yn + self.cx, self.fy * yn + self.cy], axis=1)
        uv[~(z > 0)] = np.nan
        return uv, z

    def matches(self, width: int, height: int) -> bool:
        return self.width == int(width) and self.height == int(height)


def _info_key(msg) -> tuple:
    """Everything :meth:`PinholeCamera.from_camera_info` reads, as a hashable key."""
    header = getattr(msg, "header", None)
    roi = getattr(msg, "roi", None)
    arrays = tuple(np.asarray(_field(msg, *names), dtype=np.float64).tobytes()
                   for names in (("k", "K"), ("d", "D"), ("r", "R"), ("p", "P")))
    roi_key = tuple(int(getattr(roi, f, 0)) for f in ("x_offset", "y_offset", "width", "height")) if roi else ()
    return (int(_field(msg, "width")), int(_field(msg, "height")), arrays,
            getattr(msg, "distortion_model", ""), getattr(header, "frame_id", "") if header else "",
            int(getattr(msg, "binning_x", 0) or 0), int(getattr(msg, "binning_y", 0) or 0), roi_key)


class CameraModelCache:
    """:meth:`PinholeCamera.from_camera_info` memoised on the message content.

    A node receives the same calibration with every frame; reusing the model keeps its cached
    back-projection rays (computing them costs milliseconds per 640x480 frame). Holds the
    ``maxsize`` most recently used models. Not thread-safe (one per consumer thread).
    """

    def __init__(self, maxsize: int = 8):
        self.maxsize = int(maxsize)
        self._models: OrderedDict[tuple, PinholeCamera] = OrderedDict()

    def get(self, msg, *, use_rectified: bool = True) -> PinholeCamera:
        key = (use_rectified, _info_key(msg))
        cam = self._models.get(key)
        if cam is None:
            cam = PinholeCamera.from_camera_info(msg, use_rectified=use_rectified)
            self._models[key] = cam
            while len(self._models) > self.maxsize:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(key)
        return cam
