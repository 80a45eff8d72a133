"""sensor_msgs/Image and CompressedImage <-> numpy, without ROS.

Pure numpy/OpenCV, duck-typed on the message fields, so the same code decodes messages from
rclpy subscriptions and from ``rosbags`` readers (training side). The ROS glue
(:mod:`depth_nodes.ros.image_conversion`) wraps these functions and uses ``cv_bridge`` when it
is importable.

Supported encodings (REP 118 for depth):

=========  ========  ========  =====================================================
encoding   dtype     channels  note
=========  ========  ========  =====================================================
rgb8       uint8     3
bgr8       uint8     3
rgba8      uint8     4
bgra8      uint8     4
mono8      uint8     1         returned as HxW
mono16     uint16    1         returned as HxW
16UC1      uint16    1         depth in millimetres, 0 = no reading
32FC1      float32   1         depth in metres, NaN (or <= 0, inf) = no reading
8UC1/3/4   uint8     1/3/4     generic OpenCV-style
16UC3      uint16    3
=========  ========  ========  =====================================================

Rows may be padded: ``step >= width * channels * itemsize``; multi-byte pixels honour
``is_bigendian``. Decoded arrays are always in native byte order and never alias the message
buffer.
"""
from __future__ import annotations

import array as array_module
import sys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ENCODINGS",
    "EncodedImage",
    "ImageConversionError",
    "check_image_fields",
    "decode_image",
    "decode_compressed",
    "encode_image",
    "depth_to_metres",
    "to_rgb8",
]


class ImageConversionError(ValueError):
    """A message cannot be converted; the message names the offending field."""


# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "8UC4": (np.dtype(np.uint8), 4),
    "16UC1": (np.dtype(np.uint16), 1),
    "16UC3": (np.dtype(np.uint16), 3),
    "32FC1": (np.dtype(np.float32), 1),
}

_NATIVE_BIG = sys.byteorder == "big"


@dataclass(frozen=True)
class EncodedImage:
    """The fields of a sensor_msgs/Image (without header)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: array_module.array  # typecode "B": what the rclpy message field holds, so no further copy


def _buffer(data) -> memoryview | bytes:
    """A zero-copy bytes-like view of ``data`` (bytes, array.array, numpy array or list)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8).data
    try:
        return memoryview(data).cast("B")
    except TypeError:
        return bytes(data)  # a list of ints (rare)


COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")  # a network node's colour image (REP 118 names)


def encoding_problem(encoding: str, accepted: tuple[str, ...] | None = None) -> str | None:
    """``None`` when ``encoding`` is one of ``accepted`` (default: every decodable one), else the
    one-line reason, listing the accepted encodings by their ROS names in one fixed order."""
    allowed = tuple(ENCODINGS) if accepted is None else accepted
    if encoding in allowed:
        return None
    return f"encoding: unsupported image encoding {encoding!r} (this input takes {', '.join(allowed)})"


def check_image_fields(msg) -> tuple[np.dtype, int, int]:
    """Check an Image-like message's layout; return ``(dtype, channels, row_bytes)``.

    Raises:
        ImageConversionError: unknown encoding, zero size, ``step`` smaller than one row, or
            ``data`` shorter than ``step * height``; the message names the field.
    """
    encoding = msg.encoding
    if problem := encoding_problem(encoding):
        raise ImageConversionError(problem)
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"height/width: empty image {width}x{height} ({encoding})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step: {step} bytes is smaller than one row of {width} {encoding} pixels ({row_bytes} bytes)"
        )
    if len(msg.data) < step * height:
        raise ImageConversionError(
            f"data: {len(msg.data)} bytes, expected step*height = {step}*{height} = {step * height}"
        )
    return dtype, channels, row_bytes


def decode_image(msg) -> np.ndarray:
    """Decode a sensor_msgs/Image-like object into a numpy array.

    Args:
        msg: any object with ``height, width, encoding, is_bigendian, step, data``.

    Returns:
        ``(H, W)`` for single-channel encodings, ``(H, W, C)`` otherwise; native byte order,
        C-contiguous, a copy of the message data.

    Raises:
        ImageConversionError: see :func:`check_image_fields`.
    """
    dtype, channels, row_bytes = check_image_fields(msg)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    buf = _buffer(msg.data)
    rows = np.frombuffer(buf, dtype=np.uint8, count=step * height).reshape(height, step)
    pixels = rows[:, :row_bytes]
    big = bool(msg.is_bigendian)
    out_dtype = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    arr = pixels.view(out_dtype) if pixels.flags.c_contiguous else np.ascontiguousarray(pixels).view(out_dtype)
    arr = arr.reshape(height, width, channels) if channels > 1 else arr.reshape(height, width)
    if dtype.itemsize > 1 and big != _NATIVE_BIG:
        return arr.astype(dtype)  # byte swap into a fresh native array
    return arr.copy()


