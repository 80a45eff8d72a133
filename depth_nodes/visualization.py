"""Colour previews of depth and disparity (numpy/OpenCV, ROS-free).

Used for the ``depth/colorized`` preview topics, the demo's PNGs and training logs.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["colorize"]


def colorize(values: np.ndarray, vmin: float | None = None, vmax: float | None = None, *,
             inverse: bool = False, colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """Map an ``(H, W)`` float image to ``(H, W, 3)`` uint8 **RGB** with a colormap.

    ``t = clip((x - vmin) / (vmax - vmin), 0, 1)`` (``t = 1 - t`` when ``inverse``, so near is warm
    for depth), then the OpenCV colormap; NaN/inf pixels are black. ``vmin``/``vmax`` default to
    the 2nd/98th percentiles of the finite values.
    """
    x = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape + (3,), np.uint8)
    lo = float(np.percentile(x[finite], 2)) if vmin is None else float(vmin)
    hi = float(np.percentile(x[finite], 98)) if vmax is None else float(vmax)
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    t = np.clip((np.where(finite, x, lo) - lo) * scale, 0.0, 1.0)
    if inverse:
        t = 1.0 - t
    bgr = cv2.applyColorMap((t * 255.0 + 0.5).astype(np.uint8), colormap)
    bgr[~finite] = 0
    return bgr[:, :, ::-1].copy()
