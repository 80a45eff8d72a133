"""``depth-nodes play BAG``: publish a recording's topics through rclpy, for machines without ``ros2 bag play``.

Reads rosbag2 (MCAP or sqlite3, a directory or the storage file) and ROS 1 bags with ``rosbags``
(imported when the command runs) and publishes every message with its original timing:
message ``i`` (bag receive time ``t_i``) goes out at wall time

    w_i = w_0 + (t_i - t_start - offset) / rate        (``offset`` = ``--start-offset``)

rosbag2 CDR payloads are published as they are (no deserialisation); ROS 1 payloads are
deserialised with the bag's own definitions and copied field by field into the ROS 2 message
(ROS 1 names such as ``CameraInfo.K`` map to ``k``; ``Header.seq`` is dropped). Publishers are reliable, keep-last ``--qos-depth`` (like ``ros2 bag play``),
transient-local for topics recorded as latched (``/tf_static``, ``/robot_description``).
``--clock HZ`` publishes ``/clock`` (rosgraph_msgs/Clock) with the bag time at that rate, for
nodes run with ``use_sim_time``. A progress line shows bag time, messages sent and the rate.
"""
from __future__ import annotations

import array
import importlib
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from depth_nodes.cli import UserError

__all__ = ["register", "run", "parse_remaps", "PlaybackStats", "DESCRIPTION"]

