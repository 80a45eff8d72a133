"""Use ``cv_bridge`` only when it converts every supported encoding exactly.

Several packages install a module named ``cv_bridge``: ROS 2's (correct), and on PyPI the
ROS 1 one (``pip install cv-bridge``), whose ``imgmsg_to_cv2`` raises ``TypeError`` on rclpy's
``rgb8`` messages and returns ``16UC1`` as ``uint8``. :func:`probe_cv_bridge` decodes one small
message per encoding of :data:`depth_nodes.image_encodings.ENCODINGS` (with padded rows, and
big-endian for multi-byte ones) with the bridge's ``imgmsg_to_cv2(msg, "passthrough")`` and
compares dtype, shape and every value with the package's own decoder; any difference, or any
exception, rejects the bridge. It runs once per process (:func:`cv_bridge_status` caches it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BridgeStatus", "probe_cv_bridge", "cv_bridge_status"]


@dataclass(frozen=True)
class BridgeStatus:
    """``bridge``: the CvBridge instance to use, or ``None``; ``message``: one line for the log."""

    bridge: object | None
    message: str

    @property
    def usable(self) -> bool:
        return self.bridge is not None


def _probe_messages():
    """``(encoding, message, expected array)`` for every supported encoding."""
    from sensor_msgs.msg import Image

    from depth_nodes.image_encodings import ENCODINGS, decode_image

    rng = np.random.default_rng(7)
    h, w = 3, 5
    for encoding, (dtype, channels) in ENCODINGS.items():
        shape = (h, w) if channels == 1 else (h, w, channels)
        if dtype.kind == "f":
            arr = rng.normal(size=shape).astype(dtype)
        else:
            arr = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
        for bigendian in ((False, True) if dtype.itemsize > 1 else (False,)):
            pad = 3
            row = arr.reshape(h, -1).astype(dtype.newbyteorder(">" if bigendian else "<"))
            step = row.shape[1] * dtype.itemsize + pad
            data = b"".join(r.tobytes() + b"\x00" * pad for r in row)
            msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=step, data=data)
            yield encoding + (" big-endian" if bigendian else ""), msg, decode_image(msg)


def probe_cv_bridge(bridge) -> str | None:
    """``None`` if ``bridge.imgmsg_to_cv2`` matches our decoder on every encoding, else the first difference."""
    for name, msg, expected in _probe_messages():
        try:
            got = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        except Exception as exc:  # noqa: BLE001 - any failure rejects the bridge
            return f"{name}: {type(exc).__name__}: {exc}"
        if got.dtype.newbyteorder("=") != expected.dtype or got.shape != expected.shape:
            return f"{name}: got {got.dtype} {got.shape}, expected {expected.dtype} {expected.shape}"
        if not np.array_equal(got.astype(expected.dtype), expected, equal_nan=expected.dtype.kind == "f"):
            return f"{name}: values differ"
    return None


_STATUS: BridgeStatus | None = None


def cv_bridge_status() -> BridgeStatus:
    """Import and probe ``cv_bridge`` once per process; the result says which conversion is used."""
    global _STATUS
    if _STATUS is None:
        try:
            import cv_bridge
            bridge = cv_bridge.CvBridge()
        except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install
            _STATUS = BridgeStatus(None, "image conversion: built-in (cv_bridge not available"
                                         f"{'' if isinstance(exc, ImportError) else f': {exc}'})")
        else:
            where = getattr(cv_bridge, "__file__", "?")
            problem = probe_cv_bridge(bridge)
            if problem is None:
                _STATUS = BridgeStatus(bridge, f"image conversion: cv_bridge ({where}), exact on every encoding")
            else:
                _STATUS = BridgeStatus(None, f"image conversion: built-in; the cv_bridge at {where} fails the "
                                             f"round-trip check ({problem})")
    return _STATUS
