"""Time-synchronised, decoded samples from a bag, streamed (the whole bag is never in memory).

Usage::

    with open_bag("run1.mcap") as bag:
        samples = SyncedSamples(bag, [
            StreamSpec("color", "/camera/color/image_raw", "color", "/camera/color/camera_info"),
            StreamSpec("depth", "/camera/depth/image_rect_raw", "depth"),
        ], tolerance_s=0.01)
        for sample in samples:
            rgb = sample["color"].image          # (H, W, 3) uint8
            depth = sample["depth"].image        # (H, W) float32 metres, NaN = no reading
            K = sample["color"].camera.K         # (3, 3)
        print(samples.stats)

The first stream is the reference: one :class:`SyncedSample` per reference message that has a
partner within ``tolerance_s`` on every other stream (nearest header stamp, see
:mod:`depth_training.bags.matcher`). Samples come in increasing stamp order, so a dataset for
self-supervised video can keep a sliding window of neighbours. Each frame can carry its camera
model (from its camera_info topic, read along with the images: the calibration published at or
before its stamp) and its pose in a fixed
frame (from a pose source: TF or URDF forward kinematics, see
:mod:`depth_training.kinematics.camera_poses`).

Problems are never silent: missing topics, wrong types and missing camera_info fail up front
(:class:`~depth_training.bags.errors.BagTopicError`); undecodable frames, size mismatches with
camera_info and missing poses raise :class:`~depth_training.bags.errors.BagDecodeError` naming
file, topic and time (``on_error="raise"``) or are skipped with a
:class:`~depth_training.bags.errors.BagWarning` (``on_error="skip"``); late, out-of-order and
unmatched messages are counted in :attr:`SyncedSamples.stats` and warned about.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags.decode import CameraInfoTrack, check_image_kind_types, decode_for_kind
from depth_training.bags.errors import BagDecodeError, BagError, BagWarning, format_stamp
from depth_training.bags.matcher import Match, MatchStats, StampMatcher
from depth_training.bags.image_wire import parse_image
from depth_training.bags.reader import IMAGE_TYPE, Bag, RawMessage

__all__ = ["StreamSpec", "Frame", "SyncedSample", "PoseSource", "SyncStats", "SyncedSamples"]


@dataclass(frozen=True)
class StreamSpec:
    """One image stream to read.

    Attributes:
        role: the key of this stream in each sample (``"color"``, ``"depth"``, ``"left"`` ...).
        topic: the bag topic (``sensor_msgs/Image`` or ``CompressedImage``).
        kind: ``"color"`` -> ``(H, W, 3)`` uint8 RGB; ``"depth"`` -> ``(H, W)`` float32 metres
            (NaN invalid); ``"raw"`` -> decoded array in its own encoding.
        camera_info: camera_info topic for this stream, or ``None`` (no camera model).
    """

    role: str
    topic: str
    kind: str = "color"
    camera_info: str | None = None


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded image of a sample.

    Attributes:
        role, topic: which stream it came from.
        stamp_ns: its header stamp (ns).
        frame_id: its header frame_id (leading ``/`` removed).
        encoding: the recorded encoding (after JPEG/PNG decoding: ``bgr8``, ``mono8``, ``16UC1`` ...).
        image: see :class:`StreamSpec` ``kind``.
        camera: the camera model valid at ``stamp_ns`` (``None`` without camera_info).
        T_fixed_camera: ``(4, 4)`` float64 pose of ``frame_id`` in the pose source's fixed frame
            at ``stamp_ns`` (``None`` without a pose source).
    """

    role: str
    topic: str
    stamp_ns: int
    frame_id: str
    encoding: str
    image: np.ndarray
    camera: PinholeCamera | None = None
    T_fixed_camera: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SyncedSample:
    """Frames of all streams matched to one reference message, keyed by role."""

    index: int  # 0, 1, 2 ... in emission order
    stamp_ns: int  # the reference frame's stamp
    frames: dict[str, Frame]

    def __getitem__(self, role: str) -> Frame:
        return self.frames[role]


class PoseSource(Protocol):
    """Anything that gives ``T_fixed_frame`` ``(4, 4)`` for a frame at a stamp (raises LookupError)."""

    fixed_frame: str

    def lookup(self, frame: str, stamp_ns: int) -> np.ndarray: ...


