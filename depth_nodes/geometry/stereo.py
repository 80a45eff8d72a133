"""Rectified stereo geometry: disparity <-> depth (numpy, ROS-free).

For a rectified pair with focal length ``f`` (pixels, horizontal) and baseline ``B`` (metres),
a point at depth ``z`` appears at ``u_l`` in the left image and ``u_r = u_l - d`` in the right,
with disparity

    d = f * B / z + doffs        and so        z = f * B / (d - doffs)

where ``doffs = cx_left - cx_right`` is zero unless the two rectified principal points differ
(stereo_image_proc folds it into the disparity it publishes). Invalid inputs map to NaN:
``d - doffs <= 0`` or non-finite disparity, ``z <= 0`` or non-finite depth.
"""
from __future__ import annotations

import numpy as np

__all__ = ["disparity_to_depth", "depth_to_disparity", "StereoGeometryError"]


class StereoGeometryError(ValueError):
    """Impossible stereo parameters (zero/negative focal length or baseline)."""


def _check(fx: float, baseline: float) -> None:
    if not (np.isfinite(fx) and fx > 0):
        raise StereoGeometryError(f"fx: focal length must be positive, got {fx}")
    if not (np.isfinite(baseline) and baseline > 0):
        raise StereoGeometryError(
            f"baseline: must be positive, got {baseline} m (right camera_info P[0,3] = -fx*B must be negative)"
        )


def disparity_to_depth(disparity: np.ndarray, fx: float, baseline: float, doffs: float = 0.0) -> np.ndarray:
    """Disparity (pixels, any shape) -> depth ``z = fx*B / (d - doffs)`` (metres, float32, NaN invalid)."""
    _check(fx, baseline)
    d = np.asarray(disparity, dtype=np.float32) - np.float32(doffs)
    out = np.full(d.shape, np.nan, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    np.divide(np.float32(fx * baseline), d, out=out, where=valid)
    return out


def depth_to_disparity(depth: np.ndarray, fx: float, baseline: float, doffs: float = 0.0) -> np.ndarray:
    """Depth (metres, any shape) -> disparity ``d = fx*B / z + doffs`` (pixels, float32, NaN invalid)."""
    _check(fx, baseline)
    z = np.asarray(depth, dtype=np.float32)
    out = np.full(z.shape, np.nan, dtype=np.float32)
    valid = np.isfinite(z) & (z > 0)
    np.divide(np.float32(fx * baseline), z, out=out, where=valid)
    out[valid] += np.float32(doffs)
    return out
