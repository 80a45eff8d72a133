"""The ``compressedDepth`` image transport's wire format (ROS 2 compressed_depth_image_transport).

A ``sensor_msgs/CompressedImage`` whose ``format`` is ``"<encoding>; compressedDepth png"``
(``"<encoding>; compressedDepth"`` from older publishers) carries a 12-byte ``ConfigHeader``
and then a 16-bit PNG (codec.cpp of ros-perception/image_transport_plugins)::

    int32   format          0 = INV_DEPTH (the only value)
    float32 depthParam[0]   A = q * (q + 1)          q = the publisher's depth_quantization
    float32 depthParam[1]   B = 1 - A / depth_max    (native byte order: little-endian on robots)

* ``16UC1`` (millimetres): the PNG holds the depth itself (values above ``depth_max`` zeroed);
  the header's parameters are unused.
* ``32FC1`` (metres): the PNG holds quantised inverse depth ``inv = uint16(A / z + B)`` for
  ``z < depth_max`` (0 otherwise, NaN included); decoding is ``z = A / (inv - B)``, ``inv = 0``
  -> NaN. The step between codes is ``z^2 / A`` (0.4 mm at 2 m with the default ``q = 100``).

The ``rvl`` variant is refused with a clear error. Plain functions of numpy arrays; OpenCV does
the PNG.
"""
from __future__ import annotations

import struct

import numpy as np

from depth_nodes.image_encodings import ImageConversionError

__all__ = ["HEADER", "is_compressed_depth", "decode_compressed_depth", "encode_compressed_depth"]

HEADER = struct.Struct("<i2f")  # ConfigHeader: compressionFormat format; float depthParam[2]
INV_DEPTH = 0


def is_compressed_depth(fmt: str) -> bool:
    return "compresseddepth" in (fmt or "").lower()


def _split(fmt: str) -> tuple[str, str]:
    """``"32FC1; compressedDepth png"`` -> ``("32FC1", "png")``."""
    encoding, _, rest = (fmt or "").partition(";")
    rest = rest.strip()
    codec = rest[len("compressedDepth"):].strip() if rest.lower().startswith("compresseddepth") else ""
    return encoding.strip(), (codec or "png")


def decode_compressed_depth(fmt: str, data) -> tuple[np.ndarray, str]:
    """Decode a compressedDepth message body -> ``(depth, encoding)``.

    Returns ``(H, W)`` float32 metres with NaN for "no reading" and ``"32FC1"`` for a 32FC1
    source, ``(H, W)`` uint16 millimetres and ``"16UC1"`` for a 16UC1 one.

    Raises:
        ImageConversionError: unknown encoding or codec, short or undecodable data.
    """
    import cv2

    encoding, codec = _split(fmt)
    if encoding not in ("32FC1", "16UC1"):
        raise ImageConversionError(f"format: compressedDepth of {encoding!r} (format {fmt!r}); expected 32FC1 or "
                                   "16UC1")
    if codec != "png":
        raise ImageConversionError(f"format: compressedDepth codec {codec!r} is not supported (only png; set the "
                                   "publisher's format parameter to png)")
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, np.uint8)
    if buf.size <= HEADER.size:
        raise ImageConversionError(f"data: compressedDepth message of {buf.size} bytes (a 12-byte header and a PNG "
                                   "expected)")
    _, quant_a, quant_b = HEADER.unpack(buf[:HEADER.size].tobytes())
    png = cv2.imdecode(buf[HEADER.size:], cv2.IMREAD_UNCHANGED)
    if png is None or png.ndim != 2 or png.dtype != np.uint16:
        raise ImageConversionError(f"data: compressedDepth PNG cannot be decoded as 16-bit single channel "
                                   f"(format {fmt!r})")
    if encoding == "16UC1":
        return png, "16UC1"
    inv = png.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (inv - np.float32(quant_b))
    depth[png == 0] = np.nan
    return depth.astype(np.float32), "32FC1"


def encode_compressed_depth(depth: np.ndarray, encoding: str, depth_max: float = 10.0,
                            depth_quantization: float = 100.0, png_level: int = 3) -> tuple[str, bytes]:
    """Encode as compressed_depth_image_transport's publisher does -> ``(format, data)``.

    ``depth``: ``(H, W)`` float32 metres (``"32FC1"``) or uint16 millimetres (``"16UC1"``).
    Defaults are the publisher's (``depth_max`` 10 m, ``depth_quantization`` 100, PNG level 3).
    """
    import cv2

    if encoding == "32FC1":
        z = np.asarray(depth, np.float32)
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0 - quant_a / np.float32(depth_max))
        ok = (z < depth_max) & (z > 0)  # NaN compares false: no reading
        inv = np.zeros(z.shape, np.uint16)
        inv[ok] = (quant_a / z[ok] + quant_b).astype(np.uint16)  # C++ float -> ushort truncates
        image = inv
    elif encoding == "16UC1":
        image = np.array(depth, np.uint16, copy=True)
        image[image > np.uint16(min(depth_max * 1000.0, 65535))] = 0
        quant_a = quant_b = np.float32(0.0)
    else:
        raise ImageConversionError(f"encoding: compressedDepth needs 32FC1 or 16UC1, got {encoding!r}")
    ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise ImageConversionError("data: PNG encoding failed")
    return f"{encoding}; compressedDepth png", HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b)) + png.tobytes()
