"""Project the pixels of frame A into frame B and test them: inside, not occluded, static.

Conventions (:mod:`depth_nodes.geometry.camera`): pixel ``(u, v)`` has integer coordinates at pixel
centres; the flat index of pixel ``(u, v)`` in an ``H x W`` image is ``v * W + u``. Poses are
``T_world_camera`` (4, 4) of the optical frames (REP 103), depth is optical ``z`` in metres with
NaN (or ``<= 0``) for "no reading".

For a pixel ``p_a = (u, v)`` of A with depth ``z_a``:

    X_a = z_a K_a^-1 [u, v, 1]^T,      X_b = R_ba X_a + t_ba,  T_ba = T_wb^-1 T_wa
    [u_b, v_b] = (K_b X_b)[:2] / z_b,  z_b = X_b[2]

The projected point is then looked up in B at the *rounded* pixel ``round(u_b), round(v_b)``
(``floor(x + 0.5)``, the same rule everywhere, see :func:`round_pixels`) and classified:

* ``outside``: behind the camera or the rounded pixel is not in B;
* ``no_depth``: B has no reading there (nothing can be tested);
* ``match``: ``|d_b - z_b| <= tol(z_b)`` with ``tol(z) = abs_tol + rel_tol * z``;
* ``occluded``: ``d_b < z_b - tol``: something nearer hides the point in B (legitimate);
* ``violation``: ``d_b > z_b + tol``: B sees *through* where the point should be, which a static
  scene cannot do (the point moved away: a distractor, a moved object) - never a match, and the
  fraction of them is the pair's static-scene test (:func:`static_violation_fraction`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OUTSIDE", "NO_DEPTH", "MATCH", "OCCLUDED", "VIOLATION", "round_pixels", "pixel_grid",
           "project_pixels", "Correspondences", "find_correspondences", "static_violation_fraction"]

OUTSIDE, NO_DEPTH, MATCH, OCCLUDED, VIOLATION = 0, 1, 2, 3, 4


def round_pixels(uv: np.ndarray) -> np.ndarray:
    """Nearest pixel centre, ``floor(uv + 0.5)`` as int64 (never truncation: ``-0.4 -> 0``, ``2.5 -> 3``)."""
    return np.floor(np.asarray(uv, dtype=np.float64) + 0.5).astype(np.int64)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(H*W, 2)`` float64 ``(u, v)`` of every pixel in flat-index order (``v * W + u``)."""
    v, u = np.divmod(np.arange(height * width, dtype=np.int64), width)
    return np.stack([u, v], axis=1).astype(np.float64)