DESCRIPTION = (
    "Publish a recording (rosbag2 MCAP or sqlite3 directory or file, ROS 1 .bag) through rclpy with its "
    "original timing, for machines without `ros2 bag play`: a message recorded at t goes out at "
    "(t - start - start offset) / rate after the start. Publishers are reliable, keep-last --qos-depth; "
    "topics recorded as latched (/tf_static, /robot_description) are transient-local. Every played topic "
    "needs its message type in this ROS installation (leave others out with --topics). Ctrl-C or SIGTERM "
    "stops playback: exit status 130 or 143.")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "play", help="publish a bag's topics with their original timing (rosbag2 MCAP/sqlite3, ROS 1)",
        description=DESCRIPTION)
    p.add_argument("bag", help="rosbag2 directory, .mcap, .db3 or ROS 1 .bag file")
    p.add_argument("--rate", "-r", type=float, default=1.0, help="playback speed factor (default 1.0)")
    p.add_argument("--loop", "-l", action="store_true", help="play again from the start offset when the end is reached")
    p.add_argument("--start-offset", "-s", type=float, default=0.0, metavar="S",
                   help="skip the first S seconds of the recording")
    p.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="play only these topics")
    p.add_argument("--remap", "-m", action="append", default=[], metavar="FROM:=TO",
                   help="publish topic FROM as TO (repeatable)")
    p.add_argument("--clock", type=float, nargs="?", const=40.0, default=0.0, metavar="HZ",
                   help="publish /clock with the bag time at HZ (default 40 when given)")
    p.add_argument("--delay", "-d", type=float, default=0.0, metavar="S",
                   help="wait S seconds after creating the publishers (lets subscribers discover them)")
    p.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds until every played topic has a subscriber before starting")
    p.add_argument("--min-subscribers", nargs="+", default=[], metavar="TOPIC=N",
                   help="with --wait-for-subscribers: wait for N subscribers on TOPIC (a recorded name) instead "
                        "of one, e.g. when two nodes take the same camera and one starts slower")
    p.add_argument("--qos-depth", type=int, default=10, help="history depth of the publishers (default 10)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def parse_remaps(items: list[str]) -> dict[str, str]:
    """``["/a:=/b", ...]`` -> ``{"/a": "/b"}``; raises :class:`UserError` for a malformed item."""
    out = {}
    for item in items:
        src, sep, dst = item.partition(":=")
        if not sep or not src.strip() or not dst.strip():
            raise UserError(f"--remap {item!r}: expected FROM:=TO")
        out[src.strip()] = dst.strip()
    return out


def parse_min_subscribers(items: list[str]) -> dict[str, int]:
    """``["/a=2", ...]`` -> ``{"/a": 2}``; raises :class:`UserError` for a malformed item."""
    out = {}
    for item in items:
        topic, sep, count = item.rpartition("=")
        try:
            n = int(count)
        except ValueError:
            n = 0
        if not sep or not topic.strip() or n < 1:
            raise UserError(f"--min-subscribers {item!r}: expected TOPIC=N with N >= 1")
        out[topic.strip()] = n
    return out


class _Terminated(Exception):
    """SIGTERM arrived: playback ends like Ctrl-C (a last progress line, exit status 143)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


@dataclass
class PlaybackStats:
    published: int = 0
    loops: int = 0
    bag_seconds: float = 0.0


def _message_class(msgtype: str, path: Path, topic: str):
    pkg, _, name = msgtype.rpartition("/")
    module = pkg.replace("/", ".") if "/msg" in pkg else pkg + ".msg"
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UserError(f"{path}: topic {topic} has type {msgtype}, which this ROS installation does not have "
                        "(use --topics to leave it out)") from None


def _latched(conn) -> bool:
    ext = getattr(conn, "ext", None)
    profiles = getattr(ext, "offered_qos_profiles", "") or ""
    text = profiles if isinstance(profiles, str) else str(profiles)
    return ("durability: 1" in text or "transient_local" in text.lower()
            or conn.topic in ("/tf_static", "/robot_description"))


def _open(path: Path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    open_path = path
    if path.is_file() and path.suffix in (".mcap", ".db3") and (path.parent / "metadata.yaml").exists():
        open_path = path.parent
    store = Stores.ROS1_NOETIC if path.suffix == ".bag" else Stores.ROS2_KILTED
    try:
        reader = AnyReader([open_path], default_typestore=get_typestore(store))
        reader.open()
    except Exception as exc:  # rosbags raises several types; all mean "cannot read this bag"
        raise UserError(f"{path}: cannot open as a rosbag2 or ROS 1 bag: {exc}") from None
    return reader


def run(args) -> int:
    path = Path(args.bag)
    if not args.rate > 0:
        raise UserError(f"--rate must be > 0, got {args.rate}")
    if min(args.start_offset, args.delay, args.clock, args.wait_for_subscribers) < 0 or args.qos_depth < 1:
        raise UserError("--start-offset, --delay, --clock and --wait-for-subscribers must be >= 0 "
                        "and --qos-depth >= 1")
    remaps = parse_remaps(args.remap)
    wanted = parse_min_subscribers(args.min_subscribers)
    if wanted and not args.wait_for_subscribers:
        raise UserError("--min-subscribers needs --wait-for-subscribers S (how long to wait)")
    reader = _open(path)
    try:
        conns = [c for c in reader.connections if args.topics is None or c.topic in args.topics]
        if args.topics:
            missing = sorted(set(args.topics) - {c.topic for c in reader.connections})
            if missing:
                raise UserError(f"{path}: no topic {', '.join(missing)} (the bag has "
                                f"{', '.join(sorted({c.topic for c in reader.connections}))})")
        if not conns:
            raise UserError(f"{path}: no messages to play")
        unplayed = sorted(set(wanted) - {c.topic for c in conns})
        if unplayed:
            raise UserError(f"--min-subscribers: {', '.join(unplayed)} is not a topic being played")
        classes = {c.topic: _message_class(c.msgtype, path, c.topic) for c in conns}
        return _play(reader, conns, classes, remaps, wanted, args, path)
    finally:
        reader.close()


def _play(reader, conns, classes, remaps, wanted: dict[str, int], args, path: Path) -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from depth_nodes.ros.transport import setup_shared_memory

    start_ns = reader.start_time + int(args.start_offset * 1e9)
    end_ns = reader.end_time
    if start_ns > end_ns:
        raise UserError(f"{path}: --start-offset {args.start_offset} s is past the end "
                        f"({(end_ns - reader.start_time) / 1e9:.3f} s)")
    is_ros1 = not getattr(reader, "is2", True)
    # as a camera driver should (docs/dds.md): large messages over shared memory and 100 ms heartbeats,
    # so a reliable sample that does not get through is sent again within 0.1 s, not Fast DDS's 3 s
    note = setup_shared_memory()
    if not args.quiet:
        print(f"depth-nodes play: {note}", file=sys.stderr)
    rclpy.init(args=[])  # not sys.argv: rcl would take "--remap A:=B" for its own (deprecated) remap syntax
    signal.signal(signal.SIGTERM, _raise_terminated)  # rclpy's own handler would invalidate the publishers mid-publish
    node = rclpy.create_node("depth_nodes_player")
    try:
        pubs = {}
        for c in conns:
            if c.topic in pubs:
                continue
            qos = QoSProfile(depth=args.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
            if _latched(c):
                qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
            pubs[c.topic] = node.create_publisher(classes[c.topic], remaps.get(c.topic, c.topic), qos)
        clock_pub = None
        if args.clock > 0:
            from rosgraph_msgs.msg import Clock
            clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=1))
        unknown = sorted(set(remaps) - set(pubs))
        if unknown:
            print(f"depth-nodes play: warning: --remap of {', '.join(unknown)}: not a topic being played",
                  file=sys.stderr)
        if args.wait_for_subscribers > 0:
            def short() -> dict[str, int]:  # topics with fewer subscribers than wanted (default 1): their counts
                return {t: n for t, p in pubs.items() if (n := p.get_subscription_count()) < wanted.get(t, 1)}

            deadline = time.monotonic() + args.wait_for_subscribers
            while time.monotonic() < deadline and short():
                time.sleep(0.05)
            if missing := short():
                print(f"depth-nodes play: warning: after {args.wait_for_subscribers:g} s "
                      + ", ".join(f"{t} has {n} of {wanted.get(t, 1)} subscribers" for t, n in sorted(missing.items()))
                      + "; playing anyway", file=sys.stderr)
        if args.delay:
            time.sleep(args.delay)
        stats = PlaybackStats()
        progress = _Progress(not args.quiet, (end_ns - start_ns) / 1e9, args.rate)
        try:
            while True:
                _play_once(reader, conns, pubs, clock_pub, start_ns, args, is_ros1, stats, progress)
                if not args.loop or not rclpy.ok():
                    break
                stats.loops += 1
        except (KeyboardInterrupt, ExternalShutdownException):
            progress.done(stats, interrupted=True)
            return 130
        except _Terminated:
            progress.done(stats, interrupted=True)
            return 143
        deadline = time.monotonic() + 3.0  # reliable subscribers get the last messages before we exit
        for pub in pubs.values():
            pub.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))
        progress.done(stats)
        return 0
    except _Terminated:  # before playback started (waiting for subscribers, --delay)
        return 143
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _play_once(reader, conns, pubs, clock_pub, start_ns, args, is_ros1, stats, progress) -> None:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    w0 = time.monotonic()
    clock_period = 1.0 / args.clock if clock_pub is not None else None
    next_clock = w0
    for conn, t_ns, raw in reader.messages(connections=conns, start=start_ns):
        due = w0 + (t_ns - start_ns) / 1e9 / args.rate
        while True:  # sleep until due, publishing /clock on the way
            now = time.monotonic()
            if clock_pub is not None and now >= next_clock:
                bag_now = start_ns + int((now - w0) * args.rate * 1e9)
                clock_pub.publish(Clock(clock=Time(sec=bag_now // 1_000_000_000, nanosec=bag_now % 1_000_000_000)))
                next_clock = now + clock_period
            if now >= due:
                break
            time.sleep(min(due - now, clock_period if clock_period else due - now, 0.1))
        if is_ros1:
            pubs[conn.topic].publish(ros1_to_rclpy(reader.deserialize(raw, conn.msgtype), pubs[conn.topic].msg_type))
        else:
            pubs[conn.topic].publish(bytes(raw))
        stats.published += 1
        stats.bag_seconds = (t_ns - start_ns) / 1e9
        progress.update(stats)


def ros1_to_rclpy(src, cls):
    """Copy a deserialised ROS 1 message (rosbags dataclass) into a new rclpy message of class ``cls``.

    Fields are matched by name, then by the upper-case ROS 1 spelling (``K`` for ``k``); fields the
    ROS 1 message lacks keep their defaults, ROS 1-only fields (``Header.seq``) are dropped.
    """
    from rosidl_parser.definition import AbstractSequence, Array, NamespacedType

    msg = cls()
    for (name, _), slot in zip(cls.get_fields_and_field_types().items(), cls.SLOT_TYPES):
        value = getattr(src, name, None)
        if value is None:
            value = getattr(src, name.upper(), None)
        if value is None:
            continue
        if isinstance(slot, NamespacedType):
            value = ros1_to_rclpy(value, _class_of(slot))
        elif isinstance(slot, (AbstractSequence, Array)) and isinstance(slot.value_type, NamespacedType):
            sub = _class_of(slot.value_type)
            value = [ros1_to_rclpy(v, sub) for v in value]
        elif hasattr(value, "dtype"):  # numpy arrays from rosbags
            value = array.array("B", value.tobytes()) if value.dtype == "uint8" else value.tolist()
        setattr(msg, name, value)
    return msg


def _class_of(slot):
    return getattr(importlib.import_module(".".join(slot.namespaces)), slot.name)


class _Progress:
    """``[playing] bag time 12.3 / 30.0 s  1234 msgs  x1.0`` on stderr, at most 4 times a second."""

    def __init__(self, enabled: bool, total_s: float, rate: float):
        self.enabled, self.total_s, self.rate = enabled, total_s, rate
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._period = 0.25 if self.tty else 2.0

    def _line(self, stats: PlaybackStats) -> str:
        loop = f"  loop {stats.loops + 1}" if stats.loops else ""
        return (f"[playing] bag time {stats.bag_seconds:7.2f} / {self.total_s:.2f} s  "
                f"{stats.published} msgs  x{self.rate:g}{loop}")

    def update(self, stats: PlaybackStats) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last >= self._period:
            self._last = now
            sys.stderr.write(("\r" if self.tty else "") + self._line(stats) + ("" if self.tty else "\n"))
            sys.stderr.flush()

    def done(self, stats: PlaybackStats, interrupted: bool = False) -> None:
        if self.enabled:
            end = " (interrupted)" if interrupted else " (done)"
            sys.stderr.write(("\r" if self.tty else "") + self._line(stats) + end + "\n")
            sys.stderr.flush()