@dataclass
class SyncStats(MatchStats):
    """Matching counts (see :class:`~depth_training.bags.matcher.MatchStats`) plus frames skipped."""

    skipped: dict[str, int] = field(default_factory=dict)  # undecodable / no camera / no pose
    emitted: int = 0


class _Reporter:
    """Throttled :class:`BagWarning` per (topic, kind): the first ``limit`` and then one notice."""

    def __init__(self, bag_name: str, limit: int):
        self.bag_name, self.limit = bag_name, limit
        self.counts: dict[tuple[str, str], int] = {}

    def __call__(self, topic: str, kind: str, text: str) -> None:
        n = self.counts[(topic, kind)] = self.counts.get((topic, kind), 0) + 1
        if n <= self.limit:
            warnings.warn(BagWarning(f"{self.bag_name}: {topic}: {text}"), stacklevel=4)
        if n == self.limit + 1:
            warnings.warn(BagWarning(f"{self.bag_name}: {topic}: further '{kind}' warnings suppressed; "
                                     f"see the statistics"), stacklevel=4)


_EVENT_TEXT = {
    "late": "message stamped {t} arrived after the samples it belonged to were emitted "
            "(increase reorder/max_wait); dropped",
    "out_of_order": "header stamp {t} is earlier than the previous one on this topic (out of order)",
    "unmatched": "no message within the tolerance of the reference frame at {t}; sample dropped",
    "overflow": "buffer full; message stamped {t} dropped (the reference stream lags or is missing)",
}


