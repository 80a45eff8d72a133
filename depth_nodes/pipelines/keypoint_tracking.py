"""Tracking reference keypoints by best dense-descriptor match (numpy, ROS-free).

Dense Object Nets style: a network maps an image to a descriptor image ``(D, H, W)``; a
reference keypoint ``k`` is a descriptor ``r_k`` (``D``,) picked in a reference image. In a new
frame the keypoint is where the descriptor image is closest to ``r_k``:

    d_k(u, v) = || F(u, v) - r_k ||_2 ,      (u_k, v_k) = argmin_{(u, v) in S_k} d_k(u, v)

``S_k`` is a square search window of half-size ``search_radius`` around the keypoint's last
position while it is tracked; when the best distance there exceeds ``lost_threshold`` (or the
keypoint was lost), the whole image is searched.

A network may output its descriptors at stride ``s`` (the shipped model: XFeat's 1/8 map, sidecar
``output.stride``); the dense map is then that grid interpolated bilinearly (half-pixel centres,
``align_corners=False``), and :class:`~depth_nodes.pipelines.descriptor_grid.GridDescriptors`
computes it only where the tracker looks: the search windows and the matched pixels, never the whole
``D x H x W`` map (80 MB at 640x480, D = 64; producing it took half of the shipped model's time in
ONNX Runtime, and reading it back after the network ran cost the tracker about 1 ms of cache
misses). Its whole-image search is coarse to
fine: the ``COARSE_CANDIDATES`` grid cells nearest to ``r_k`` (among those whose centres lie in the
image, ``1/s^2`` of the pixels), then the interpolated map in a window of half-size ``1.5 s`` around
each; the best of those windows is the match. On real photographs (churchill 1 -> 2, 3, 4, 6 with the
shipped model, 800 reference descriptors at random pixels) it found the whole-image best pixel
(within 1 px) for 796, and the other 4 were ties (squared distances 0.0002 apart). A keypoint whose best distance over the whole
image still exceeds ``lost_threshold`` is *lost* for this frame; it keeps its id (the index in
the reference file) and is searched for again in every later frame (re-acquisition).

Descriptor images are channels-first ``(D, H, W)``, as networks output them. The distances are
computed for all keypoints at once with ``||F - r||^2 = ||F||^2 - 2 r.F + ||r||^2`` (one
``(K, D) @ (D, HW)`` product, no transpose of the descriptor image).

:class:`DescriptorPCA` gives the colour view of a descriptor image: its first three principal
components, fitted once (on the first frame) so that colours stay stable over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_nodes.pipelines.descriptor_grid import GridDescriptors, descriptors_dhw, sample_at, window_of

__all__ = ["TrackerConfig", "TrackResult", "KeypointTracker", "squared_distance_maps", "DescriptorPCA",
           "descriptors_dhw", "flat_channels"]


def flat_channels(features: np.ndarray) -> np.ndarray:
    """``(D, H, W)`` float32 -> ``(D, H*W)``, a view without copying when every channel's pixels are
    one run of memory (a contiguous map, or a window of whole rows of one, as the letterbox crop of a
    wide camera image is); otherwise a contiguous copy. BLAS takes the strided view as it is."""
    f = np.asarray(features, dtype=np.float32)
    dim, h, w = f.shape
    item = f.itemsize
    if f.strides[2] == item and f.strides[1] == w * item:
        return np.lib.stride_tricks.as_strided(f, (dim, h * w), (f.strides[0], item), writeable=False)
    return np.ascontiguousarray(f).reshape(dim, h * w)


def squared_distance_maps(features: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Squared descriptor distances of every pixel to every reference.

    Args:
        features: ``(D, H, W)`` float32 descriptor image ``F``.
        references: ``(K, D)`` float32 reference descriptors ``r_k``.

    Returns:
        ``(K, H, W)`` float32, ``||F(u, v) - r_k||^2`` (clipped at 0 against rounding).
    """
    dim, h, w = features.shape
    if references.ndim != 2 or references.shape[1] != dim:
        raise ValueError(f"references must be (K, {dim}), got {references.shape}")
    flat = flat_channels(features)
    refs = references.astype(np.float32, copy=False)
    dist = refs @ flat                       # (K, HW)
    dist *= np.float32(-2.0)
    dist += np.einsum("dn,dn->n", flat, flat)[None]
    dist += np.einsum("kd,kd->k", refs, refs)[:, None]
    np.maximum(dist, 0.0, out=dist)
    return dist.reshape(len(refs), h, w)


#: grid cells refined per keypoint by the coarse-to-fine whole-image search
COARSE_CANDIDATES = 5


@dataclass
class TrackerConfig:
    """``lost_threshold``: largest descriptor distance (L2) of a tracked keypoint.
    ``search_radius``: half-size in pixels of the window around the last position (0 = always
    search the whole image)."""

    lost_threshold: float = 1.0
    search_radius: int = 16

    def __post_init__(self):
        if not self.lost_threshold > 0:
            raise ValueError(f"lost_threshold must be > 0, got {self.lost_threshold}")
        if self.search_radius < 0:
            raise ValueError(f"search_radius must be >= 0, got {self.search_radius}")


