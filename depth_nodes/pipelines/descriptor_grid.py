"""Dense descriptors given by a coarse grid (numpy, ROS-free).

A network may output its descriptors at stride ``s`` (the shipped model: XFeat's 1/8 map, sidecar
``output.stride``); the dense map is then that grid interpolated bilinearly (half-pixel centres,
``align_corners=False``). :class:`GridDescriptors` computes it only where a tracker looks: windows
and single pixels, through the per-axis weights of :func:`interpolation_matrix`, never the whole
``D x H x W`` map (80 MB at 640x480, D = 64). :func:`window_of` and :func:`sample_at` serve an
array (a full-resolution map) and a grid alike.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["descriptors_dhw", "interpolation_matrix", "GridDescriptors", "dense_descriptors", "window_of", "sample_at"]


def descriptors_dhw(descriptors: np.ndarray) -> np.ndarray:
    """Model output ``(1, D, H, W)`` or ``(D, H, W)`` -> C-contiguous float32 ``(D, H, W)``."""
    d = np.asarray(descriptors)
    if d.ndim == 4:
        if d.shape[0] != 1:
            raise ValueError(f"descriptors: expected batch 1, got shape {d.shape}")
        d = d[0]
    if d.ndim != 3:
        raise ValueError(f"descriptors: expected (D, H, W), got shape {d.shape}")
    return np.ascontiguousarray(d, dtype=np.float32)



def interpolation_matrix(stride: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear weights with which the pixels ``p = 0 .. cells * s - 1`` of one axis sample a
    stride-``s`` grid of ``cells`` cells, as ``F.interpolate(mode="bilinear", align_corners=False)``
    and ONNX ``Resize`` (``half_pixel``) do::

        c = max((p + 0.5) / s - 0.5, 0),   i0 = floor(c),   i1 = min(i0 + 1, cells - 1),
        value(p) = (1 - (c - i0)) g[i0] + (c - i0) g[i1]

    Returns ``(W, i0, i1)``: ``W`` ``(cells * s, cells)`` float32 (``values = W @ g``; two non-zeros
    a row, one at the last cell) and the cells of each pixel. Cached: a camera's grid keeps its size.
    """
    return _interpolation_matrix(int(stride), int(cells))


