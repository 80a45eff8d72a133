"""Reading recordings that were cut off (dead battery, killed recorder) up to the last complete message.

A recorder that dies leaves:

* an **MCAP** file without its summary, footer and end magic, usually cut inside a chunk; every
  record before the cut is intact. :func:`scan_mcap` walks the records from the start
  (``opcode u8, length u64, content``), decompresses each chunk as far as its bytes go (``""``,
  ``zstd`` and ``lz4`` chunks, streamed, so a chunk cut in the middle still yields the messages
  in its first part) and stops at the first record that is incomplete or inconsistent;
* a **sqlite3** ``.db3`` whose last pages were never written: SQLite then refuses the whole file
  ("database disk image is malformed"). :func:`scan_sqlite3` reads a copy that is cut back to
  whole pages and padded with empty pages to the size its header declares, so every page that
  *was* written is readable; rows come out in insertion order until the first missing page.

:func:`recover_bag` writes what was found into a properly closed rosbag2 directory (same
storage as the input) with ``rosbags``' writer and returns a :class:`Recovery` saying how much
was recovered and where it stopped. ``depth-train repair BAG`` runs it; every other command
does it into a temporary directory when it meets a cut-off file (see :mod:`.reader`).

Messages are kept only when they are complete records; the last recovered message of each
topic is also deserialised, and dropped if it does not parse (a torn write of a format without
per-record checksums).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import tempfile
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from depth_training.bags.errors import BagOpenError, format_stamp

__all__ = ["Recovery", "RecoveredTopic", "scan_mcap", "scan_sqlite3", "recover_bag", "storage_file_of", "is_cut_off"]

MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END, _OP_FOOTER = 0x03, 0x04, 0x05, 0x06, 0x0F, 0x02
# Records after the data section (summary); reaching one means the data section ended cleanly.
_SUMMARY_OPS = {0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E}


@dataclass
class RecoveredTopic:
    """A topic of a cut-off recording: enough to write it again."""

    name: str
    msgtype: str
    msgdef: str
    rihs01: str
    serialization_format: str = "cdr"
    offered_qos_profiles: list = field(default_factory=list)


@dataclass
class Recovery:
    """What was read from a cut-off recording."""

    source: Path
    storage: str  # "mcap" | "sqlite3"
    file_bytes: int
    stopped_at_byte: int  # offset of the first unusable byte (== file_bytes when the cut fell between records)
    reason: str  # why reading stopped
    topics: dict[int, RecoveredTopic]
    #: (topic id, log time ns, serialised data) in file order; empty when a ``sink`` took them
    messages: list[tuple[int, int, bytes]] = field(default_factory=list)
    complete: bool = False  # True when the file turned out to be whole (nothing to recover)
    counts: dict[int, int] = field(default_factory=dict)  # messages per topic id
    last_log_ns: int | None = None
    sink: Callable[[int, int, memoryview], None] | None = field(default=None, repr=False)

    def add(self, tid: int, log_ns: int, data) -> None:
        """One complete message: counted, then handed to ``sink`` (streaming) or kept in ``messages``."""
        self.counts[tid] = self.counts.get(tid, 0) + 1
        self.last_log_ns = log_ns if self.last_log_ns is None else max(self.last_log_ns, log_ns)
        if self.sink is not None:
            self.sink(tid, log_ns, data)
        else:
            self.messages.append((tid, log_ns, bytes(data)))

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        """One line: how much was recovered and where it stopped."""
        per_topic = {t: n for t, n in self.counts.items() if n}
        last = self.last_log_ns
        topics = ", ".join(f"{self.topics[t].name} {n}" for t, n in sorted(per_topic.items()))
        return (f"recording was cut off ({self.reason}); recovered {self.message_count} complete messages "
                f"on {len(per_topic)} topics up to log time {format_stamp(last) if last is not None else '-'}, "
                f"stopped at byte {self.stopped_at_byte} of {self.file_bytes} "
                f"({100.0 * self.stopped_at_byte / max(self.file_bytes, 1):.1f}% of the file) [{topics}]")


# ---------------------------------------------------------------------------------------- MCAP
class _Cut(Exception):
    """The data ended (or became inconsistent) inside a record."""


class _Buf:
    def __init__(self, data: bytes | memoryview):
        self.data, self.pos = memoryview(data), 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Cut(f"record needs {n} bytes, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        return bytes(self.take(self.u32())).decode("utf-8")

    def left(self) -> int:
        return len(self.data) - self.pos


def _records(buf: _Buf) -> Iterator[tuple[int, memoryview, int]]:
    """``(opcode, content, offset of the record)`` of each complete record; stops at a partial one."""
    while buf.left():
        start = buf.pos
        try:
            op = buf.take(1)[0]
            length = buf.u64()
            content = buf.take(length)
        except _Cut:
            buf.pos = start
            return
        yield op, content, start


def _chunk_records(compression: str, data: memoryview, uncompressed_size: int) -> tuple[bytes, str | None]:
    """As much of a chunk's decompressed records as ``data`` (possibly cut) gives, and a problem if any."""
    if compression == "":
        return bytes(data[:uncompressed_size]), None
    try:
        if compression == "zstd":
            try:
                from compression import zstd  # Python 3.14
            except ImportError:
                from backports import zstd
            dec = zstd.ZstdDecompressor()
        elif compression == "lz4":
            import lz4.frame

            dec = lz4.frame.LZ4FrameDecompressor()
        else:
            return b"", f"chunk compression {compression!r} is not supported"
        return dec.decompress(bytes(data)), None
    except Exception as exc:  # noqa: BLE001 - a corrupt stream ends the recovery, whatever the codec raises
        return b"", f"{compression} chunk does not decompress ({type(exc).__name__}: {exc})"


