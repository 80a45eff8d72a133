"""Zero-copy view of a serialised ``sensor_msgs/Image`` (ROS 2 CDR or ROS 1), for fast decoding.

``rosbags`` deserialisation copies the pixel buffer; :func:`parse_image` instead returns an
object with the Image fields whose ``data`` is a ``memoryview`` into the message bytes, so
:func:`depth_nodes.image_encodings.decode_image` makes the only copy. Any inconsistency
(lengths past the end of the buffer, an unknown CDR encapsulation) returns ``None`` and the
caller falls back to the full deserialiser, which reports the error.

Wire layouts (``std_msgs/Header`` first):

* ROS 2 CDR: 4-byte encapsulation (``00 01`` little / ``00 00`` big endian), then, with
  alignment relative to byte 4: ``int32 sec, uint32 nanosec, string frame_id, uint32 height,
  uint32 width, string encoding, uint8 is_bigendian, uint32 step, uint8[] data`` where a
  string is ``uint32 length`` (including the NUL) + bytes, and a sequence is ``uint32 count`` + items.
* ROS 1: ``uint32 seq, uint32 secs, uint32 nsecs, string frame_id, ...`` the same fields,
  little endian, no alignment, strings without NUL.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["WireHeader", "WireImage", "parse_image"]


@dataclass(frozen=True)
class WireHeader:
    stamp_ns: int
    frame_id: str


@dataclass(frozen=True)
class WireImage:
    """The fields of a sensor_msgs/Image; ``data`` is a view into the serialised message."""

    header: WireHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


class _Cursor:
    def __init__(self, buf: memoryview, start: int, align_base: int, endian: str, aligned: bool):
        self.buf, self.pos, self.base, self.endian, self.aligned = buf, start, align_base, endian, aligned

    def _align(self, n: int) -> None:
        if self.aligned:
            self.pos += (-(self.pos - self.base)) % n

    def u32(self) -> int:
        self._align(4)
        if self.pos + 4 > len(self.buf):
            raise IndexError
        (v,) = struct.unpack_from(self.endian + "I", self.buf, self.pos)
        self.pos += 4
        return v

    def i32(self) -> int:
        self._align(4)
        if self.pos + 4 > len(self.buf):
            raise IndexError
        (v,) = struct.unpack_from(self.endian + "i", self.buf, self.pos)
        self.pos += 4
        return v

    def u8(self) -> int:
        if self.pos + 1 > len(self.buf):
            raise IndexError
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def raw(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise IndexError
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def string(self, nul: bool) -> str:
        n = self.u32()
        b = bytes(self.raw(n))
        return (b[:-1] if nul and b.endswith(b"\0") else b).decode("utf-8")


def parse_image(data: bytes | memoryview, ros1: bool) -> WireImage | None:
    """The Image fields of serialised ``data`` (see module doc), or ``None`` when not parseable."""
    buf = memoryview(data).cast("B") if not isinstance(data, memoryview) or data.format != "B" else data
    try:
        if ros1:
            c = _Cursor(buf, 4, 0, "<", aligned=False)  # skip seq
            sec, nsec = c.u32(), c.u32()
        else:
            if len(buf) < 4 or buf[0] != 0 or buf[1] not in (0, 1):
                return None
            c = _Cursor(buf, 4, 4, "<" if buf[1] == 1 else ">", aligned=True)
            sec, nsec = c.i32(), c.u32()
        frame_id = c.string(nul=not ros1)
        height, width = c.u32(), c.u32()
        encoding = c.string(nul=not ros1)
        is_bigendian = c.u8()
        step = c.u32()
        n = c.u32()
        pixels = c.raw(n)
    except (IndexError, UnicodeDecodeError, struct.error):
        return None
    if nsec >= 1_000_000_000:
        return None
    return WireImage(WireHeader(sec * 1_000_000_000 + nsec, frame_id), height, width, encoding, is_bigendian,
                     step, pixels)