@functools.lru_cache(maxsize=16)
def _interpolation_matrix(stride: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.maximum((np.arange(cells * stride, dtype=np.float64) + 0.5) / stride - 0.5, 0.0)
    i0 = np.minimum(np.floor(c).astype(np.int64), cells - 1)
    i1 = np.minimum(i0 + 1, cells - 1)
    frac = c - i0
    weights = np.zeros((len(c), cells), np.float64)
    rows = np.arange(len(c))
    weights[rows, i0] = 1.0 - frac
    weights[rows, i1] += frac  # i1 == i0 at the last cell: both weights on it
    weights = weights.astype(np.float32)
    for a in (weights, i0, i1):  # shared by every caller (cached)
        a.setflags(write=False)
    return weights, i0, i1


def _taps(pixels: np.ndarray, weights: np.ndarray, i0: np.ndarray, i1: np.ndarray):
    """``[(cells, weights), (cells, weights)]`` of network pixels along one axis: the lower and upper
    cell of each and their weights in ``interpolation_matrix``; the upper weight is 0 where both
    cells are the last one (its row holds the whole weight on it)."""
    lo, hi = i0[pixels], i1[pixels]
    return [(lo, weights[pixels, lo]), (hi, np.where(hi != lo, weights[pixels, hi], np.float32(0)))]


class GridDescriptors:
    """The dense descriptors of an image window, given by the stride-``s`` grid ``(D, gh, gw)`` they
    interpolate (module docstring): window pixel ``(u, v)`` is network pixel ``(u + left, v + top)``,
    and grid cell ``(i, j)`` is centred on network pixel ``(s j + (s - 1) / 2, s i + (s - 1) / 2)``.
    ``shape`` is the window's ``(D, height, width)``, as an array's would be."""

    dtype = np.dtype(np.float32)

    def __init__(self, grid: np.ndarray, stride: int, left: int = 0, top: int = 0, height: int | None = None,
                 width: int | None = None):
        self.grid = descriptors_dhw(grid)
        self.stride, self.left, self.top = int(stride), int(left), int(top)
        dim, gh, gw = self.grid.shape
        height = gh * self.stride - self.top if height is None else int(height)
        width = gw * self.stride - self.left if width is None else int(width)
        if self.stride < 1 or min(self.left, self.top) < 0 or height < 1 or width < 1 \
                or self.top + height > gh * self.stride or self.left + width > gw * self.stride:
            raise ValueError(f"a {width}x{height} window at ({self.left}, {self.top}) is not inside a stride-"
                             f"{self.stride} grid of {gw}x{gh} cells")
        self.shape = (dim, height, width)

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """``(D, y1 - y0, x1 - x0)`` float32: the interpolated descriptors of window rows ``y0..y1-1``
        and columns ``x0..x1-1`` (two small matrix products over the cells they touch)."""
        y0, y1, x0, x1 = y0 + self.top, y1 + self.top, x0 + self.left, x1 + self.left  # network pixels
        wy_all, iy0, iy1 = interpolation_matrix(self.stride, self.grid.shape[1])
        wx_all, ix0, ix1 = interpolation_matrix(self.stride, self.grid.shape[2])
        ry, ry1, rx, rx1 = iy0[y0], iy1[y1 - 1] + 1, ix0[x0], ix1[x1 - 1] + 1  # the cells the window touches
        wy, wx = wy_all[y0:y1, ry:ry1], wx_all[x0:x1, rx:rx1]
        cells = np.ascontiguousarray(self.grid[:, ry:ry1, rx:rx1])
        dim, rows, cols = cells.shape
        along_x = (cells.reshape(dim * rows, cols) @ wx.T).reshape(dim, rows, -1)   # two plain GEMMs
        both = wy @ along_x.transpose(1, 0, 2).reshape(rows, -1)                    # (ny, D * nx)
        return np.ascontiguousarray(both.reshape(len(wy), dim, -1).transpose(1, 0, 2))

    def at(self, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """``(K, D)`` descriptors at window pixels ``(us[k], vs[k])``: the two-by-two cells of each,
        weighted by :func:`interpolation_matrix` (one tap where both fall on the last cell)."""
        vs, us = np.asarray(vs, np.int64) + self.top, np.asarray(us, np.int64) + self.left
        taps = [_taps(p, *interpolation_matrix(self.stride, n)) for p, n in ((vs, self.grid.shape[1]),
                                                                         (us, self.grid.shape[2]))]
        out = np.zeros((self.shape[0], len(us)), np.float32)
        for cy, wy in taps[0]:
            for cx, wx in taps[1]:
                out += self.grid[:, cy, cx] * (wy * wx)
        return out.T

    def dense(self) -> np.ndarray:
        """The whole window ``(D, height, width)`` (for offline use: 80 MB at 640x480, D = 64)."""
        return self.window(0, self.shape[1], 0, self.shape[2])


def dense_descriptors(features) -> np.ndarray:
    """``(D, H, W)`` float32 array of a descriptor image (:class:`GridDescriptors` interpolated in full)."""
    return features.dense() if isinstance(features, GridDescriptors) else np.asarray(features, np.float32)


def window_of(features, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows ``y0..y1-1``, columns ``x0..x1-1`` of a descriptor image (array or :class:`GridDescriptors`)."""
    if isinstance(features, GridDescriptors):
        return features.window(y0, y1, x0, x1)
    return features[:, y0:y1, x0:x1]


def sample_at(features, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """``(K, D)`` descriptors at pixels ``(us, vs)`` of a descriptor image (array or :class:`GridDescriptors`)."""
    if isinstance(features, GridDescriptors):
        return features.at(us, vs)
    return features[:, vs, us].T