def byte_array(array: np.ndarray) -> array_module.array:
    """The bytes of ``array`` (C order) as ``array.array("B")``, copied once.

    rclpy stores ``uint8[]`` message fields as ``array.array("B")`` and takes one as is, whereas
    ``bytes`` would be copied again (``ndarray.tobytes()`` + the field setter: two copies of a
    multi-megabyte image or cloud).
    """
    out = array_module.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(array)).cast("B"))
    return out


def encode_image(array: np.ndarray, encoding: str) -> EncodedImage:
    """Encode a numpy array as sensor_msgs/Image fields (native byte order, no row padding).

    Args:
        array: ``(H, W)`` or ``(H, W, C)`` with the dtype and channel count of ``encoding``.
        encoding: one of :data:`ENCODINGS`.
    """
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"encoding: unsupported image encoding {encoding!r}")
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1 and channels == 1:
        array = array[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageConversionError(
            f"encoding: array of shape {array.shape} does not fit {encoding} ({channels} channel(s))"
        )
    if array.dtype != dtype:
        raise ImageConversionError(f"encoding: array dtype {array.dtype} does not fit {encoding} ({dtype})")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f"height/width: empty image {width}x{height}")
    data = byte_array(array)
    return EncodedImage(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(_NATIVE_BIG and dtype.itemsize > 1),
        step=width * channels * dtype.itemsize,
        data=data,
    )


def decode_compressed(msg) -> tuple[np.ndarray, str]:
    """Decode a sensor_msgs/CompressedImage-like object (``format``, ``data``) with OpenCV.

    Returns ``(array, encoding)``: colour JPEG/PNG -> ``(H, W, 3)`` 'bgr8' (OpenCV order),
    grey 8-bit -> ``(H, W)`` 'mono8', 16-bit PNG -> 'mono16' (or '16UC1' when the format string
    names a depth encoding, as compressed_depth_image_transport's plain PNG mode does).
    """
    import cv2

    fmt = (getattr(msg, "format", "") or "").lower()
    buf = np.frombuffer(_buffer(msg.data), dtype=np.uint8)
    if buf.size == 0:
        raise ImageConversionError("data: compressed image is empty")
    if "compresseddepth" in fmt:
        # compressed_depth_image_transport prefixes a 12-byte ConfigHeader before the PNG.
        buf = buf[12:]
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageConversionError(f"data: cannot decode compressed image (format {fmt!r})")
    if arr.ndim == 2:
        if arr.dtype == np.uint16:
            return arr, ("16UC1" if ("16uc1" in fmt or "depth" in fmt) else "mono16")
        return arr, "mono8"
    if arr.shape[2] == 4:
        return arr, "bgra8"
    return arr, "bgr8"


def depth_to_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """Depth image -> float32 metres with NaN for "no reading" (REP 118).

    * ``16UC1`` / ``mono16``: millimetres; ``z = d / 1000``; ``d == 0`` -> NaN.
    * ``32FC1``: metres; non-finite or ``z <= 0`` -> NaN.
    """
    if encoding in ("16UC1", "mono16"):
        out = array.astype(np.float32) * np.float32(1e-3)
        out[array == 0] = np.nan
        return out
    if encoding == "32FC1":
        out = np.array(array, dtype=np.float32, copy=True)
        out[~(np.isfinite(out) & (out > 0))] = np.nan
        return out
    raise ImageConversionError(f"encoding: {encoding!r} is not a depth encoding (expected 16UC1 or 32FC1)")


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any 8-bit colour or grey image -> ``(H, W, 3)`` uint8 RGB."""
    if encoding in ("rgb8", "8UC3"):
        return array
    if encoding == "bgr8":
        return array[:, :, ::-1].copy()
    if encoding == "rgba8" or encoding == "8UC4":
        return array[:, :, :3].copy()
    if encoding == "bgra8":
        return array[:, :, 2::-1].copy()
    if encoding in ("mono8", "8UC1"):
        return np.repeat(array[:, :, None], 3, axis=2)
    if encoding == "mono16":
        return np.repeat((array >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    raise ImageConversionError(f"encoding: cannot convert {encoding!r} to rgb8")