@dataclass
class TrackResult:
    """One frame's keypoints, in descriptor-image pixels.

    ``pixels`` ``(K, 2)`` float32 ``u, v`` (NaN when lost), ``distances`` ``(K,)`` best distance,
    ``tracked`` ``(K,)`` bool, ``in_window`` ``(K,)`` bool (found inside the search window, not by
    the whole-image fallback), ``scores`` ``(K,)`` = ``max(0, 1 - d / lost_threshold)`` (0 when lost),
    ``ids`` ``(K,)`` int persistent ids.
    """

    ids: np.ndarray
    pixels: np.ndarray
    distances: np.ndarray
    tracked: np.ndarray
    in_window: np.ndarray
    scores: np.ndarray


class KeypointTracker:
    """Tracks ``K`` reference descriptors through descriptor images (see module docstring)."""

    def __init__(self, references: np.ndarray, config: TrackerConfig | None = None, ids: np.ndarray | None = None):
        refs = np.asarray(references, dtype=np.float32)
        if refs.ndim != 2 or refs.shape[0] == 0:
            raise ValueError(f"references must be a non-empty (K, D) array, got {refs.shape}")
        if not np.isfinite(refs).all():
            raise ValueError("references contain NaN or inf")
        self.references = refs
        self.config = config or TrackerConfig()
        self.ids = np.arange(len(refs)) if ids is None else np.asarray(ids, dtype=np.int64)
        self.last = np.full((len(refs), 2), -1, np.int64)  # last tracked (u, v), -1 = none
        self.seen = np.zeros(len(refs), bool)  # tracked at least once
        self.reacquired = 0  # times a keypoint was found again after being lost

    def reset(self) -> None:
        self.last[:] = -1
        self.seen[:] = False

    def update(self, features) -> TrackResult:
        """Match every reference in the ``(D, H, W)`` descriptor image (an array, or
        :class:`GridDescriptors`: then coarse to fine where it searches the whole image); updates the
        track state."""
        if len(features.shape) != 3 or features.shape[0] != self.references.shape[1]:
            raise ValueError(f"descriptor image must be ({self.references.shape[1]}, H, W), got {features.shape}")
        k = len(self.references)
        h, w = features.shape[1:]
        thr2 = float(self.config.lost_threshold) ** 2
        radius = int(self.config.search_radius)
        pixels = np.full((k, 2), np.nan, np.float32)
        best = np.empty(k, np.float32)
        tracked = np.zeros(k, bool)
        in_window = np.zeros(k, bool)
        full = []  # keypoints searched over the whole image
        for i in range(k):
            u0, v0 = self.last[i]
            if radius > 0 and u0 >= 0 and u0 < w and v0 < h:
                d2, u, v = self._window_best(features, i, u0, v0, radius)
                if d2 <= thr2:
                    best[i], tracked[i], in_window[i] = d2, True, True
                    pixels[i] = (u, v)
                    continue
            full.append(i)
        if full:  # the keypoints not found near their last position: the whole image
            if isinstance(features, GridDescriptors):
                found = self._coarse_to_fine(features, full)
            else:
                dist2 = squared_distance_maps(features, self.references[full])
                found = []
                for d in dist2:
                    j = int(np.argmin(d))
                    v, u = divmod(j, w)
                    found.append((float(d.flat[j]), u, v))
            for i, (d2, u, v) in zip(full, found):
                best[i] = d2
                if d2 <= thr2:
                    tracked[i] = True
                    pixels[i] = (u, v)
        # exact distances at the chosen pixels (the expansion above loses precision near 0)
        at = np.where(np.isfinite(pixels), pixels, 0).astype(np.int64)
        exact = ((sample_at(features, at[:, 0], at[:, 1]) - self.references) ** 2).sum(axis=1)
        best = np.where(tracked, exact, best)
        was_lost = self.last[:, 0] < 0
        self.reacquired += int(np.count_nonzero(was_lost & tracked & self.seen))
        self.seen |= tracked
        self.last = np.where(tracked[:, None], np.nan_to_num(pixels, nan=-1).astype(np.int64), -1)
        distances = np.sqrt(best)
        scores = np.where(tracked, np.maximum(0.0, 1.0 - distances / self.config.lost_threshold), 0.0).astype(np.float32)
        return TrackResult(self.ids.copy(), pixels, distances.astype(np.float32), tracked, in_window, scores)


    def _window_best(self, features, k: int, uc: int, vc: int, radius: int) -> tuple[float, int, int]:
        """``(squared distance, u, v)`` of the pixel nearest to reference ``k`` in the window of
        half-size ``radius`` around ``(uc, vc)``, clipped to the image; ``(inf, -1, -1)`` when the
        clipped window is empty."""
        h, w = features.shape[1:]
        x0, x1 = max(0, uc - radius), min(w, uc + radius + 1)
        y0, y1 = max(0, vc - radius), min(h, vc + radius + 1)
        if x0 >= x1 or y0 >= y1:
            return np.inf, -1, -1
        win = squared_distance_maps(window_of(features, y0, y1, x0, x1), self.references[k:k + 1])[0]
        j = int(np.argmin(win))
        wv, wu = divmod(j, win.shape[1])
        return float(win.flat[j]), x0 + wu, y0 + wv

    def _coarse_to_fine(self, features: GridDescriptors, keys: list[int]) -> list[tuple[float, int, int]]:
        """``(squared distance, u, v)`` of the best window pixel for each reference in ``keys``, by
        the coarse-to-fine search of the module docstring (the cells whose centres lie within half a
        cell of the window; a window inside the grid always has some)."""
        _, h, w = features.shape
        grid, s = features.grid, features.stride
        centre = (s - 1) / 2
        cx = np.arange(grid.shape[2]) * s + centre - features.left  # cell centres in window pixels
        cy = np.arange(grid.shape[1]) * s + centre - features.top
        cols = np.flatnonzero((cx >= -s / 2) & (cx < w + s / 2))
        rows = np.flatnonzero((cy >= -s / 2) & (cy < h + s / 2))
        block = np.ascontiguousarray(grid[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        cells = squared_distance_maps(block, self.references[keys]).reshape(len(keys), -1)
        radius = s + s // 2
        out = []
        for k, d in zip(keys, cells):
            best = (np.inf, -1, -1)
            for cell in np.argsort(d)[:COARSE_CANDIDATES]:
                gy, gx = divmod(int(cell), block.shape[2])
                found = self._window_best(features, k, int(round(cx[cols[0] + gx])), int(round(cy[rows[0] + gy])),
                                          radius)
                if found[0] < best[0]:
                    best = found
            out.append(best)
        return out


class DescriptorPCA:
    """Colour view of descriptor images: ``rgb = clip((F - mu) V_3 / (k sigma) * 127.5 + 127.5)``.

    ``V_3`` (``D x 3``) are the first three principal axes of a pixel sample of the first image
    seen (or of the reference descriptors, :meth:`fit`), each axis' sign chosen so that its largest
    loading is positive; ``sigma`` the per-component standard deviation, ``k = 2``. With ``D < 3``
    the missing channels are 0 (mid-grey).
    """

    def __init__(self, max_samples: int = 20000, seed: int = 0):
        self.max_samples = max_samples
        self.seed = seed
        self.mean: np.ndarray | None = None
        self.axes: np.ndarray | None = None  # (D, 3)
        self.std: np.ndarray | None = None

    def fit(self, samples: np.ndarray) -> "DescriptorPCA":
        """Fit on ``(N, D)`` descriptors (rows)."""
        x = np.asarray(samples, dtype=np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) > self.max_samples:
            x = x[np.random.default_rng(self.seed).choice(len(x), self.max_samples, replace=False)]
        if len(x) < 2:
            raise ValueError("need at least 2 finite descriptors to fit the PCA view")
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        n = min(3, vt.shape[0])
        axes = np.zeros((x.shape[1], 3))
        axes[:, :n] = vt[:n].T
        for c in range(n):
            if axes[np.argmax(np.abs(axes[:, c])), c] < 0:
                axes[:, c] *= -1
        std = np.ones(3)
        std[:n] = np.maximum(s[:n] / np.sqrt(max(len(x) - 1, 1)), 1e-12)
        self.mean, self.axes, self.std = mean.astype(np.float32), axes.astype(np.float32), std.astype(np.float32)
        return self

    def colorize(self, features: np.ndarray) -> np.ndarray:
        """``(D, H, W)`` descriptor image -> ``(H, W, 3)`` uint8 RGB (fits on it if not fitted yet).

        One ``(3, D) @ (D, HW)`` product: ``rgb = A F + b`` with ``A = 127.5 V_3^T / (k sigma)``,
        ``b = 127.5 - A mu``; non-finite descriptors give black.
        """
        f = np.asarray(features, dtype=np.float32)
        dim, h, w = f.shape
        if self.axes is None or self.axes.shape[0] != dim:
            flat = np.ascontiguousarray(f).reshape(dim, -1)
            self.fit(flat[:, ::max(1, flat.shape[1] // self.max_samples)].T)
        gain = (127.5 / (2.0 * self.std))[:, None] * self.axes.T            # (3, D)
        offset = 127.5 - gain @ self.mean                                   # (3,)
        gain = np.ascontiguousarray(gain, dtype=np.float32)
        if f.strides[2] == f.itemsize and f.strides[1] != w * f.itemsize:
            # rows that are not adjacent (every second row of a map, for a cheaper preview): one
            # (3, D) @ (D, W) product per row, each on strided memory, nothing copied
            rgb = np.matmul(gain, f.transpose(1, 0, 2)).transpose(1, 0, 2)  # (3, h, w)
        else:
            rgb = (gain @ flat_channels(f)).reshape(3, h, w)
        # per channel: + offset, rounded and saturated to uint8 by OpenCV (NaN -> 0), then interleaved
        planes = [cv2.addWeighted(rgb[c], 1.0, rgb[c], 0.0, float(offset[c]), dtype=cv2.CV_8U) for c in range(3)]
        out = cv2.merge(planes)
        finite = np.isfinite(rgb)
        if not finite.all():
            out[~finite.all(axis=0)] = 0
        return out