def project_pixels(uv_a: np.ndarray, z_a: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                   T_world_a: np.ndarray, T_world_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of A with depth -> ``(uv_b (N, 2) float64, z_b (N,) float64)`` in B (module formula).

    Args:
        uv_a: ``(N, 2)`` pixel coordinates in A; z_a: ``(N,)`` depth in metres.
        K_a, K_b: ``(3, 3)`` intrinsics (from camera_info, scaled to the image size used).
        T_world_a, T_world_b: ``(4, 4)`` camera poses.
    """
    uv_a = np.asarray(uv_a, dtype=np.float64)
    z_a = np.asarray(z_a, dtype=np.float64)
    ones = np.ones((uv_a.shape[0], 1))
    rays = np.concatenate([uv_a, ones], axis=1) @ np.linalg.inv(np.asarray(K_a, np.float64)).T
    X_a = rays * z_a[:, None]
    T_ba = np.linalg.inv(np.asarray(T_world_b, np.float64)) @ np.asarray(T_world_a, np.float64)
    X_b = X_a @ T_ba[:3, :3].T + T_ba[:3, 3]
    z_b = X_b[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = X_b @ np.asarray(K_b, np.float64).T
        uv_b = p[:, :2] / p[:, 2:3]
    return uv_b, z_b


@dataclass
class Correspondences:
    """Result of :func:`find_correspondences` for one ordered pair (A, B).

    Attributes:
        status: ``(H_a*W_a,)`` int8, one of OUTSIDE, NO_DEPTH, MATCH, OCCLUDED, VIOLATION per pixel
            of A (pixels of A without depth, or outside ``mask_a``, are NO_DEPTH / OUTSIDE).
        idx_a: ``(M,)`` int64 flat indices in A of the matches.
        uv_b: ``(M, 2)`` float64 exact projected coordinates in B of the matches.
        idx_b: ``(M,)`` int64 flat index in B of the rounded ``uv_b``.
        shape_b: ``(H_b, W_b)``.
    """

    status: np.ndarray
    idx_a: np.ndarray
    uv_b: np.ndarray
    idx_b: np.ndarray
    shape_b: tuple[int, int]

    @property
    def count(self) -> int:
        return int(self.idx_a.shape[0])

    def counts(self) -> dict[str, int]:
        names = ("outside", "no_depth", "match", "occluded", "violation")
        return {n: int(np.count_nonzero(self.status == i)) for i, n in enumerate(names)}


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """``isfinite(depth) & depth > 0``."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0)


def find_correspondences(depth_a: np.ndarray, depth_b: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                         T_world_a: np.ndarray, T_world_b: np.ndarray, *, mask_a: np.ndarray | None = None,
                         abs_tol: float = 0.004, rel_tol: float = 0.01) -> Correspondences:
    """Classify every pixel of A (module docstring) and return the matches.

    Args:
        depth_a, depth_b: ``(H_a, W_a)``, ``(H_b, W_b)`` metres, NaN/0 = no reading.
        K_a, K_b: intrinsics of A and B (camera_info, at these image sizes) - never a constant.
        mask_a: optional ``(H_a, W_a)`` bool: only these pixels of A are considered.
        abs_tol, rel_tol: occlusion tolerance ``tol(z) = abs_tol + rel_tol * z`` (metres).
    """
    ha, wa = depth_a.shape
    hb, wb = depth_b.shape
    status = np.full(ha * wa, NO_DEPTH, dtype=np.int8)
    ok = valid_depth(depth_a).reshape(-1)
    if mask_a is not None:
        status[~np.asarray(mask_a, bool).reshape(-1)] = OUTSIDE
        ok &= np.asarray(mask_a, bool).reshape(-1)
    idx = np.flatnonzero(ok)
    uv = pixel_grid(ha, wa)[idx]
    uv_b, z_b = project_pixels(uv, depth_a.reshape(-1)[idx], K_a, K_b, T_world_a, T_world_b)
    r = round_pixels(np.nan_to_num(uv_b, nan=-1e9, posinf=-1e9, neginf=-1e9).clip(-1e9, 1e9))
    inside = (z_b > 0) & (r[:, 0] >= 0) & (r[:, 0] < wb) & (r[:, 1] >= 0) & (r[:, 1] < hb)
    st = np.full(idx.shape[0], OUTSIDE, dtype=np.int8)
    flat_b = np.where(inside, r[:, 1] * wb + r[:, 0], 0)
    d_b = depth_b.reshape(-1)[flat_b].astype(np.float64)
    has = inside & valid_depth(d_b)
    st[inside & ~has] = NO_DEPTH
    tol = abs_tol + rel_tol * np.abs(z_b)
    with np.errstate(invalid="ignore"):
        diff = d_b - z_b
    st[has & (np.abs(diff) <= tol)] = MATCH
    st[has & (diff < -tol)] = OCCLUDED
    st[has & (diff > tol)] = VIOLATION
    status[idx] = st
    m = st == MATCH
    return Correspondences(status, idx[m], uv_b[m], flat_b[m], (hb, wb))


def static_violation_fraction(c: Correspondences, mask_a: np.ndarray | None = None) -> float:
    """``violations / (matches + violations)`` over the pixels of A (within ``mask_a`` if given).

    In a static scene only pixels at depth edges (rounding onto the far side of a silhouette) are
    violations, a small fraction; a moving object makes it large.
    """
    st = c.status if mask_a is None else c.status[np.asarray(mask_a, bool).reshape(-1)]
    v, m = int(np.count_nonzero(st == VIOLATION)), int(np.count_nonzero(st == MATCH))
    return v / max(1, v + m)