class SyncedSamples:
    """Iterable of :class:`SyncedSample` over a bag (see module doc). Each iteration re-reads the bag.

    Args:
        bag: an open :class:`~depth_training.bags.reader.Bag`.
        streams: the streams; the first one is the reference unless ``reference`` names another.
        tolerance_s: largest allowed ``|stamp - reference stamp|``.
        reorder_s, max_wait_s, max_queue: see :class:`~depth_training.bags.matcher.StampMatcher`.
        pose_source: optional; adds ``T_fixed_camera`` to every frame.
        on_error: ``"raise"`` (default) or ``"skip"`` a sample with a bad frame (warned, counted).
        start_ns, stop_ns: read only messages logged in ``[start_ns, stop_ns)``.
        warn_limit: warnings per topic and kind before they are summarised.
    """

    def __init__(self, bag: Bag, streams: Sequence[StreamSpec], *, reference: str | None = None,
                 tolerance_s: float = 0.015, reorder_s: float = 0.1, max_wait_s: float = 1.0,
                 max_queue: int = 256, pose_source: PoseSource | None = None, on_error: str = "raise",
                 start_ns: int | None = None, stop_ns: int | None = None, warn_limit: int = 3):
        if not streams:
            raise ValueError("streams: at least one stream is needed")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        roles = [s.role for s in streams]
        topics = [s.topic for s in streams]
        if len(set(roles)) != len(roles) or len(set(topics)) != len(topics):
            raise ValueError(f"streams: roles and topics must be unique, got {list(zip(roles, topics))}")
        self.bag, self.streams = bag, list(streams)
        self.reference = reference or roles[0]
        if self.reference not in roles:
            raise ValueError(f"reference: {self.reference!r} is not one of the roles {roles}")
        for s in self.streams:
            check_image_kind_types(bag, s.topic, s.kind)
        # camera_info is read along with the images; the first message is checked up front
        self._first_info = {t: CameraInfoTrack.first_of(bag, t) for t in {s.camera_info for s in self.streams} if t}
        self.cameras: dict[str, CameraInfoTrack] = {}
        self.tolerance_ns = int(round(tolerance_s * 1e9))
        self.reorder_ns, self.max_wait_ns = int(round(reorder_s * 1e9)), int(round(max_wait_s * 1e9))
        self.max_queue, self.pose_source, self.on_error = max_queue, pose_source, on_error
        self.start_ns, self.stop_ns, self.warn_limit = start_ns, stop_ns, warn_limit
        self.stats = SyncStats()

    def __iter__(self) -> Iterator[SyncedSample]:
        bag = self.bag
        by_topic = {s.topic: s for s in self.streams}
        by_role = {s.role: s for s in self.streams}
        reporter = _Reporter(bag.name, self.warn_limit)

        def report(role: str, kind: str, stamp: int) -> None:
            reporter(by_role[role].topic, kind, _EVENT_TEXT[kind].format(t=format_stamp(stamp)))

        matcher = StampMatcher([s.role for s in self.streams], self.reference, tolerance_ns=self.tolerance_ns,
                               reorder_ns=self.reorder_ns, max_wait_ns=self.max_wait_ns,
                               max_queue=self.max_queue, report=report)
        self.stats = stats = SyncStats(seen=matcher.stats.seen)
        matcher.stats = stats
        infos = {}
        for topic, first in self._first_info.items():
            infos[topic] = CameraInfoTrack(topic)
            infos[topic].add(first.stamps_ns[0], first.cameras[0])
        self.cameras = {s.role: infos[s.camera_info] for s in self.streams if s.camera_info}
        for raw in bag.raw_messages(list(by_topic) + list(infos), start_ns=self.start_ns, stop_ns=self.stop_ns):
            if raw.topic in infos:
                try:
                    infos[raw.topic].add_message(bag, bag.deserialize(raw))
                except BagDecodeError as err:
                    if self.on_error == "raise":
                        raise
                    text = f"{err} (ignored)".removeprefix(f"{bag.name}: {raw.topic}: ")
                    reporter(raw.topic, "bad camera_info", text)
                continue
            stamp = bag.header_stamp_ns(raw)
            if stamp == 0:
                self._bad(reporter, by_topic[raw.topic], BagDecodeError(
                    f"{bag.name}: {raw.topic}: header stamp is zero at log time {format_stamp(raw.log_ns)} "
                    f"(the driver does not stamp its messages)"))
                continue
            for match in matcher.push(by_topic[raw.topic].role, stamp, raw):
                sample = self._build(match, by_role, reporter)
                if sample is not None:
                    yield sample
        for match in matcher.finish():
            sample = self._build(match, by_role, reporter)
            if sample is not None:
                yield sample
        self._summarise(by_role)

    def _bad(self, reporter: _Reporter, spec: StreamSpec, err: BagError) -> None:
        if self.on_error == "raise":
            raise err
        self.stats.bump("skipped", spec.role)
        reporter(spec.topic, "skipped", f"{err} (skipped)".removeprefix(f"{self.bag.name}: {spec.topic}: "))

    def _build(self, match: Match, by_role: dict[str, StreamSpec], reporter: _Reporter) -> SyncedSample | None:
        frames = {}
        for role, (stamp, raw) in match.parts.items():
            spec = by_role[role]
            try:
                frames[role] = self._frame(spec, stamp, raw)
            except BagError as err:
                self._bad(reporter, spec, err)
                return None
        sample = SyncedSample(self.stats.emitted, match.stamp_ns, frames)
        self.stats.emitted += 1
        return sample

    def _frame(self, spec: StreamSpec, stamp: int, raw: RawMessage) -> Frame:
        bag = self.bag
        msg = parse_image(raw.data, bag.is_ros1) if raw.msgtype == IMAGE_TYPE and bag.image_wire_ok else None
        if msg is None:
            msg = bag.deserialize(raw)
        image, encoding = decode_for_kind(bag, spec.topic, msg, raw.msgtype, spec.kind, stamp)
        frame_id = msg.header.frame_id.lstrip("/")
        camera = None
        if spec.role in self.cameras:
            camera = self.cameras[spec.role].camera_at(stamp)
            if image.shape[:2] != (camera.height, camera.width):
                raise BagDecodeError(
                    f"{bag.name}: {spec.topic}: image at {format_stamp(stamp)} is {image.shape[1]}x{image.shape[0]} "
                    f"but {spec.camera_info} says {camera.width}x{camera.height}")
        pose = None
        if self.pose_source is not None:
            try:
                pose = self.pose_source.lookup(frame_id, stamp)
            except LookupError as exc:
                raise BagDecodeError(f"{bag.name}: {spec.topic}: no pose for frame {frame_id!r} at "
                                     f"{format_stamp(stamp)}: {exc}") from None
        return Frame(spec.role, spec.topic, stamp, frame_id, encoding, image, camera, pose)

    def _summarise(self, by_role: dict[str, StreamSpec]) -> None:
        st = self.stats
        ref = st.seen.get(self.reference, 0)
        problems = []
        for name in ("unmatched", "late", "overflow", "skipped"):
            for role, n in getattr(st, name).items():
                problems.append(f"{n} {name} on {by_role[role].topic}")
        if problems:
            warnings.warn(BagWarning(f"{self.bag.name}: {st.emitted} samples from {ref} reference frames "
                                     f"({by_role[self.reference].topic}): {', '.join(problems)}"), stacklevel=3)
