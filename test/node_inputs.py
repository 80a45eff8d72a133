"""Helpers for the mono and descriptor node tests: stamped messages and a burst of malformed ones."""
from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.ros.harness import camera_info_msg, stamp_of
from depth_nodes.ros.image_conversion import numpy_to_image

_next = [1_700_000_000_000_000_000]


def new_stamp() -> int:
    _next[0] += 100_000_000
    return _next[0]


def header(stamp_ns: int, frame_id: str = "camera_optical_frame") -> Header:
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def camera(width: int, height: int) -> PinholeCamera:
    f = 0.8 * width
    return PinholeCamera(width, height, np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]]))


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int) -> Image:
    return numpy_to_image(array, encoding, header(stamp_ns))


def info_msg(cam: PinholeCamera, stamp_ns: int) -> CameraInfo:
    return camera_info_msg(cam, header(stamp_ns))


def publish_until(io, publish, topic: str, stamp: int, timeout: float = 20.0):
    """Call ``publish()`` until ``topic`` carries a message with ``stamp`` (covers discovery); return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publish()
        if io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received[topic]), timeout=0.5):
            return [m for m in io.messages(topic) if stamp_of(m) == stamp][0]
    raise AssertionError(f"no {topic} output for stamp {stamp}")


def output_for(io, topic: str, stamp: int, timeout: float = 5.0):
    assert io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received[topic]), timeout=timeout), topic
    return [m for m in io.messages(topic) if stamp_of(m) == stamp][0]


def malformed_images(good: np.ndarray, stamp_ns: int) -> list[tuple[str, Image]]:
    """Eleven kinds of bad ``image`` messages built from a good rgb8 array (one of each)."""
    h, w = good.shape[:2]
    out = []

    def m(kind, **fields):
        msg = image_msg(good, "rgb8", stamp_ns)
        for k, v in fields.items():
            setattr(msg, k, v)
        out.append((kind, msg))

    m("unknown encoding", encoding="yuv422_yuy2")
    m("empty encoding", encoding="")
    m("short data", data=bytes(image_msg(good, "rgb8", 0).data)[: h * w])
    m("empty data", data=b"")
    m("step too small", step=w)
    m("zero size", height=0, width=0, step=0, data=b"")
    m("big endian", is_bigendian=1)
    out.append(("depth encoding as colour", image_msg(np.full((h, w), np.nan, np.float32), "32FC1", stamp_ns)))
    out.append(("16-bit image", image_msg(np.zeros((h, w), np.uint16), "16UC1", stamp_ns)))
    m("height too large", height=h * 3)
    m("out-of-order stamp", header=header(stamp_ns - 300_000_000))  # a reordering (a jump back starts over)
    return out