def _qos_from_metadata(meta: dict[str, str]) -> list:
    text = meta.get("offered_qos_profiles")
    if not text:
        return []
    try:
        from rosbags.rosbag2.metadata import parse_qos

        return list(parse_qos(text))
    except Exception:  # noqa: BLE001 - QoS is informative; a bad entry is dropped, not fatal
        return []


def _map(path: Path):
    """The file's bytes, memory-mapped (a multi-GB recording is not read into memory)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def scan_mcap(path: str | os.PathLike, sink: Callable[[int, int, memoryview], None] | None = None,
              topics: dict[int, RecoveredTopic] | None = None) -> Recovery:
    """Every complete schema, channel and message of an MCAP file, in file order (see module doc).

    ``sink(topic_id, log_ns, data)`` receives each message as it is found (``data`` is only valid
    during the call); without it they are collected in :attr:`Recovery.messages`. ``topics``: the
    dict to fill with the topics found (default a new one).
    """
    path = Path(path)
    data = _map(path)
    if data[:8] != MCAP_MAGIC:
        raise BagOpenError(f"{path}: not an MCAP file (its first bytes are not the MCAP magic)")
    schemas: dict[int, tuple[str, str, str]] = {}
    topics = {} if topics is None else topics
    result = Recovery(path, "mcap", len(data), len(data), "", topics, sink=sink)
    stopped, reason, complete = len(data), "", False

    def handle(op: int, content: memoryview, where: int) -> None:
        rec = _Buf(content)
        if op == _OP_SCHEMA:
            sid = rec.u16()
            schemas[sid] = (rec.string(), rec.string(), bytes(rec.take(rec.u32())).decode("utf-8", "replace"))
        elif op == _OP_CHANNEL:
            cid, sid = rec.u16(), rec.u16()
            topic, encoding = rec.string(), rec.string()
            meta_buf = _Buf(rec.take(rec.u32()))
            meta = {}
            while meta_buf.left():
                key = meta_buf.string()
                meta[key] = meta_buf.string()
            name, _, msgdef = schemas.get(sid, ("", "", ""))
            if name:
                topics[cid] = RecoveredTopic(topic, name, msgdef, "", encoding or "cdr", _qos_from_metadata(meta))
        elif op == _OP_MESSAGE:
            cid = rec.u16()
            rec.take(4)  # sequence
            log_ns = rec.u64()
            rec.take(8)  # publish time
            if cid in topics:
                result.add(cid, log_ns, rec.take(rec.left()))

    buf = _Buf(data)
    buf.pos = 8
    for op, content, offset in _records(buf):
        if op in (_OP_DATA_END, _OP_FOOTER) or op in _SUMMARY_OPS:
            complete = True
            break
        try:
            if op == _OP_CHUNK:
                rec = _Buf(content)
                rec.take(16)  # message start/end time
                usize = rec.u64()
                rec.take(4)  # crc of the uncompressed records
                compression = rec.string()
                records, problem = _chunk_records(compression, rec.take(rec.u64()), usize)
                inner = _Buf(records)
                for iop, icontent, ioff in _records(inner):
                    handle(iop, icontent, ioff)
                if problem:
                    stopped, reason = offset, problem
                    break
            else:
                handle(op, content, offset)
        except (_Cut, UnicodeDecodeError, struct.error) as exc:
            stopped, reason = offset, f"inconsistent record at byte {offset}: {exc}"
            break
    else:
        # The record loop stopped at a partial record (or at the end of the file).
        stopped = buf.pos
        if buf.pos < len(data):
            op = data[buf.pos]
            if op == _OP_CHUNK:
                reason, stopped = _partial_chunk(data, buf.pos, handle)
            else:
                reason = f"cut inside a record (opcode 0x{op:02x}) at byte {buf.pos}"
        else:
            reason = "no footer: the file ends between two records"
    if complete and not reason:
        reason = "file is complete"
    result.stopped_at_byte, result.reason, result.complete = stopped, reason, complete
    return result


def _partial_chunk(data: bytes, offset: int, handle) -> tuple[str, int]:
    """Messages from a chunk record the file ends in the middle of (handled in place).

    Returns the reason text and the file offset just past the last complete record read (the end
    of the file for a compressed chunk, whose bytes are all consumed by the decompressor).
    """
    rec = _Buf(memoryview(data)[offset + 9:])  # opcode + length
    try:
        rec.take(16)
        usize = rec.u64()
        rec.take(4)
        compression = rec.string()
        declared = rec.u64()
    except _Cut:
        return f"cut inside a chunk header at byte {offset}", offset
    records_at = offset + 9 + rec.pos
    have = rec.data[rec.pos:rec.pos + declared]
    records, problem = _chunk_records(compression, have, usize)
    inner = _Buf(records)
    count = 0
    try:
        for iop, icontent, ioff in _records(inner):
            handle(iop, icontent, ioff)
            count += 1
    except (_Cut, UnicodeDecodeError, struct.error):
        pass
    text = (f"cut inside the chunk starting at byte {offset}: {len(have)} of its {declared} bytes written, "
            f"{count} complete records read from it")
    stop = records_at + inner.pos if compression == "" else len(data)
    return (f"{text}; {problem}" if problem else text), stop


# --------------------------------------------------------------------------------------- sqlite3
def scan_sqlite3(path: str | os.PathLike, sink: Callable[[int, int, memoryview], None] | None = None,
                 topics: dict[int, RecoveredTopic] | None = None) -> Recovery:
    """Topics and messages of a ``.db3`` whose last pages are missing (see module doc; ``sink`` as in
    :func:`scan_mcap`)."""
    path = Path(path)
    with open(path, "rb") as f:
        header = f.read(100)
        size = os.fstat(f.fileno()).st_size
    if header[:16] != b"SQLite format 3\x00" or len(header) < 32:
        raise BagOpenError(f"{path}: not a sqlite3 database (bad header)")
    page = struct.unpack(">H", header[16:18])[0]
    page = 65536 if page == 1 else page
    declared_pages = struct.unpack(">I", header[28:32])[0]
    whole = size // page
    pages = max(declared_pages, whole)
    tmpdir = Path(tempfile.mkdtemp(prefix="depth-train-sqlite-"))
    topics = {} if topics is None else topics
    result = Recovery(path, "sqlite3", size, whole * page, "", topics, sink=sink)
    last_id, reason = 0, ""
    try:
        copy = tmpdir / "bag.db3"
        shutil.copyfile(path, copy)
        os.truncate(copy, whole * page)  # drop the torn last page,
        os.truncate(copy, pages * page)  # then empty (sparse) pages up to the size the header declares
        for suffix in ("-wal",):  # a write-ahead log holds the newest pages; SQLite applies its complete frames
            side = path.with_name(path.name + suffix)
            if side.is_file():
                shutil.copyfile(side, tmpdir / f"bag.db3{suffix}")
        con = sqlite3.connect(copy)
        try:
            defs = {}
            try:
                for ttype, _enc, msgdef, thash in con.execute(
                        "SELECT topic_type, encoding, encoded_message_definition, type_description_hash "
                        "FROM message_definitions"):
                    defs[ttype] = (msgdef, thash)
            except sqlite3.DatabaseError:
                pass  # older schema, or the page is lost: definitions come from the typestore
            try:
                cols = [r[1] for r in con.execute("PRAGMA table_info(topics)")]
                has_hash = "type_description_hash" in cols
                query = "SELECT id, name, type, serialization_format, offered_qos_profiles" + (
                    ", type_description_hash" if has_hash else "") + " FROM topics"
                for row in con.execute(query):
                    msgdef, thash = defs.get(row[2], ("", row[5] if has_hash else ""))
                    topics[int(row[0])] = RecoveredTopic(row[1], row[2], msgdef, thash or "", row[3] or "cdr",
                                                         _qos_from_metadata({"offered_qos_profiles": row[4]}))
            except sqlite3.DatabaseError as exc:
                raise BagOpenError(f"{path}: the topics table is lost ({exc}); nothing can be recovered") from None
            try:
                for mid, tid, stamp, data in con.execute("SELECT id, topic_id, timestamp, data FROM messages"):
                    if tid in topics:
                        result.add(int(tid), int(stamp), data)
                    last_id = int(mid)
                reason = "no rows lost" if whole >= declared_pages else "file shorter than its header says"
            except sqlite3.DatabaseError as exc:
                reason = f"{exc} after message row {last_id}"
        finally:
            con.close()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    result.reason = f"missing pages from byte {whole * page}: {reason}"
    return result


# ------------------------------------------------------------------------------------- writing
def storage_file_of(path: Path) -> Path | None:
    """The one ``.mcap``/``.db3`` of a rosbag2 directory (or ``path`` itself when it is one)."""
    if path.is_file():
        return path if path.suffix in (".mcap", ".db3") else None
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        return files[0] if len(files) == 1 else None
    return None


def is_cut_off(error_text: str) -> bool:
    """True when rosbags' open error means "unfinished MCAP" or "truncated sqlite3"."""
    low = error_text.lower()
    return any(s in low for s in ("end magic is invalid", "seems to be empty", "malformed", "invalid mcap summary",
                                  "truncated record", "chunk size mismatch", "checksum mismatch",
                                  "footer", "not a database"))


