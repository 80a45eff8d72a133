"""Object masks from geometry: the table plane by RANSAC, objects = points above it in the workspace.

No simulator labels: a pixel is *object* when its back-projected point ``X_w`` (world / fixed
frame) lies

    min_height <= n . X_w + d <= max_height     and     |X_w - c|_plane <= workspace_radius

with the table plane ``n . X + d = 0`` (``|n| = 1``, ``n`` pointing towards the cameras), and ``c``
the workspace centre on the plane (the median of the above-plane points unless given);
``|.|_plane`` is the distance measured along the plane. Everything else with depth is *background*.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import pixel_grid, valid_depth

__all__ = ["Plane", "backproject_world", "fit_plane_ransac", "object_mask", "PlaneError"]


class PlaneError(ValueError):
    """No table plane could be found (too few points, no consensus)."""


@dataclass(frozen=True)
class Plane:
    """``n . X + d = 0``; ``normal`` (3,) unit, ``offset`` d. ``height(X) = n . X + d``."""

    normal: np.ndarray
    offset: float

    def height(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) @ self.normal + self.offset

    @classmethod
    def parse(cls, text: str) -> "Plane":
        """``"a,b,c,d"`` -> the plane ``a x + b y + c z + d = 0`` (normalised)."""
        vals = [float(x) for x in str(text).split(",")]
        if len(vals) != 4 or not np.isfinite(vals).all() or np.linalg.norm(vals[:3]) == 0:
            raise ValueError(f"expected a,b,c,d with a non-zero normal, got {text!r}")
        n = np.array(vals[:3])
        s = np.linalg.norm(n)
        return cls(n / s, vals[3] / s)


def backproject_world(depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(points (M, 3) world, flat indices (M,))`` of the pixels with depth: ``X_w = T (z K^-1 [u v 1])``."""
    h, w = depth.shape
    idx = np.flatnonzero(valid_depth(depth).reshape(-1))
    uv = pixel_grid(h, w)[idx]
    rays = np.concatenate([uv, np.ones((idx.size, 1))], 1) @ np.linalg.inv(np.asarray(K, np.float64)).T
    X = rays * depth.reshape(-1)[idx, None].astype(np.float64)
    T = np.asarray(T_world_cam, np.float64)
    return X @ T[:3, :3].T + T[:3, 3], idx


def fit_plane_ransac(points: np.ndarray, *, threshold: float = 0.005, iterations: int = 300,
                     seed: int = 0, up_hint: np.ndarray | None = None) -> Plane:
    """The plane with the most inliers (``|n . X + d| <= threshold``), refined by least squares.

    ``points``: ``(N, 3)``. The normal is oriented so that ``up_hint`` (e.g. a camera centre) has a
    positive height. Raises :class:`PlaneError` with fewer than 3 points.
    """
    pts = np.asarray(points, np.float64)
    if pts.shape[0] < 3:
        raise PlaneError(f"{pts.shape[0]} points: need at least 3 to fit the table plane")
    rng = np.random.default_rng(seed)
    best, best_n = None, -1
    for _ in range(iterations):
        s = pts[rng.choice(pts.shape[0], 3, replace=False)]
        n = np.cross(s[1] - s[0], s[2] - s[0])
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n /= norm
        d = -n @ s[0]
        inl = np.abs(pts @ n + d) <= threshold
        k = int(inl.sum())
        if k > best_n:
            best, best_n = inl, k
    if best is None or best_n < 3:
        raise PlaneError("no plane consensus among the points")
    p = pts[best]
    c = p.mean(axis=0)
    n = np.linalg.svd(p - c, full_matrices=False)[2][-1]
    d = -n @ c
    if up_hint is not None and np.asarray(up_hint) @ n + d < 0:
        n, d = -n, -d
    return Plane(n, float(d))


def object_mask(depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, plane: Plane, *,
                centre: np.ndarray | None, min_height: float = 0.008, max_height: float = 0.35,
                workspace_radius: float = 0.3) -> np.ndarray:
    """``(H, W)`` bool object mask of one frame (module docstring). ``centre=None``: no radius test."""
    h, w = depth.shape
    X, idx = backproject_world(depth, K, T_world_cam)
    hgt = plane.height(X)
    keep = (hgt >= min_height) & (hgt <= max_height)
    if centre is not None:
        off = X - np.asarray(centre, np.float64)
        off -= np.outer(off @ plane.normal, plane.normal)
        keep &= np.linalg.norm(off, axis=1) <= workspace_radius
    mask = np.zeros(h * w, dtype=bool)
    mask[idx[keep]] = True
    return mask.reshape(h, w)


def workspace_centre(points: np.ndarray, plane: Plane, min_height: float = 0.008,
                     max_height: float = 0.35) -> np.ndarray | None:
    """Median of the points between ``min_height`` and ``max_height`` above ``plane``, dropped onto it."""
    hgt = plane.height(points)
    above = points[(hgt >= min_height) & (hgt <= max_height)]
    if above.shape[0] == 0:
        return None
    c = np.median(above, axis=0)
    return c - (plane.height(c[None])[0]) * plane.normal
