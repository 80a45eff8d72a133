"""Colour maps for depth previews, in pure NumPy (no matplotlib, no OpenCV).

``TURBO`` is Google's Turbo colormap (Mikhailov 2019): its colours at 17 evenly spaced points
(0, 1/16, ..., 1), linearly interpolated into a 256x3 uint8 lookup table; every entry is within
7/255 of the full 256-entry table (checked against OpenCV's ``COLORMAP_TURBO`` in the tests).
Depth is shown as inverse depth (near = red, far = blue), the convention of Monodepth2 / MiDaS
previews, scaled between robust percentiles.
"""
from __future__ import annotations

import numpy as np

# Turbo at x = 0, 1/16, ..., 1 (RGB, 0..255)
_TURBO_ANCHORS = np.array(
    [
        [48, 18, 59], [64, 64, 162], [70, 107, 227], [66, 148, 255], [40, 188, 235], [24, 221, 194],
        [50, 242, 152], [109, 254, 98], [164, 252, 60], [203, 237, 52], [236, 209, 58], [253, 174, 53],
        [251, 129, 34], [236, 83, 15], [210, 49, 5], [172, 23, 1], [122, 4, 3],
    ],
    dtype=np.float64,
)


def turbo_lut(n: int = 256) -> np.ndarray:
    """Turbo colormap sampled at ``n`` points of [0, 1]: (n, 3) uint8 RGB."""
    x = np.linspace(0.0, 1.0, n)
    xp = np.linspace(0.0, 1.0, len(_TURBO_ANCHORS))
    rgb = np.stack([np.interp(x, xp, _TURBO_ANCHORS[:, c]) for c in range(3)], axis=1)
    return np.round(rgb).astype(np.uint8)


TURBO = turbo_lut()


def apply_colormap(values: np.ndarray, lut: np.ndarray = TURBO) -> np.ndarray:
    """Map values in [0, 1] (any shape S; NaN allowed) to colours: (*S, 3) uint8.

    NaN maps to black; values outside [0, 1] are clipped.
    """
    v = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(v)
    idx = np.zeros(v.shape, dtype=np.intp)
    idx[finite] = np.clip(np.rint(v[finite] * (len(lut) - 1)), 0, len(lut) - 1).astype(np.intp)
    out = lut[idx]
    out[~finite] = 0
    return out


def colorize_depth(
    depth: np.ndarray,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    inverse: bool = True,
    percentiles: tuple[float, float] = (5.0, 95.0),
    lut: np.ndarray = TURBO,
) -> np.ndarray:
    """Colourise a depth map for a preview: (H, W) float -> (H, W, 3) uint8 RGB.

    Invalid pixels (NaN, inf, depth <= 0) are black. With ``inverse`` (default) the map shows
    disparity-like 1/depth, so near objects are red and far ones blue. The range is
    ``[vmin, vmax]`` (in the displayed quantity: depth, or 1/depth when ``inverse``), each
    defaulting to the given percentile of the valid pixels. An image with no valid pixel is
    all black.
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {d.shape}")
    valid = np.isfinite(d) & (d > 0)
    shown = np.full(d.shape, np.nan, dtype=np.float32)
    if not valid.any():
        return apply_colormap(shown, lut)
    shown[valid] = 1.0 / d[valid] if inverse else d[valid]
    lo = float(np.percentile(shown[valid], percentiles[0])) if vmin is None else float(vmin)
    hi = float(np.percentile(shown[valid], percentiles[1])) if vmax is None else float(vmax)
    scale = hi - lo if hi > lo else 1.0
    normalised = (shown - lo) / scale
    if not inverse:  # far = blue either way: high depth -> low colour index
        normalised = 1.0 - normalised
    return apply_colormap(normalised, lut)
