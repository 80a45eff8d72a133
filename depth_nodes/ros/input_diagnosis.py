"""Why a node's synchronised camera inputs produce nothing, in words a user can act on.

Several causes look alike from inside a synchroniser (messages dropped without a partner) but have
different remedies, so they are told apart from what arrives and what the ROS graph shows:

``images_lost:<topic>``
    an image topic has publishers and its camera_info arrives, but no image does: typically
    large messages lost in transport (best effort over UDP fragments); remedies named.
``no_camera_info:<topic>``
    images arrive but their camera_info does not.
``unsynchronised``
    every input has messages but sets do not pair up: the measured stamp offsets are given.
``incomplete_sets``
    messages are dropped without a partner although the stamps agree: some inputs miss
    messages (the counts per input are given), e.g. large images lost in transport.
``incompatible_qos:<topic>``
    reported by the QoS event callbacks (:mod:`depth_nodes.ros.qos_auto`) through
    :meth:`InputDiagnosis.note_incompatible`; while it lasts, the topic is not blamed on transport.

An input with no publisher at all (wrong remapping, driver not running) is left to
:mod:`depth_nodes.ros.input_watchdog`.

:func:`diagnose` is the pure decision (testable without ROS); :class:`InputDiagnosis` feeds it
from a :func:`depth_nodes.ros.sync.subscribe_synchronized` result and the graph; call its
:meth:`~InputDiagnosis.check` from a timer (about once a second).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["TopicStatus", "closest_offset_ns", "diagnose", "InputDiagnosis"]

_PROFILE_HINT = "FASTDDS_DEFAULT_PROFILES_FILE=<share/depth_nodes>/config/fastdds_shm.xml"


@dataclass
class TopicStatus:
    """What is known about one input topic at one check.

    Attributes:
        topic: resolved topic name.
        age_s: seconds since its last message arrived; ``None`` if none ever did.
        publishers: publishers on the topic in the graph.
        offered: QoS of those publishers in words (``"best_effort, volatile, keep_last 5"``).
        size: ``(width, height)`` of its latest message, if it has them.
        recent_stamps_ns: header stamps of its latest messages.
        received_new: messages received since the previous check.
        requested: QoS this node subscribes with, in words.
    """

    topic: str
    age_s: float | None
    publishers: int
    offered: str = ""
    size: tuple[int, int] | None = None
    recent_stamps_ns: Sequence[int] = field(default_factory=tuple)
    received_new: int = 0
    requested: str = ""

    def arriving(self, timeout_s: float) -> bool:
        return self.age_s is not None and self.age_s <= timeout_s


def closest_offset_ns(reference: Sequence[int], stamps: Sequence[int]) -> int | None:
    """Signed offset ``s - r`` (ns) of the closest pair with ``s`` in ``stamps``, ``r`` in ``reference``.

    With inputs at the same rate and a constant offset this is that offset (for offsets under
    half the frame period). ``None`` when either is empty.
    """
    if not reference or not stamps:
        return None
    return min(((s - r) for s in stamps for r in reference), key=abs)


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def diagnose(statuses: Sequence[TopicStatus], pairs: Sequence[tuple[int, int]], timeout_s: float, *,
             unmatched_new: int = 0, tolerance_s: float | None = None,
             incompatible: dict[int, str] | None = None, qos_param: str = "input_qos",
             elapsed_s: float = float("inf")) -> list[tuple[str, str]]:
    """The problems with these inputs, as ``(kind, message)`` pairs (empty when all is well).

    Args:
        statuses: one per input.
        pairs: ``(image_index, camera_info_index)`` for each camera.
        timeout_s: an input is "arriving" when its last message is at most this old.
        unmatched_new: messages dropped without a partner since the previous check.
        tolerance_s: the synchroniser's slop (``None``: exact stamps), quoted in the message.
        incompatible: input index -> incompatible-QoS message, for inputs with such a publisher.
        qos_param: the parameter that sets the input QoS, named in remedies.
        elapsed_s: time since the subscriptions were made; nothing is reported before
            ``timeout_s`` of it (discovery takes a moment).
    """
    incompatible = incompatible or {}
    problems: list[tuple[str, str]] = []
    if elapsed_s < timeout_s:
        return problems
    blamed: set[int] = set()
    for i, st in enumerate(statuses):
        if i in incompatible and not st.arriving(timeout_s):
            problems.append((f"incompatible_qos:{st.topic}", incompatible[i]))
            blamed.add(i)
    for img, info in pairs:
        si, sc = statuses[img], statuses[info]
        if img in blamed or info in blamed:
            continue
        if sc.arriving(timeout_s) and not si.arriving(timeout_s) and si.publishers > 0:
            size = si.size or sc.size
            est = f" (camera_info says {size[0]}x{size[1]}: {_mb(size[0] * size[1] * 3)} per rgb8 image)" if size else ""
            never = "no image has arrived" if si.age_s is None else f"no image for {si.age_s:.1f} s"
            problems.append((
                f"images_lost:{si.topic}",
                f"images are not arriving on {si.topic} ({never}) while its camera_info {sc.topic} is, from "
                f"{si.publishers} publisher(s) offering {si.offered}{est}: large messages are most likely "
                "lost in transport (best effort over UDP fragments). Remedies: "
                + (f"this node subscribes {si.requested} ({qos_param}) although the publishers are reliable: set "
                   f"{qos_param}:=auto (or reliable) so that lost fragments are resent; "
                   if si.requested.startswith("best_effort") and si.offered.startswith("reliable")
                   and "best_effort" not in si.offered else "")
                + f"publish the images reliable (this node follows with {qos_param}:=auto), or start the camera "
                f"driver with {_PROFILE_HINT} (shared memory), or across hosts raise net.core.rmem_max"))
            blamed.add(img)
        elif si.arriving(timeout_s) and not sc.arriving(timeout_s):
            who = ("no publisher on it" if sc.publishers == 0
                   else f"{sc.publishers} publisher(s) offering {sc.offered}")
            problems.append((
                f"no_camera_info:{sc.topic}",
                f"images arrive but no {sc.topic} for {timeout_s:.1f} s ({who}; images on {si.topic}): "
                "cannot compute depth without calibration"))
            blamed.add(info)
    if unmatched_new > 0 and not blamed and all(st.age_s is not None for st in statuses):
        ref = statuses[pairs[0][0]] if pairs else statuses[0]
        offsets, offs = [], []
        for st in statuses:
            if st is ref:
                continue
            off = closest_offset_ns(ref.recent_stamps_ns, st.recent_stamps_ns)
            offs.append(off)
            offsets.append(f"{st.topic} {'?' if off is None else f'{off / 1e6:+.1f} ms'}")
        tol = "exact stamps required" if tolerance_s is None else f"tolerance {1e3 * tolerance_s:.1f} ms"
        slop_ns = 0 if tolerance_s is None else tolerance_s * 1e9
        if all(off is not None and abs(off) <= slop_ns for off in offs):
            # the stamps agree: partners are dropped because some inputs miss messages
            counts = ", ".join(f"{st.topic} {st.received_new}" for st in statuses)
            problems.append((
                "incomplete_sets",
                f"{unmatched_new} input messages dropped without a partner although the stamps agree (offsets "
                f"relative to {ref.topic}: {', '.join(offsets)}; {tol}): some inputs miss messages (received since "
                f"the last check: {counts}); large images are likely lost or delayed in transport (see docs/dds.md), "
                "or a driver skips frames on one camera"))
        else:
            problems.append((
                "unsynchronised",
                f"input stamps do not pair up: {unmatched_new} messages dropped without a partner; stamp offsets "
                f"relative to {ref.topic}: {', '.join(offsets)} ({tol}): fix the driver's stamps or raise "
                "approximate_sync_tolerance_seconds"))
    return problems


class InputDiagnosis:
    """Feeds :func:`diagnose` from synchronised subscriptions and the graph, and reports.

    Args:
        node: the rclpy node.
        subs: the result of :func:`depth_nodes.ros.sync.subscribe_synchronized`.
        pairs: ``(image_index, camera_info_index)`` per camera, indices into ``subs.topics``.
        timeout_s: staleness limit (the node's ``camera_info_timeout_s``).
        report: ``report(kind, message)``, e.g. ``ThrottledReporter.report``.
        tolerance_s: the synchroniser's slop (``None`` for exact sync).
        qos_param: parameter that sets the input QoS.
        unmatched: returns the per-input counts of messages dropped without a partner
            (default ``subs.unmatched``; pass e.g. a ``sync_accounting.UnmatchedCounter``'s
            where message_filters synchronises).
    """

    def __init__(self, node, subs, pairs: Sequence[tuple[int, int]], timeout_s: float,
                 report: Callable[[str, str], object], *, tolerance_s: float | None = None,
                 qos_param: str = "input_qos", unmatched: Callable[[], Sequence[int] | None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.node = node
        self.subs = subs
        self.pairs = list(pairs)
        self.timeout_s = timeout_s
        self.report = report
        self.tolerance_s = tolerance_s
        self.qos_param = qos_param
        self._unmatched = unmatched if unmatched is not None else (lambda: subs.unmatched)
        self._clock = clock
        self._start = clock()
        self._unmatched_seen = 0
        self._received_seen = [0] * len(subs.topics)
        self._incompatible: dict[int, str] = {}
        self.last_problems: list[tuple[str, str]] = []

    def note_incompatible(self, kind: str, message: str) -> None:
        """``report`` hook for :func:`depth_nodes.ros.qos_auto.subscription_qos_events`: remember and report."""
        topic = kind.split(":", 1)[-1]
        if topic in self.subs.topics:
            self._incompatible[self.subs.topics.index(topic)] = message
        self.report(kind, message)

    def resubscribed(self) -> None:
        """Call after resubscribing with new QoS: old incompatibilities no longer hold, and the
        new subscriptions get the same start-up grace (``timeout_s``) as the first ones."""
        self._incompatible.clear()
        self._start = self._clock()

    def statuses(self) -> list[TopicStatus]:
        from depth_nodes.ros.qos_auto import qos_summary

        now = time.monotonic()
        out = []
        for i, topic in enumerate(self.subs.topics):
            resolved = self.node.resolve_topic_name(topic)
            infos = self.node.get_publishers_info_by_topic(resolved)
            last = self.subs.last_received_monotonic[i]
            out.append(TopicStatus(
                topic=resolved, age_s=None if last is None else now - last, publishers=len(infos),
                offered="; ".join(sorted({qos_summary(info.qos_profile) for info in infos})),
                size=self.subs.last_size[i], recent_stamps_ns=tuple(self.subs.recent_stamps_ns[i]),
                received_new=self.subs.received[i] - self._received_seen[i],
                requested=qos_summary(self.subs.qos[i]) if i < len(self.subs.qos) else ""))
        self._received_seen = list(self.subs.received)
        return out

    def check(self) -> list[tuple[str, str]]:
        """Diagnose now and report every problem found; returns them."""
        unmatched = self._unmatched()
        total = sum(unmatched) if unmatched is not None else 0
        new = total - self._unmatched_seen
        self._unmatched_seen = total
        statuses = self.statuses()
        # The start-up grace covers discovery: it ends after timeout_s, or as soon as every input
        # has delivered a message since (re)subscribing (later drops are real, even a second
        # after start-up, and must not be swallowed by the grace).
        elapsed = self._clock() - self._start
        if all(st.age_s is not None and st.age_s <= elapsed for st in statuses):
            elapsed = float("inf")
        self.last_problems = diagnose(
            statuses, self.pairs, self.timeout_s, unmatched_new=new, tolerance_s=self.tolerance_s,
            incompatible=dict(self._incompatible), qos_param=self.qos_param, elapsed_s=elapsed)
        for kind, message in self.last_problems:
            self.report(kind, message)
        return self.last_problems
