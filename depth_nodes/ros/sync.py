"""Time synchronisation of several input topics.

:class:`TimeSynchronizer` is our own equivalent of message_filters' ``TimeSynchronizer`` /
``ApproximateTimeSynchronizer`` (same policy: a set is emitted when one message per input can
be found whose stamps differ by at most ``slop``; exact mode needs equal stamps), used when
``message_filters`` is not importable. :func:`subscribe_synchronized` creates the subscriptions
and picks ``message_filters`` when it is available.

Latest-frame semantics: once a set is emitted, every queued message at or before the emitted
stamps is dropped, so sets come out in time order and stale messages are never emitted later.
Messages that leave a queue without ever being matched are counted per input
(:attr:`TimeSynchronizer.unmatched`), so the node can report unsynchronised inputs.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, Sequence

__all__ = ["TimeSynchronizer", "stamp_ns", "subscribe_synchronized", "have_message_filters"]

try:  # pragma: no cover - only on machines with a full ROS install
    import message_filters as _message_filters
except ImportError:
    _message_filters = None


def have_message_filters() -> bool:
    return _message_filters is not None


def stamp_ns(msg) -> int:
    """Header stamp of a message in integer nanoseconds."""
    s = msg.header.stamp
    return int(s.sec) * 1_000_000_000 + int(s.nanosec)


class TimeSynchronizer:
    """Match one message per input by header stamp.

    Args:
        n_inputs: number of inputs.
        queue_size: messages kept per input while waiting for partners (oldest dropped first).
        slop_ns: largest allowed ``max(stamps) - min(stamps)`` of a set, nanoseconds;
            ``None`` for exact matching (all stamps equal).
        callback: called with one message per input, in input order.
    """

    def __init__(self, n_inputs: int, queue_size: int, slop_ns: int | None, callback: Callable[..., None]):
        if n_inputs < 2:
            raise ValueError("synchronisation needs at least two inputs")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if slop_ns is not None and slop_ns < 0:
            raise ValueError(f"slop must be >= 0, got {slop_ns} ns")
        self._queues: list[dict[int, object]] = [{} for _ in range(n_inputs)]
        self._queue_size = queue_size
        self._slop = 0 if slop_ns is None else int(slop_ns)
        self._callback = callback
        self._lock = threading.Lock()
        self.received = [0] * n_inputs
        self.unmatched = [0] * n_inputs
        self.emitted = 0
        self.last_received_monotonic: list[float | None] = [None] * n_inputs

    def add(self, index: int, msg, stamp: int | None = None) -> None:
        """Add a message from input ``index`` (its header stamp is used unless ``stamp`` is given)."""
        stamp = stamp_ns(msg) if stamp is None else int(stamp)
        with self._lock:
            self.received[index] += 1
            self.last_received_monotonic[index] = time.monotonic()
            queue = self._queues[index]
            if stamp in queue:
                self.unmatched[index] += 1  # a duplicate stamp replaces the earlier message
            queue[stamp] = msg
            while len(queue) > self._queue_size:
                del queue[min(queue)]
                self.unmatched[index] += 1
            match = self._find_set(index, stamp)
            if match is None:
                return
            msgs = [self._queues[i].pop(s) for i, s in enumerate(match)]
            for i, s in enumerate(match):
                stale = [t for t in self._queues[i] if t <= s]
                for t in stale:
                    del self._queues[i][t]
                self.unmatched[i] += len(stale)
            self.emitted += 1
        self._callback(*msgs)

    def _find_set(self, index: int, stamp: int) -> list[int] | None:
        candidates: list[list[int]] = []
        for i, queue in enumerate(self._queues):
            if i == index:
                candidates.append([stamp])
                continue
            near = sorted((t for t in queue if abs(t - stamp) <= self._slop), key=lambda t: abs(t - stamp))
            if not near:
                return None
            candidates.append(near)
        for combo in itertools.product(*candidates):
            if max(combo) - min(combo) <= self._slop:
                return list(combo)
        return None

    def pending(self) -> list[int]:
        """Messages waiting per input."""
        with self._lock:
            return [len(q) for q in self._queues]


class _Subscriptions:
    """Holds the subscriptions and the synchroniser; exposes the counters for health checks."""

    def __init__(self, topics: Sequence[str]):
        self.topics = list(topics)
        self.received = [0] * len(topics)
        self.last_received_monotonic: list[float | None] = [None] * len(topics)
        self.handles: list = []
        self.sync: TimeSynchronizer | None = None
        self.using_message_filters = False

    def mark(self, index: int) -> None:
        self.received[index] += 1
        self.last_received_monotonic[index] = time.monotonic()

    @property
    def unmatched(self) -> list[int] | None:
        return self.sync.unmatched if self.sync is not None else None


def subscribe_synchronized(node, inputs: Sequence[tuple[type, str]], qos, callback, *, queue_size: int,
                           slop_s: float | None, prefer_message_filters: bool = True) -> _Subscriptions:
    """Subscribe to ``inputs`` (``(msg_type, topic)`` pairs) and call ``callback`` with matched sets.

    ``slop_s=None`` selects exact-time matching. Uses message_filters when importable (and
    ``prefer_message_filters``), otherwise :class:`TimeSynchronizer`.
    """
    subs = _Subscriptions([t for _, t in inputs])
    if _message_filters is not None and prefer_message_filters:  # pragma: no cover - no message_filters here
        filters = []
        for i, (msg_type, topic) in enumerate(inputs):
            f = _message_filters.Subscriber(node, msg_type, topic, qos_profile=qos)
            f.registerCallback(lambda _msg, i=i: subs.mark(i))
            filters.append(f)
        if slop_s is None:
            sync = _message_filters.TimeSynchronizer(filters, queue_size)
        else:
            sync = _message_filters.ApproximateTimeSynchronizer(filters, queue_size, slop_s)
        sync.registerCallback(callback)
        subs.handles = filters + [sync]
        subs.using_message_filters = True
        return subs

    slop_ns = None if slop_s is None else int(round(slop_s * 1e9))
    sync = TimeSynchronizer(len(inputs), queue_size, slop_ns, callback)
    subs.sync = sync
    for i, (msg_type, topic) in enumerate(inputs):
        def on_msg(msg, i=i):
            subs.mark(i)
            sync.add(i, msg)
        subs.handles.append(node.create_subscription(msg_type, topic, on_msg, qos))
    return subs
