"""Recorded image and camera_info messages -> numpy arrays and camera models.

Pixels go through :mod:`depth_nodes.image_encodings`, the same code the nodes use, so training
sees exactly what the robot sees:

* ``kind="color"``: any 8-bit colour / grey encoding (or JPEG/PNG) -> ``(H, W, 3)`` uint8 RGB;
* ``kind="depth"``: ``16UC1`` millimetres or ``32FC1`` metres (also PNG-compressed 16-bit)
  -> ``(H, W)`` float32 metres, NaN where there is no reading (REP 118);
* ``kind="raw"``: the decoded array in its own encoding.

camera_info -> :class:`depth_nodes.geometry.camera.PinholeCamera` (ROS 2 ``k/d/r/p`` and ROS 1
``K/D/R/P`` field names). :class:`CameraInfoTrack` holds the models of a camera_info topic over
the recording (only the changes), so a frame gets the calibration valid at its stamp.
"""
from __future__ import annotations

import bisect
import numpy as np

from depth_nodes.geometry.camera import CameraModelError, PinholeCamera
from depth_nodes.image_encodings import (
    ImageConversionError,
    decode_compressed,
    decode_image,
    depth_to_metres,
    to_rgb8,
)
from depth_training.bags.errors import BagDecodeError, BagTopicError, format_stamp
from depth_training.bags.reader import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPES, Bag

__all__ = [
    "IMAGE_KINDS",
    "stamp_ns_of",
    "decode_image_message",
    "convert_for_kind",
    "decode_for_kind",
    "camera_from_info",
    "check_image_kind_types",
    "CameraInfoTrack",
]

IMAGE_KINDS = ("color", "depth", "raw")


