"""Opening recordings (rosbag2 directory, ``.mcap``, ``.db3``, ROS 1 ``.bag``) with ``rosbags``.

:func:`open_bag` wraps :class:`rosbags.highlevel.AnyReader` and turns every failure into a
:class:`~depth_training.bags.errors.BagError` that names the file (and the topic and time once
messages are being read). Message types are normalised by ``rosbags`` to the ROS 2 spelling
(``sensor_msgs/msg/Image``) for ROS 1 bags too; ROS 1 messages keep their field names
(``CameraInfo.K`` instead of ``.k``), which the decoders accept.

Header stamps of messages whose first field is ``std_msgs/Header`` are read straight from the
serialised bytes (:meth:`Bag.header_stamp_ns`), so synchronising streams never deserialises
a frame that is then dropped.
"""
from __future__ import annotations

import struct
import warnings
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from depth_training.bags.errors import (
    BagOpenError,
    BagReadError,
    BagTopicError,
    BagWarning,
    format_stamp,
)

__all__ = [
    "IMAGE_TYPE",
    "COMPRESSED_IMAGE_TYPE",
    "IMAGE_TYPES",
    "CAMERA_INFO_TYPE",
    "TF_TYPE",
    "TF_TYPES",
    "JOINT_STATE_TYPE",
    "STRING_TYPE",
    "TopicMeta",
    "RawMessage",
    "Bag",
    "open_bag",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = frozenset({IMAGE_TYPE, COMPRESSED_IMAGE_TYPE})
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
TF_TYPES = frozenset({TF_TYPE, "tf/msg/tfMessage"})  # the second: old ROS 1 bags (same fields)
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
STRING_TYPE = "std_msgs/msg/String"

_STORAGE_SUFFIXES = {".mcap": "rosbag2 (mcap)", ".db3": "rosbag2 (sqlite3)", ".bag": "ROS 1 bag"}


@dataclass(frozen=True)
class TopicMeta:
    """A topic as the bag's index describes it."""

    name: str
    msgtype: str | None  # None when several connections disagree on the type
    count: int
    has_header: bool  # first field is std_msgs/Header (stamps readable without deserialising)


@dataclass(frozen=True)
class RawMessage:
    """One serialised message: topic, type, log (receive) time in ns, bytes."""

    topic: str
    msgtype: str
    log_ns: int
    data: bytes | memoryview


def _open_hint(path: Path, text: str) -> str:
    low = text.lower()
    if "end magic" in low or "seems to be empty" in low:
        return " (truncated or unfinished MCAP file: the recording was probably killed before it was closed)"
    if "malformed" in low or "not a database" in low:
        return " (corrupt or truncated sqlite3 database)"
    if "not indexed" in low:
        return " (the ROS 1 recording was not closed properly; `rosbag reindex` can repair it)"
    if "index looks damaged" in low or "header could not be read" in low:
        return " (truncated or unindexed ROS 1 bag; `rosbag reindex` can repair it)"
    if "magic is invalid" in low:
        return " (not an MCAP file, or its start is corrupt)"
    return ""


def _storage_file_of(directory: Path) -> Path | None:
    files = sorted(p for p in directory.iterdir() if p.suffix in (".mcap", ".db3"))
    return files[0] if len(files) == 1 else None


class Bag:
    """An open recording. Use :func:`open_bag`; close with :meth:`close` or a ``with`` block."""

    def __init__(self, path: str | Path):
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.exists():
            raise BagOpenError(f"{self.name}: no such file or directory")
        open_path = self.path
        if self.path.is_dir():
            if not (self.path / "metadata.yaml").exists():
                single = _storage_file_of(self.path)
                if single is None:
                    raise BagOpenError(f"{self.name}: not a rosbag2 directory (no metadata.yaml and not exactly "
                                       f"one .mcap/.db3 file in it)")
                warnings.warn(BagWarning(f"{self.name}: metadata.yaml is missing (recording not closed?); "
                                         f"reading {single.name} directly"), stacklevel=2)
                open_path = single
            self.storage = "rosbag2 directory"
        elif self.path.suffix in _STORAGE_SUFFIXES:
            self.storage = _STORAGE_SUFFIXES[self.path.suffix]
        else:
            raise BagOpenError(f"{self.name}: not a bag: expected a rosbag2 directory, a .mcap or .db3 file, "
                               f"or a ROS 1 .bag file")
        self.is_ros1 = open_path.suffix == ".bag"
        #: what :mod:`.recover` read from a cut-off recording (None for a properly closed one)
        self.recovery = None
        self._recovered_dir = None  # weakref.finalize removing the recovered copy
        try:
            self._reader = AnyReader([open_path], default_typestore=get_typestore(Stores.ROS2_KILTED))
            self._reader.open()
        except Exception as exc:  # rosbags raises AnyReaderError, but also UnicodeDecodeError, struct.error ...
            text = " ".join(str(a) for a in exc.args) or type(exc).__name__
            if not self._open_recovered(text):
                raise BagOpenError(f"{self.name}: cannot open: {text}{_open_hint(self.path, text)}") from None
        if self.path.is_dir() and open_path is self.path:
            kinds = {p.suffix for p in self.path.iterdir()} & {".mcap", ".db3"}
            self.storage = ", ".join(_STORAGE_SUFFIXES[k] for k in sorted(kinds)) or "rosbag2"
        elif open_path is not self.path:
            self.storage = _STORAGE_SUFFIXES[open_path.suffix]
        self._connections: dict[str, list] = {}
        for conn in self._reader.connections:
            self._connections.setdefault(conn.topic, []).append(conn)
        fielddefs = self._reader.typestore.fielddefs
        self.topics: dict[str, TopicMeta] = {}
        for name, conns in sorted(self._connections.items()):
            types = {c.msgtype for c in conns}
            msgtype = types.pop() if len(types) == 1 else None
            fields = fielddefs.get(msgtype, ((), ()))[1] if msgtype else ()
            has_header = bool(fields) and fields[0][0] == "header" and fields[0][1][1] == "std_msgs/msg/Header"
            self.topics[name] = TopicMeta(name, msgtype, sum(c.msgcount for c in conns), has_header)
        self._stamp_fast = self._header_layout_ok()
        image_fields = [f[0] for f in fielddefs.get(IMAGE_TYPE, ((), ()))[1]]
        #: serialised sensor_msgs/Image can be parsed in place (see :mod:`.image_wire`)
        self.image_wire_ok = self._stamp_fast and image_fields == [
            "header", "height", "width", "encoding", "is_bigendian", "step", "data"]
        if self.message_count == 0:
            warnings.warn(BagWarning(
                f"{self.name}: no messages are indexed (an empty recording"
                + (", or a ROS 1 bag that was not closed: `rosbag reindex` repairs it)" if self.is_ros1 else ")")),
                stacklevel=2)

    def _open_recovered(self, error_text: str) -> bool:
        """Open a cut-off MCAP/sqlite3 recording through a recovered copy in a temporary directory.

        Returns False when the error is not a cut-off file; raises :class:`BagOpenError` when it is
        one but nothing can be recovered. Warns (:class:`BagWarning`) with what was recovered.
        """
        import shutil
        import tempfile

        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        from depth_training.bags.recover import is_cut_off, recover_bag, storage_file_of

        storage = storage_file_of(self.path)
        if storage is None or not is_cut_off(error_text):
            return False
        tmp = Path(tempfile.mkdtemp(prefix="depth-train-recovered-"))
        try:
            self.recovery = recover_bag(self.path, tmp / "bag")
            self._reader = AnyReader([tmp / "bag"], default_typestore=get_typestore(Stores.ROS2_KILTED))
            self._reader.open()
        except Exception as exc:  # noqa: BLE001 - not recoverable either: report both problems
            shutil.rmtree(tmp, ignore_errors=True)
            why = str(exc).split(": ", 1)[-1] if isinstance(exc, BagOpenError) else f"{type(exc).__name__}: {exc}"
            raise BagOpenError(f"{self.name}: cannot open: {error_text}{_open_hint(self.path, error_text)}; "
                               f"reading it up to the cut failed too: {why}") from None
        self._recovered_dir = weakref.finalize(self, shutil.rmtree, tmp, True)  # also when never closed
        warnings.warn(BagWarning(f"{self.name}: {self.recovery.describe()}; reading those "
                                 f"(`depth-train repair {self.name}` writes a properly closed copy)"), stacklevel=3)
        return True

    def _header_layout_ok(self) -> bool:
        """True when std_msgs/Header starts with the stamp where the fast path expects it."""
        fields = [f[0] for f in self._reader.typestore.fielddefs.get("std_msgs/msg/Header", ((), ()))[1]]
        return fields[:2] == (["seq", "stamp"] if self.is_ros1 else ["stamp", "frame_id"])

    # ------------------------------------------------------------------ context
    def close(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None
                if self._recovered_dir is not None:
                    self._recovered_dir()  # removes the recovered copy
                    self._recovered_dir = None

    def __enter__(self) -> "Bag":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bag({self.name!r}, {self.storage}, {len(self.topics)} topics)"

    # ------------------------------------------------------------------ metadata
    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Log time of the last message (rosbags' end_time is one past it)."""
        return int(self._reader.end_time) - 1 if self.message_count else int(self._reader.end_time)

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    def topics_of_type(self, types: Iterable[str]) -> list[str]:
        wanted = set(types)
        return [t.name for t in self.topics.values() if t.msgtype in wanted]

    def require_topic(self, topic: str, types: Iterable[str], role: str = "") -> TopicMeta:
        """The topic's metadata, or a :class:`BagTopicError` naming what is wrong (missing, wrong type, empty)."""
        types = sorted(types)
        label = f" ({role})" if role else ""
        meta = self.topics.get(topic)
        if meta is None:
            candidates = self.topics_of_type(types)
            hint = f"; topics of type {' or '.join(types)} in the bag: {', '.join(candidates)}" if candidates \
                else f"; the bag has no topic of type {' or '.join(types)}"
            raise BagTopicError(f"{self.name}: {topic}{label}: topic not in the bag{hint}")
        if meta.msgtype is None:
            kinds = sorted({c.msgtype for c in self._connections[topic]})
            raise BagTopicError(f"{self.name}: {topic}{label}: recorded with several types {kinds}")
        if meta.msgtype not in types:
            raise BagTopicError(f"{self.name}: {topic}{label}: has type {meta.msgtype}, expected {' or '.join(types)}")
        if meta.count == 0:
            raise BagTopicError(f"{self.name}: {topic}{label}: no messages recorded")
        return meta

    # ------------------------------------------------------------------ messages
    def raw_messages(self, topics: Iterable[str] | None = None, *, start_ns: int | None = None,
                     stop_ns: int | None = None) -> Iterator[RawMessage]:
        """Serialised messages of ``topics`` (all when ``None``) in log-time order, without deserialising."""
        if topics is None:
            conns = list(self._reader.connections)
        else:
            conns = []
            for topic in topics:
                if topic not in self._connections:
                    raise BagTopicError(f"{self.name}: {topic}: topic not in the bag")
                conns.extend(self._connections[topic])
            if not conns:
                return
        it = self._reader.messages(connections=conns, start=start_ns, stop=stop_ns)
        last = "the start"
        while True:
            try:
                conn, log_ns, data = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise BagReadError(f"{self.name}: reading failed after {last}: {type(exc).__name__}: {exc} "
                                   f"(truncated or corrupt file)") from None
            last = f"{conn.topic} at log time {format_stamp(log_ns)}"
            yield RawMessage(conn.topic, conn.msgtype, log_ns, data)

    def deserialize(self, raw: RawMessage):
        """The message object (rosbags dataclass); errors name file, topic and log time."""
        try:
            return self._reader.deserialize(raw.data, raw.msgtype)
        except Exception as exc:
            raise BagReadError(f"{self.name}: {raw.topic}: cannot deserialise {raw.msgtype} at log time "
                               f"{format_stamp(raw.log_ns)}: {exc}") from None

    def messages(self, topics: Iterable[str] | None = None, **kw) -> Iterator[tuple[RawMessage, object]]:
        """``(raw, message)`` pairs of ``topics`` in log-time order."""
        for raw in self.raw_messages(topics, **kw):
            yield raw, self.deserialize(raw)

    def first_message(self, topic: str):
        """The first message (by log time) of ``topic``, deserialised, or ``None`` if it has none."""
        for _, msg in self.messages([topic]):
            return msg
        return None

    def header_stamp_ns(self, raw: RawMessage) -> int:
        """``header.stamp`` in ns, read from the serialised bytes when the layout allows it.

        ROS 2 CDR: 4-byte encapsulation header (``00 01`` little / ``00 00`` big endian), then
        ``int32 sec, uint32 nanosec``. ROS 1: ``uint32 seq, uint32 secs, uint32 nsecs`` (LE).
        """
        meta = self.topics.get(raw.topic)
        if meta is None or not meta.has_header:
            raise BagTopicError(f"{self.name}: {raw.topic}: type {raw.msgtype} has no std_msgs/Header")
        data = raw.data
        if self._stamp_fast and len(data) >= 12 and (self.is_ros1 or (data[0] == 0 and data[1] in (0, 1))):
            if self.is_ros1:
                sec, nsec = struct.unpack_from("<II", data, 4)
            else:
                sec, nsec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
        else:
            stamp = self.deserialize(raw).header.stamp
            sec, nsec = int(stamp.sec), int(stamp.nanosec)
        if not 0 <= nsec < 1_000_000_000:
            raise BagReadError(f"{self.name}: {raw.topic}: corrupt header stamp (nanosec={nsec}) at log time "
                               f"{format_stamp(raw.log_ns)}")
        return sec * 1_000_000_000 + nsec


def open_bag(path: str | Path) -> Bag:
    """Open a rosbag2 directory, a single ``.mcap`` / ``.db3`` file, or a ROS 1 ``.bag``.

    Raises:
        BagOpenError: missing path, unknown format, truncated / corrupt / unreadable file; the
            message names the file and, where it can, how to repair it.
    """
    return Bag(path)
