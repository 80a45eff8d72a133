"""Colour previews of depth and disparity (numpy/OpenCV, ROS-free).

Used for the ``depth/colorized`` preview topics, the demo's PNGs and training logs.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["colorize"]


def colorize(values: np.ndarray, vmin: float | None = None, vmax: float | None = None, *,
             inverse: bool = False, colormap: int = cv2.COLORMAP_TURBO, bgr: bool = False) -> np.ndarray:
    """Map an ``(H, W)`` float image to ``(H, W, 3)`` uint8 **RGB** (``bgr=True``: BGR) with a colormap.

    ``t = clip((x - vmin) / (vmax - vmin), 0, 1)`` (``t = 1 - t`` when ``inverse``, so near is warm
    for depth), index ``round(255 t)`` into the OpenCV colormap; NaN/inf pixels are black.
    ``vmin``/``vmax`` default to the 2nd/98th percentiles of the finite values; ``vmax <= vmin``
    gives ``t = 0`` everywhere.

    One pass per step at camera resolution (``cv2.addWeighted`` computes ``255 t`` and saturates
    to uint8, ``cv2.copyTo`` blacks out the invalid pixels): about 1 ms at 640x480, a quarter
    of the numpy version it replaced, because the mono node colours every frame.
    """
    x = np.asarray(values, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"colorize expects an (H, W) image, got shape {x.shape}")
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape + (3,), np.uint8)
    lo = float(np.percentile(x[finite], 2)) if vmin is None else float(vmin)
    hi = float(np.percentile(x[finite], 98)) if vmax is None else float(vmax)
    # 255 t = gain * x + offset, saturated to [0, 255] by the uint8 conversion
    gain = 255.0 / (hi - lo) if hi > lo else 0.0
    offset = -lo * gain
    if inverse:
        gain, offset = -gain, 255.0 - offset
    index = cv2.addWeighted(x, gain, x, 0.0, offset, dtype=cv2.CV_8U)
    colours = cv2.applyColorMap(index, colormap)  # BGR
    if not finite.all():
        colours = cv2.copyTo(colours, finite.view(np.uint8))  # zeros where the mask is 0
    return colours if bgr else cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