def stamp_ns_of(msg) -> int:
    """``msg.header.stamp`` in nanoseconds (``sec * 1e9 + nanosec``)."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def decode_image_message(msg, msgtype: str) -> tuple[np.ndarray, str]:
    """``(array, encoding)`` of a ``sensor_msgs/Image`` or ``CompressedImage`` object.

    Raises:
        ImageConversionError: unknown encoding, inconsistent size, undecodable JPEG/PNG.
    """
    if msgtype == COMPRESSED_IMAGE_TYPE:
        return decode_compressed(msg)
    return decode_image(msg), msg.encoding


def convert_for_kind(array: np.ndarray, encoding: str, kind: str) -> np.ndarray:
    """Decoded pixels -> the array a training stream of ``kind`` uses (see module doc).

    Raises:
        ImageConversionError: the encoding does not fit the kind (e.g. ``16UC1`` as colour).
    """
    if kind == "color":
        return to_rgb8(array, encoding)
    if kind == "depth":
        return depth_to_metres(array, encoding)
    if kind == "raw":
        return array
    raise ValueError(f"kind: expected one of {IMAGE_KINDS}, got {kind!r}")


def camera_from_info(msg, *, where: str = "camera_info") -> PinholeCamera:
    """:meth:`PinholeCamera.from_camera_info` with errors turned into :class:`BagDecodeError` naming ``where``."""
    try:
        return PinholeCamera.from_camera_info(msg)
    except (CameraModelError, ValueError) as exc:
        raise BagDecodeError(f"{where}: unusable camera_info: {exc}") from None


def _same_camera(a: PinholeCamera, b: PinholeCamera) -> bool:
    return (a.width == b.width and a.height == b.height and np.array_equal(a.K, b.K)
            and np.array_equal(a.P, b.P) and np.array_equal(a.D, b.D) and np.array_equal(a.R, b.R))


def _info_key(msg) -> bytes:
    """The calibration content of a camera_info (size, K, D, R, P, binning, ROI, frame) as bytes."""
    parts = [np.asarray(getattr(msg, n, None) if hasattr(msg, n) else getattr(msg, n.upper()),
                        dtype=np.float64).tobytes() for n in ("k", "d", "r", "p")]
    roi = getattr(msg, "roi", None)
    extra = (msg.width, msg.height, getattr(msg, "binning_x", 0), getattr(msg, "binning_y", 0),
             getattr(roi, "x_offset", 0), getattr(roi, "y_offset", 0), getattr(roi, "width", 0),
             getattr(roi, "height", 0), msg.header.frame_id, getattr(msg, "distortion_model", ""))
    return b"|".join(parts) + repr(extra).encode()


class CameraInfoTrack:
    """Camera models of one camera_info topic over time, keeping only calibration changes.

    :meth:`camera_at` returns the model in effect at a stamp: the last one published at or
    before it, or the first one for frames recorded before any camera_info arrived. The track
    can be filled all at once (:meth:`from_bag`) or message by message while streaming
    (:meth:`add`), starting from the topic's first message (:meth:`first_of`).
    """

    def __init__(self, topic: str):
        self.topic = topic
        self.stamps_ns: list[int] = []
        self.cameras: list[PinholeCamera] = []
        self.count = 0  # camera_info messages added
        self._last_key: bytes | None = None
        self._last_stamp = 0

    def add(self, stamp_ns: int, camera: PinholeCamera) -> None:
        """Insert a model at ``stamp_ns`` unless it repeats the calibration in effect there."""
        self.count += 1
        i = bisect.bisect_right(self.stamps_ns, stamp_ns)
        if i > 0 and _same_camera(self.cameras[i - 1], camera):
            return
        if i == 0 and self.cameras and _same_camera(self.cameras[0], camera):
            self.stamps_ns[0] = stamp_ns  # the same calibration, known from earlier on
            return
        self.stamps_ns.insert(i, stamp_ns)
        self.cameras.insert(i, camera)

    def add_message(self, bag: Bag, msg) -> None:
        """Add a deserialised camera_info; a bad calibration raises :class:`BagDecodeError` naming the time."""
        stamp = stamp_ns_of(msg)
        key = _info_key(msg)
        if key == self._last_key and stamp >= self._last_stamp:
            self.count += 1  # the same calibration as the previous message: nothing changes
            self._last_stamp = stamp
            return
        where = f"{bag.name}: {self.topic}: at {format_stamp(stamp)}"
        self.add(stamp, camera_from_info(msg, where=where))
        self._last_key, self._last_stamp = key, stamp

    @classmethod
    def first_of(cls, bag: Bag, topic: str) -> "CameraInfoTrack":
        """A track holding the topic's first message (checks that the topic exists and is calibrated).

        Raises:
            BagTopicError: topic missing, wrong type or empty. BagDecodeError: a bad calibration.
        """
        bag.require_topic(topic, [CAMERA_INFO_TYPE], "camera_info")
        track = cls(topic)
        msg = bag.first_message(topic)
        if msg is None:
            raise BagTopicError(f"{bag.name}: {topic}: no camera_info message could be read")
        track.add_message(bag, msg)
        return track

    @classmethod
    def from_bag(cls, bag: Bag, topic: str) -> "CameraInfoTrack":
        """Read every message of ``topic`` (small messages; keeps only calibration changes)."""
        bag.require_topic(topic, [CAMERA_INFO_TYPE], "camera_info")
        track = cls(topic)
        for _, msg in bag.messages([topic]):
            track.add_message(bag, msg)
        if not track.cameras:
            raise BagTopicError(f"{bag.name}: {topic}: no camera_info messages")
        return track

    def camera_at(self, stamp_ns: int) -> PinholeCamera:
        i = bisect.bisect_right(self.stamps_ns, stamp_ns) - 1
        return self.cameras[max(i, 0)]


def check_image_kind_types(bag: Bag, topic: str, kind: str, role: str | None = None) -> None:
    """Raise :class:`BagTopicError` unless ``topic`` exists with an image type and ``kind`` is known.

    ``role`` labels the topic in the message (``left``, ``right`` ...; default: ``kind``).
    """
    if kind not in IMAGE_KINDS:
        raise ValueError(f"kind: expected one of {IMAGE_KINDS}, got {kind!r}")
    bag.require_topic(topic, IMAGE_TYPES, role or kind)


def decode_for_kind(bag: Bag, topic: str, msg, msgtype: str, kind: str, stamp_ns: int) -> tuple[np.ndarray, str]:
    """Decode and convert one image message; errors become :class:`BagDecodeError` naming file, topic, time."""
    try:
        array, encoding = decode_image_message(msg, msgtype)
        return convert_for_kind(array, encoding, kind), encoding
    except ImageConversionError as exc:
        raise BagDecodeError(f"{bag.name}: {topic}: image at {format_stamp(stamp_ns)} cannot be used as "
                             f"{kind}: {exc}") from None