class _TailCheck:
    """Deserialises the last message of each topic (a torn write has no checksum in either format)."""

    def __init__(self):
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_KILTED)

    def parses(self, topic: RecoveredTopic, data: bytes) -> bool:
        """False only for a known CDR type whose bytes do not deserialise."""
        from rosbags.typesys import get_types_from_msg

        if topic.serialization_format != "cdr":
            return True
        try:
            if topic.msgtype not in self.store.types and topic.msgdef:
                self.store.register(get_types_from_msg(topic.msgdef, topic.msgtype))
        except Exception:  # noqa: BLE001 - a definition rosbags cannot parse: the message is kept unchecked
            return True
        if topic.msgtype not in self.store.types:
            return True
        try:
            self.store.deserialize_cdr(data, topic.msgtype)
            return True
        except Exception:  # noqa: BLE001 - any failure means a torn message
            return False


def recover_bag(src: str | os.PathLike, out: str | os.PathLike) -> Recovery:
    """Read the cut-off recording ``src`` and write its complete messages to the rosbag2 directory ``out``.

    ``src`` is a rosbag2 directory, ``.mcap`` or ``.db3`` file; ``out`` must not exist. The copy has
    the same storage as the source, a summary/footer (MCAP) or consistent pages (sqlite3) and a
    ``metadata.yaml``. Messages stream from the source to the copy (one message per topic is held
    back until the next one shows it was not the torn last write), so memory stays small for
    recordings of any size.

    Raises:
        BagOpenError: ``src`` is not such a recording, nothing is recoverable, or ``out`` exists.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    src, out = Path(src), Path(out)
    storage = storage_file_of(src)
    if storage is None:
        raise BagOpenError(f"{src}: not a rosbag2 recording with one .mcap or .db3 file")
    if out.exists():
        raise BagOpenError(f"{out}: already exists; choose another output or delete it first")
    check = _TailCheck()
    plugin = StoragePlugin.MCAP if storage.suffix == ".mcap" else StoragePlugin.SQLITE3
    writer = Writer(out, version=9, storage_plugin=plugin)
    conns: dict[int, object] = {}
    pending: dict[int, tuple[int, bytes]] = {}
    topics: dict[int, RecoveredTopic] = {}

    def connection(tid: int):
        if tid not in conns:
            t = topics[tid]
            kw = {"typestore": check.store} if t.msgtype in check.store.types else \
                {"msgdef": t.msgdef, "rihs01": t.rihs01 or "RIHS01_" + "0" * 64}
            conns[tid] = writer.add_connection(t.name, t.msgtype, serialization_format=t.serialization_format,
                                               offered_qos_profiles=t.offered_qos_profiles, **kw)
        return conns[tid]

    def sink(tid: int, log_ns: int, data) -> None:
        held = pending.get(tid)
        if held is not None:
            writer.write(connection(tid), *held)
        pending[tid] = (log_ns, bytes(data))

    try:
        writer.open()
        scan = scan_mcap if storage.suffix == ".mcap" else scan_sqlite3
        rec = scan(storage, sink=sink, topics=topics)  # fills ``topics`` before the messages that use them
        dropped = 0
        for tid, (log_ns, data) in sorted(pending.items()):
            if check.parses(topics[tid], data):
                writer.write(connection(tid), log_ns, data)
            else:
                dropped += 1
                rec.counts[tid] -= 1
        if dropped:
            rec.reason += f"; {dropped} torn last message(s) dropped"
        if not rec.message_count:
            raise BagOpenError(f"{src}: nothing recoverable: {rec.reason} (no complete message before the cut)")
        for tid in sorted(topics):  # every topic, also those whose messages were all lost
            connection(tid)
        writer.close()
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return rec

