"""A 16UC1 RGB-D sensor model: exact rendered depth -> what a depth driver publishes.

Common RGB-D drivers publish ``16UC1`` millimetres with 0 for "no reading". Holes appear:

* outside the working range (``z < min_range_m`` or ``z > max_range_m``, or no surface at all),
* along depth discontinuities, where stereo/ToF sensors lose the match (occlusion edges):
  a pixel is an edge if ``|z - z_n| > edge_rel_threshold * min(z, z_n)`` for one of its 4
  neighbours ``z_n``; the edge mask is then dilated by ``edge_dilate_px`` pixels,
* at random, isolated pixels with probability ``dropout``.

Valid pixels hold ``round(1000 z)`` (quantisation error <= 0.5 mm); no other noise is added, so
the bag's depth matches the ground truth to 1 mm wherever it is not a hole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthSensorParams:
    """Hole model parameters (see the module docstring)."""

    min_range_m: float = 0.1
    max_range_m: float = 3.0
    edge_rel_threshold: float = 0.05
    edge_dilate_px: int = 1
    dropout: float = 0.005

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_range_m < self.max_range_m <= 65.535:
            raise ValueError(f"DepthSensorParams: need 0 <= min_range < max_range <= 65.535 m, got "
                             f"{self.min_range_m}, {self.max_range_m}")
        if not 0.0 <= self.dropout < 1.0 or self.edge_rel_threshold <= 0 or self.edge_dilate_px < 0:
            raise ValueError(f"DepthSensorParams: bad hole parameters {self}")


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1)^2 square, (H,W) bool -> (H,W) bool."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            out[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)] |= src
    return out


def depth_edges(depth_m: np.ndarray, rel_threshold: float) -> np.ndarray:
    """Depth discontinuities, (H,W) float -> (H,W) bool.

    ``edge[p] = any_n |z_p - z_n| > t * min(z_p, z_n)`` over the 4-neighbours ``n`` of ``p``;
    a NaN neighbour (no surface) next to a valid pixel also counts as an edge.
    """
    z = np.asarray(depth_m, dtype=np.float64)
    edge = np.zeros(z.shape, dtype=bool)
    for a, b in ((z[:, 1:], z[:, :-1]), (z[1:, :], z[:-1, :])):
        with np.errstate(invalid="ignore"):
            jump = np.abs(a - b) > rel_threshold * np.minimum(a, b)
        jump |= np.isnan(a) != np.isnan(b)
        if a.shape[1] != z.shape[1]:  # horizontal pairs: (H, W-1)
            edge[:, 1:] |= jump
            edge[:, :-1] |= jump
        else:  # vertical pairs: (H-1, W)
            edge[1:, :] |= jump
            edge[:-1, :] |= jump
    return edge


def sensor_depth_mm(depth_m: np.ndarray, rng: np.random.Generator, params: DepthSensorParams = DepthSensorParams()) -> np.ndarray:
    """Exact depth (H,W) float metres (NaN = no surface) -> sensor depth (H,W) uint16 millimetres.

    ``d = round(1000 z)`` where valid, 0 in the holes described in the module docstring.
    """
    z = np.asarray(depth_m, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"sensor_depth_mm: expected an (H, W) depth image, got shape {z.shape}")
    valid = np.isfinite(z) & (z >= params.min_range_m) & (z <= params.max_range_m)
    edges = depth_edges(z, params.edge_rel_threshold)
    if params.edge_dilate_px:
        edges = _dilate(edges, params.edge_dilate_px)
    valid &= ~edges
    if params.dropout > 0:
        valid &= rng.random(z.shape) >= params.dropout
    out = np.zeros(z.shape, dtype=np.uint16)
    out[valid] = np.round(z[valid] * 1000.0).astype(np.uint16)
    return out
