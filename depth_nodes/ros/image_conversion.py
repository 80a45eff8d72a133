"""sensor_msgs/Image <-> numpy for the nodes.

Uses ``cv_bridge`` only when it is importable *and* decodes every supported encoding exactly
(checked once per process by :func:`depth_nodes.ros.cv_bridge_probe.cv_bridge_status`; PyPI's
ROS 1 ``cv-bridge`` fails it), and our own codec (:mod:`depth_nodes.image_encodings`) otherwise.
"""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from depth_nodes.image_encodings import (
    ImageConversionError,
    check_image_fields,
    decode_compressed,
    decode_image,
    encode_image,
    encoding_problem,
)

__all__ = ["ImageConversionError", "image_to_numpy", "numpy_to_image", "compressed_to_numpy", "have_cv_bridge",
           "set_byte_field"]

def _bridge():
    from depth_nodes.ros.cv_bridge_probe import cv_bridge_status

    return cv_bridge_status().bridge


def have_cv_bridge() -> bool:
    """True when a ``cv_bridge`` that passed the round-trip check is in use."""
    return _bridge() is not None


def image_to_numpy(msg: Image, accepted: tuple[str, ...] | None = None, *, use_cv_bridge: bool = True) -> np.ndarray:
    """Decode an Image message (see :func:`depth_nodes.image_encodings.decode_image`).

    Raises :class:`ImageConversionError` naming the bad field for inconsistent messages, on
    both code paths (the message is checked before cv_bridge sees it), and for an encoding not in
    ``accepted`` (the input's encodings, e.g. :data:`~depth_nodes.image_encodings.COLOR_ENCODINGS`).
    """
    if problem := encoding_problem(msg.encoding, accepted):
        raise ImageConversionError(problem)
    bridge = _bridge() if use_cv_bridge else None
    if bridge is not None:  # pragma: no cover - only where a correct cv_bridge is installed
        check_image_fields(msg)
        try:
            return np.array(bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"), copy=True)
        except Exception as exc:  # noqa: BLE001 - CvBridgeError and friends
            raise ImageConversionError(f"encoding: cv_bridge cannot convert {msg.encoding!r}: {exc}") from exc
    return decode_image(msg)


def compressed_to_numpy(msg: CompressedImage) -> tuple[np.ndarray, str]:
    """Decode a CompressedImage; returns ``(array, encoding)``."""
    return decode_compressed(msg)


def set_byte_field(msg, name: str, data: array.array) -> None:
    """Give a ``uint8[]`` field of an rclpy message ``data`` itself, not a copy.

    The generated setter copies an ``array.array`` unless ``ROS_PYTHON_CHECK_FIELDS`` is set;
    rosidl_generator_py stores each field in the slot ``_<name>``, which is assigned directly
    after the same type check the setter would do.
    """
    if not isinstance(data, array.array) or data.typecode != "B":
        raise TypeError(f"{name}: expected array.array('B'), got {type(data).__name__}")
    slot = "_" + name
    if slot in getattr(type(msg), "__slots__", ()):
        setattr(msg, slot, data)
    else:  # not a generated message class: let its setter decide
        setattr(msg, name, data)


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """Build an Image message from an array (header copied when given)."""
    enc = encode_image(array, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = enc.height, enc.width, enc.encoding
    msg.is_bigendian, msg.step = enc.is_bigendian, enc.step
    set_byte_field(msg, "data", enc.data)
    return msg
