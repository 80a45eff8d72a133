"""A ``bag-info``-style summary of a recording, and what each training mode can use from it.

:func:`summarize_bag` reads the bag once (streaming, without deserialising images: header
stamps come from the serialised bytes) and collects per topic: type, count, rate, log-time and
header-stamp span, out-of-order stamps and the largest stamp gap; it builds the TF tree, reads
the joint names and the robot description, and decodes the first message of each configured
image and camera_info topic. :mod:`depth_training.bags.modes` then says, per training mode,
which topics it would use and what is missing and why.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from depth_training.bags.errors import BagError, format_stamp
from depth_training.bags.reader import JOINT_STATE_TYPE, STRING_TYPE, TF_TYPES, Bag, RawMessage
from depth_training.kinematics.tf_buffer import TfBuffer, TfError

__all__ = ["TopicConfig", "TopicSummary", "ModeReport", "BagSummary", "ScanResult", "scan_bag", "summarize_bag"]


@dataclass(frozen=True)
class TopicConfig:
    """Topic names per role. Defaults follow the common RealSense / stereo_image_proc names."""

    color: str = "/camera/color/image_raw"
    color_info: str = "/camera/color/camera_info"
    depth: str = "/camera/depth/image_rect_raw"
    depth_info: str = "/camera/depth/camera_info"
    left: str = "/stereo/left/image_rect"
    left_info: str = "/stereo/left/camera_info"
    right: str = "/stereo/right/image_rect"
    right_info: str = "/stereo/right/camera_info"
    tf: str = "/tf"
    tf_static: str = "/tf_static"
    joint_states: str = "/joint_states"
    robot_description: str = "/robot_description"

    @classmethod
    def roles(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def with_overrides(self, overrides: dict[str, str]) -> "TopicConfig":
        """A copy with ``{role: topic}`` replaced; unknown roles raise ``ValueError`` listing the valid ones."""
        bad = sorted(set(overrides) - set(self.roles()))
        if bad:
            raise ValueError(f"unknown topic role(s) {', '.join(bad)}; valid roles: {', '.join(self.roles())}")
        return dataclasses.replace(self, **overrides)

    def roles_of(self, topic: str) -> list[str]:
        return [r for r in self.roles() if getattr(self, r) == topic]


@dataclass
class TopicSummary:
    """One topic. Rates use log (receive) times; ``stamp_*`` use header stamps (when there is a header)."""

    name: str
    msgtype: str | None
    count: int  # as indexed by the bag
    read: int | None = None  # messages actually read (scan); differs from count when truncated
    rate_hz: float | None = None
    rate_from_index: bool = False  # not scanned: (count - 1) / bag duration, approximate
    first_log_ns: int | None = None
    last_log_ns: int | None = None
    stamp_first_ns: int | None = None
    stamp_last_ns: int | None = None
    out_of_order: int | None = None
    max_stamp_gap_ns: int | None = None
    detail: str = ""
    roles: list[str] = field(default_factory=list)


@dataclass
class ModeReport:
    """Whether a training mode can run on this bag: the topics it uses and what is missing."""

    name: str
    usable: bool
    uses: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class BagSummary:
    path: str
    storage: str
    start_ns: int
    end_ns: int
    message_count: int
    topics: list[TopicSummary]
    modes: list[ModeReport]
    issues: list[str]
    scanned: bool

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    def mode(self, name: str) -> ModeReport:
        return next(m for m in self.modes if m.name == name)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["duration_s"] = self.duration_s
        d["result"] = self.verdict()
        return d

    def format_table(self) -> str:
        """Human-readable report: header, topic table, training modes, issues."""
        lines = [f"bag:      {self.path}",
                 f"storage:  {self.storage}",
                 f"time:     {format_stamp(self.start_ns)} .. {format_stamp(self.end_ns)} "
                 f"({self.duration_s:.3f} s), {self.message_count} messages"
                 + ("" if self.scanned else " (not scanned: ~rates from the index)"),
                 ""]
        rows = [("topic", "type", "count", "Hz", "details")]
        for t in self.topics:
            count = str(t.count) if t.read is None or t.read == t.count else f"{t.read}/{t.count}"
            rate = "-" if t.rate_hz is None else f"{'~' if t.rate_from_index else ''}{t.rate_hz:.2f}"
            detail = t.detail + (f"  [{', '.join(t.roles)}]" if t.roles else "")
            rows.append((t.name, t.msgtype or "(several types)", count, rate, detail))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            line = f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}"
            lines.append(line.rstrip())
        lines += ["", "training modes:"]
        for m in self.modes:
            lines.append(f"  {m.name:<22} {'usable' if m.usable else 'NOT usable'}")
            if m.uses:
                lines.append("      uses: " + ", ".join(f"{k}={v}" for k, v in m.uses.items()))
            lines += [f"      missing: {x}" for x in m.missing]
            lines += [f"      note: {x}" for x in m.notes]
        unusable = any(not m.usable for m in self.modes)
        lines += ["", "issues:" if self.issues else
                  ("issues: none beyond the training modes above" if unusable else "issues: none found")]
        lines += [f"  - {x}" for x in self.issues]
        lines += ["", self.verdict()]
        return "\n".join(lines)

    def verdict(self) -> str:
        """The last line: every problem printed above, counted (issues and modes that are not usable)."""
        unusable = [m.name for m in self.modes if not m.usable]
        parts = []
        if self.issues:
            parts.append(f"{len(self.issues)} issue(s) listed above")
        if unusable:
            parts.append(f"not usable: {', '.join(unusable)} (see 'missing')")
        if not parts:
            return "result: no problems found; every training mode is usable"
        usable = [m.name for m in self.modes if m.usable]
        return ("result: " + "; ".join(parts) + "; usable: " + (", ".join(usable) if usable else "none"))


@dataclass
class _Acc:
    read: int = 0
    first_log: int | None = None
    last_log: int | None = None
    s_first: int | None = None
    s_last: int | None = None
    s_prev: int | None = None
    s_max: int | None = None
    out_of_order: int = 0
    max_gap: int = 0
    zero_stamps: int = 0


@dataclass
class ScanResult:
    """What one pass over the bag collected (input of the mode checks)."""

    topics: dict[str, TopicSummary]
    first: dict[str, object]  # topic -> first deserialised message (image, camera_info topics)
    tf: TfBuffer | None
    tf_errors: list[str]
    joint_names: set[str]
    robot_description: str | None
    issues: list[str]


def scan_bag(bag: Bag, config: TopicConfig, *, scan: bool = True, max_gap_s: float = 0.5) -> ScanResult:
    """Read the bag once (``scan``) or only its small topics (``scan=False``) and collect statistics."""
    issues: list[str] = []
    topics = {name: TopicSummary(name, m.msgtype, m.count, roles=config.roles_of(name))
              for name, m in bag.topics.items()}
    want_first = {getattr(config, r) for r in ("color", "color_info", "depth", "depth_info", "left",
                                               "left_info", "right", "right_info")} & set(bag.topics)
    tf_topics = [t for t in (config.tf, config.tf_static) if t in bag.topics and bag.topics[t].msgtype in TF_TYPES]
    js = config.joint_states if bag.topics.get(config.joint_states) and \
        bag.topics[config.joint_states].msgtype == JOINT_STATE_TYPE else None
    rd = config.robot_description if bag.topics.get(config.robot_description) and \
        bag.topics[config.robot_description].msgtype == STRING_TYPE else None
    small = set(tf_topics) | ({js} if js else set()) | ({rd} if rd else set())
    first_raw: dict[str, RawMessage] = {}
    tf = TfBuffer(source=f"{bag.name}: TF", max_gap_ns=int(max_gap_s * 1e9)) if tf_topics else None
    tf_errors: list[str] = []
    joint_names: set[str] = set()
    description = None
    accs: dict[str, _Acc] = {}
    read_topics = None if scan else sorted(small)
    from depth_training.engine.progress import progress

    total = sum(bag.topics[t].count for t in read_topics) if read_topics is not None else bag.message_count
    for raw in progress(bag.raw_messages(read_topics), total=total, desc=f"depth-train info: {bag.name}",
                        unit="messages"):
        acc = accs.get(raw.topic) or accs.setdefault(raw.topic, _Acc())
        acc.read += 1
        acc.first_log = raw.log_ns if acc.first_log is None else acc.first_log
        acc.last_log = raw.log_ns
        if raw.topic in want_first and raw.topic not in first_raw:
            first_raw[raw.topic] = raw
        if bag.topics[raw.topic].has_header:
            s = bag.header_stamp_ns(raw)
            if s == 0:
                acc.zero_stamps += 1
            if acc.s_prev is not None:
                if s < acc.s_max:
                    acc.out_of_order += 1
                else:
                    acc.max_gap = max(acc.max_gap, s - acc.s_max)
            acc.s_first = s if acc.s_first is None else min(acc.s_first, s)
            acc.s_max = s if acc.s_max is None else max(acc.s_max, s)
            acc.s_prev = s
        if raw.topic in small:
            msg = bag.deserialize(raw)
            if raw.topic in tf_topics:
                try:
                    tf.add_tf_message(msg, static=raw.topic == config.tf_static, origin=raw.topic)
                except TfError as exc:
                    tf_errors.append(f"{exc} (logged at {format_stamp(raw.log_ns)})")
            elif raw.topic == js:
                joint_names.update(msg.name)
            else:
                description = msg.data
    for topic in want_first - set(first_raw):
        if bag.topics[topic].count:
            first_raw[topic] = next(bag.raw_messages([topic]), None)
    first = {t: bag.deserialize(r) for t, r in first_raw.items() if r is not None}
    for name, t in topics.items():
        acc = accs.get(name)
        if acc is None:
            if scan and t.count:
                issues.append(f"{bag.name}: {name}: the index lists {t.count} messages but none could be read")
            if t.count > 1 and bag.end_ns > bag.start_ns:
                t.rate_hz = (t.count - 1) / ((bag.end_ns - bag.start_ns) / 1e9)
                t.rate_from_index = True
            continue
        t.read, t.first_log_ns, t.last_log_ns = acc.read, acc.first_log, acc.last_log
        if acc.read > 1 and acc.last_log > acc.first_log:
            t.rate_hz = (acc.read - 1) / ((acc.last_log - acc.first_log) / 1e9)
        if acc.s_first is not None:
            t.stamp_first_ns, t.stamp_last_ns = acc.s_first, acc.s_max
            t.out_of_order, t.max_stamp_gap_ns = acc.out_of_order, acc.max_gap
        if acc.read != t.count:
            issues.append(f"{bag.name}: {name}: the index lists {t.count} messages but {acc.read} were read "
                          f"(truncated or damaged recording)")
        if acc.out_of_order:
            issues.append(f"{bag.name}: {name}: {acc.out_of_order} message(s) with a header stamp earlier than "
                          f"a previous one (out of order; the sync iterator sorts them within its reorder window)")
        if acc.zero_stamps:
            issues.append(f"{bag.name}: {name}: {acc.zero_stamps} message(s) with a zero header stamp")
        if t.rate_hz and t.msgtype not in TF_TYPES and acc.max_gap > max(5.0 / t.rate_hz, max_gap_s) * 1e9:
            issues.append(f"{bag.name}: {name}: gap of {acc.max_gap / 1e9:.3f} s between header stamps "
                          f"(at {t.rate_hz:.1f} Hz; frames dropped?)")
    if tf is not None:
        for e in tf.edge_stats():
            if e.max_gap_ns > tf.max_gap_ns:
                issues.append(f"{bag.name}: TF: gap of {e.max_gap_ns / 1e9:.3f} s in {e.parent!r} -> {e.child!r} "
                              f"after {format_stamp(e.max_gap_at_ns)} (lookups inside it fail)")
            if e.out_of_order:
                issues.append(f"{bag.name}: TF: {e.out_of_order} out-of-order sample(s) on {e.parent!r} -> "
                              f"{e.child!r} (sorted)")
    issues += tf_errors
    return ScanResult(topics, first, tf, tf_errors, joint_names, description, issues)


def summarize_bag(bag: Bag, config: TopicConfig | None = None, *, urdf_path: str | Path | None = None,
                  scan: bool = True, max_gap_s: float = 0.5, fixed_frame: str | None = None) -> BagSummary:
    """The :class:`BagSummary` of an open bag (see module doc)."""
    from depth_training.bags.modes import check_modes

    config = config or TopicConfig()
    result = scan_bag(bag, config, scan=scan, max_gap_s=max_gap_s)
    modes = check_modes(bag, config, result, urdf_path=urdf_path, fixed_frame=fixed_frame)
    topics = list(result.topics.values())
    try:
        start, end = bag.start_ns, bag.end_ns
    except Exception as exc:  # an empty bag has no time span
        raise BagError(f"{bag.name}: cannot read the time span: {exc}") from None
    return BagSummary(bag.name, bag.storage, start, end, bag.message_count, topics, modes, result.issues, scan)
