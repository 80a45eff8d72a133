"""Organized point clouds from depth images (numpy, ROS-free).

The cloud is an ``(H', W')`` grid of float32 records with fields ``x, y, z`` (metres, optical
frame) and optionally ``rgb``: a float32 whose bit pattern is the uint32 ``0x00RRGGBB``, the
packing rviz2 and PCL expect. Invalid pixels (NaN depth, outside the range limits) are NaN
points, so the cloud stays organized (``is_dense = False``).

Record layout in memory (little-endian float32, 16 bytes with rgb, 12 without)::

    offset 0: x   offset 4: y   offset 8: z   [offset 12: rgb]
"""
from __future__ import annotations

import sys
import threading

import cv2
import numpy as np

from depth_nodes.geometry.camera import PinholeCamera

_LITTLE_ENDIAN = sys.byteorder == "little"

__all__ = ["pack_rgb", "unpack_rgb", "organized_points", "cloud_dtype", "write_ply"]


def cloud_dtype(with_rgb: bool) -> np.dtype:
    """Structured dtype of one point record (see module docstring)."""
    names = ["x", "y", "z"] + (["rgb"] if with_rgb else [])
    return np.dtype({"names": names, "formats": ["<f4"] * len(names), "offsets": [0, 4, 8, 12][: len(names)],
                     "itemsize": 4 * len(names)})


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB -> ``(...)`` float32 whose bits are ``(r << 16) | (g << 8) | b``."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: float32 ``(...)`` -> uint8 ``(..., 3)``."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)


def organized_points(
    camera: PinholeCamera,
    depth: np.ndarray,
    rgb: np.ndarray | None = None,
    *,
    decimation: int = 1,
    min_depth: float = 0.0,
    max_depth: float = float("inf"),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Depth image (+ colour) -> organized cloud ``(H', W', 3 or 4)`` float32 buffer.

    ``X(u, v) = z(u, v) * K^-1 [u, v, 1]^T`` for every ``decimation``-th pixel
    (``H' = ceil(H / n)``, ``W' = ceil(W / n)``); points whose depth is NaN or outside
    ``[min_depth, max_depth]`` are NaN. Channel 3 (if ``rgb`` is given) holds :func:`pack_rgb`.

    The returned float32 array is C-contiguous, so ``arr.view(cloud_dtype(...))`` gives the
    records and ``arr.tobytes()`` the PointCloud2 ``data``.

    Args:
        camera: model of the depth image (same size).
        depth: ``(H, W)`` metres, NaN invalid (float32 preferred; other dtypes are converted).
        rgb: optional ``(H, W, 3)`` uint8 RGB registered to the depth image.
        decimation: keep every n-th row and column (n >= 1).
        min_depth, max_depth: valid depth interval along the optical axis, metres.
        out: optional C-contiguous float32 ``(H', W', 3|4)`` array to write into (e.g. a view of
            a reusable message buffer); returned.
    """
    if decimation < 1:
        raise ValueError(f"decimation must be >= 1, got {decimation}")
    if depth.shape != camera.shape:
        raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the camera is {camera.width}x{camera.height}")
    if rgb is not None and rgb.shape[:2] != depth.shape:
        raise ValueError(f"rgb is {rgb.shape[1]}x{rgb.shape[0]} but depth is {depth.shape[1]}x{depth.shape[0]}")
    n = int(decimation)
    rx, ry = camera.ray_planes()
    z = np.asarray(depth, dtype=np.float32)
    if n > 1:
        rx, ry, z = rx[::n, ::n], ry[::n, ::n], z[::n, ::n]
        rgb = rgb[::n, ::n] if rgb is not None else None
    shape = z.shape
    if min_depth > 0 or np.isfinite(max_depth):
        zf = _scratch("z", shape, np.float32)
        np.copyto(zf, z)
        outside, above = _scratch("outside", shape, np.bool_), _scratch("above", shape, np.bool_)
        np.less(z, min_depth, out=outside)
        np.greater(z, max_depth, out=above)
        np.logical_or(outside, above, out=outside)
        np.copyto(zf, np.float32(np.nan), where=outside)
        z = zf
    else:
        z = np.ascontiguousarray(z)
    channels = [np.multiply(rx, z, out=_scratch("x", shape, np.float32)),
                np.multiply(ry, z, out=_scratch("y", shape, np.float32)), z]
    if rgb is not None:
        channels.append(_packed_rgb_plane(rgb))
    # cv2.merge interleaves the planes in one pass (numpy's strided channel writes are ~5x slower);
    # the planes live in per-thread scratch buffers because fresh multi-MB allocations (page
    # faults) would cost more than the arithmetic.
    if out is None:
        return cv2.merge(channels).reshape(shape[0], shape[1], len(channels))
    if out.shape != (shape[0], shape[1], len(channels)) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(shape[0], shape[1], len(channels))}, "
                         f"got {out.shape} {out.dtype}")
    written = cv2.merge(channels, dst=out)
    if written is not out and not np.shares_memory(written, out):  # pragma: no cover - OpenCV contract
        np.copyto(out, written.reshape(out.shape))
    return out


_local = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread reusable work buffer (contents undefined)."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buf = buffers.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = buffers[name] = np.empty(shape, dtype)
    return buf


def _packed_rgb_plane(rgb: np.ndarray) -> np.ndarray:
    """Fast :func:`pack_rgb` for ``(H, W, 3)`` uint8 into a scratch plane: BGRA bytes viewed as
    little-endian uint32 with alpha cleared -> ``0x00RRGGBB``, as float32 ``(H, W)``."""
    if not _LITTLE_ENDIAN:
        return pack_rgb(rgb)
    bgra = _scratch("bgra", rgb.shape[:2] + (4,), np.uint8)
    cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGRA, dst=bgra)
    bits = bgra.view(np.uint32).reshape(bgra.shape[:2])
    np.bitwise_and(bits, np.uint32(0x00FFFFFF), out=bits)
    return bits.view(np.float32)


def write_ply(path, cloud: np.ndarray) -> int:
    """Write the finite points of an organized cloud (``(H, W, 3|4)``, see above) as binary PLY.

    Colour (if present) is written as ``red green blue`` uchar properties. Returns the number of
    points written.
    """
    pts = cloud.reshape(-1, cloud.shape[-1])
    keep = np.isfinite(pts[:, :3]).all(axis=1)
    pts = pts[keep]
    has_rgb = cloud.shape[-1] == 4
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("red", "u1"), ("green", "u1"), ("blue", "u1")] if has_rgb else [])
    rec = np.empty(len(pts), dtype=fields)
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if has_rgb:
        rgb = unpack_rgb(pts[:, 3])
        rec["red"], rec["green"], rec["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(rec)}",
              "property float x", "property float y", "property float z"]
    if has_rgb:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(rec.tobytes())
    return len(rec)
