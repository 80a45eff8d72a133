"""Recording -> fixed-size training frames: the decode step in front of the cache.

Every synchronised sample of a bag (:class:`depth_training.bags.SyncedSamples`) becomes one cache
row (a dict of NumPy arrays, all frames of a run the same shape):

* each colour stream -> ``<role>``: ``(H, W, 3)`` uint8 RGB at the training size (area
  interpolation when shrinking, bilinear when enlarging);
* the depth stream, if any -> ``depth``: ``(H, W)`` float32 metres, NaN = no reading; resized by
  nearest neighbour, so no depth is invented across object edges;
* ``K``: ``(3, 3)`` float32 intrinsics of the layout's camera stream scaled to the training size,
  ``K' = S K`` with ``S = [[sx, 0, sx/2 - 1/2], [0, sy, sy/2 - 1/2], [0, 0, 1]]``
  (:meth:`PinholeCamera.resized`, pixel-centre convention);
* ``baseline``: ``()`` float32 metres, ``B = -P[0, 3] / P[0, 0]`` of the layout's baseline stream
  (the right camera of a rectified pair), when the layout names one;
* ``pose``: ``(4, 4)`` float64 ``T_fixed_camera`` of the reference frame, with a pose source;
* ``stamp_ns``: ``()`` int64 header stamp; ``sequence``: ``()`` int32, a new value after a gap of
  more than ``max_gap_s`` or a skipped frame, so a snippet ``(t-1, t, t+1)`` never spans one.

Image sizes must stay the same along each stream and across the colour streams of a sample (the
two images of a stereo pair). A frame that breaks this raises a
:class:`~depth_training.bags.BagDecodeError` naming bag, topic, time and both sizes; with
``on_error="skip"`` it is dropped instead, with a throttled
:class:`~depth_training.bags.BagWarning`, like every other unusable frame.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from depth_training.bags import Bag, BagDecodeError, BagWarning, StreamSpec, SyncedSample, SyncedSamples, format_stamp
from depth_training.bags.sync import PoseSource

__all__ = ["FrameLayout", "resize_color", "resize_depth", "frames_from_bag"]


@dataclass(frozen=True)
class FrameLayout:
    """What one training frame holds.

    Attributes:
        streams: the image streams; the first is the time reference. Colour streams are stored
            under their role, the (single) depth stream as ``depth``.
        camera_role: the stream whose (scaled) intrinsics are stored as ``K``.
        baseline_role: the stream whose camera_info gives ``baseline`` (``None``: not stored).
    """

    streams: tuple[StreamSpec, ...]
    camera_role: str
    baseline_role: str | None = None

    def __post_init__(self) -> None:
        roles = [s.role for s in self.streams]
        if self.camera_role not in roles:
            raise ValueError(f"camera_role {self.camera_role!r} is not one of the streams {roles}")
        if sum(s.kind == "depth" for s in self.streams) > 1:
            raise ValueError("a frame layout holds at most one depth stream")

    @property
    def color_roles(self) -> tuple[str, ...]:
        return tuple(s.role for s in self.streams if s.kind == "color")


def resize_color(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(h, w, 3)`` uint8 -> ``(height, width, 3)`` uint8 (area when shrinking, else bilinear)."""
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    shrink = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(h, w)`` float32 metres -> ``(height, width)`` by nearest neighbour (NaN stays NaN)."""
    if depth.shape == (height, width):
        return np.ascontiguousarray(depth, dtype=np.float32)
    return cv2.resize(depth.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)


class _SizeCheck:
    """Per-stream image sizes: the first one seen is the stream's size for the whole recording."""

    def __init__(self, bag_name: str, layout: FrameLayout):
        self.bag_name, self.layout = bag_name, layout
        self.sizes: dict[str, tuple[int, int]] = {}

    def problem(self, sample: SyncedSample) -> str | None:
        for spec in self.layout.streams:
            frame = sample[spec.role]
            h, w = frame.image.shape[:2]
            first = self.sizes.setdefault(spec.role, (w, h))
            if first != (w, h):
                return (f"{self.bag_name}: {spec.topic}: image at {format_stamp(frame.stamp_ns)} is {w}x{h} but the "
                        f"earlier images on this topic are {first[0]}x{first[1]}; one recording must keep one "
                        f"image size per camera")
        colors = [s for s in self.layout.streams if s.kind == "color"]
        for other in colors[1:]:
            a, b = sample[colors[0].role], sample[other.role]
            if a.image.shape != b.image.shape:
                return (f"{self.bag_name}: {other.topic}: image at {format_stamp(b.stamp_ns)} is "
                        f"{b.image.shape[1]}x{b.image.shape[0]} but {colors[0].topic} is "
                        f"{a.image.shape[1]}x{a.image.shape[0]} at {format_stamp(a.stamp_ns)}; the images of a "
                        f"pair must have one size")
        return None


def frames_from_bag(
    bag: Bag,
    layout: FrameLayout,
    *,
    width: int,
    height: int,
    pose_source: PoseSource | None = None,
    tolerance_s: float = 0.015,
    max_gap_s: float = 0.5,
    on_error: str = "raise",
) -> Iterator[dict[str, np.ndarray]]:
    """Cache rows (module docstring) for every usable synchronised sample of ``bag``.

    Raises:
        BagTopicError: a stream's topic or camera_info is missing or has the wrong type
            (raised when the generator starts, before any image is decoded).
        BagDecodeError: a bad frame with ``on_error="raise"`` (names bag, topic and time).
    """
    samples = SyncedSamples(bag, layout.streams, tolerance_s=tolerance_s, pose_source=pose_source,
                            on_error=on_error)
    sizes = _SizeCheck(bag.name, layout)
    max_gap_ns = int(round(max_gap_s * 1e9))
    sequence, last_stamp, skipped_before = -1, None, 0
    size_skips = 0
    for sample in samples:
        problem = sizes.problem(sample)
        if problem is not None:
            if on_error == "raise":
                raise BagDecodeError(problem)
            size_skips += 1
            if size_skips <= 3:
                warnings.warn(BagWarning(f"{problem} (skipped)"), stacklevel=2)
            last_stamp = None  # the next frame starts a new sequence
            continue
        skipped = sum(samples.stats.skipped.values())
        if last_stamp is None or skipped != skipped_before or sample.stamp_ns - last_stamp > max_gap_ns:
            sequence += 1
        skipped_before, last_stamp = skipped, sample.stamp_ns
        yield _row(sample, layout, width, height, sequence)
    if size_skips > 3:
        warnings.warn(BagWarning(f"{bag.name}: {size_skips} frames in all were skipped for a wrong image size"),
                      stacklevel=2)


def _row(sample: SyncedSample, layout: FrameLayout, width: int, height: int, sequence: int) -> dict[str, np.ndarray]:
    row: dict[str, np.ndarray] = {}
    for spec in layout.streams:
        frame = sample[spec.role]
        if spec.kind == "depth":
            row["depth"] = resize_depth(frame.image, width, height)
        else:
            row[spec.role] = resize_color(frame.image, width, height)
    reference = sample[layout.camera_role]
    row["K"] = reference.camera.resized(width, height).K.astype(np.float32)
    if layout.baseline_role is not None:
        row["baseline"] = np.float32(sample[layout.baseline_role].camera.baseline)
    if reference.T_fixed_camera is not None:
        row["pose"] = np.asarray(reference.T_fixed_camera, dtype=np.float64)
    row["stamp_ns"] = np.int64(sample.stamp_ns)
    row["sequence"] = np.int32(sequence)
    return row
