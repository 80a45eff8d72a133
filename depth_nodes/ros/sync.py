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

import collections
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
    """Holds the subscriptions and the synchroniser; exposes the counters for health checks.

    Per input: ``received`` (count), ``last_received_monotonic`` and ``last_stamp_ns`` (of the
    latest message; ``None`` until one arrives), ``recent_stamps_ns`` (the last 8 stamps),
    ``last_size`` (``(width, height)`` of the latest message that has them: images, camera_info),
    ``qos`` (the profile subscribed with).
    :meth:`resubscribe` replaces the subscriptions with new QoS profiles, keeping the counters
    and the synchroniser's queues (used by ``input_qos: auto`` when publishers change).
    """

    def __init__(self, topics: Sequence[str]):
        self.topics = list(topics)
        self.received = [0] * len(topics)
        self.last_received_monotonic: list[float | None] = [None] * len(topics)
        self.last_stamp_ns: list[int | None] = [None] * len(topics)
        self.recent_stamps_ns: list[collections.deque] = [collections.deque(maxlen=8) for _ in topics]
        self.last_size: list[tuple[int, int] | None] = [None] * len(topics)
        self.handles: list = []
        self.sync: TimeSynchronizer | None = None
        self.using_message_filters = False
        self.qos: list = []
        self._subscribe: Callable[[list], None] | None = None
        self._destroy: Callable[[], None] | None = None

    def mark(self, index: int, msg=None) -> None:
        self.received[index] += 1
        self.last_received_monotonic[index] = time.monotonic()
        if msg is not None:
            self.last_stamp_ns[index] = stamp_ns(msg)
            self.recent_stamps_ns[index].append(self.last_stamp_ns[index])
            width, height = getattr(msg, "width", 0), getattr(msg, "height", 0)
            if width and height:
                self.last_size[index] = (int(width), int(height))

    @property
    def unmatched(self) -> list[int] | None:
        return self.sync.unmatched if self.sync is not None else None

    def resubscribe(self, qos) -> None:
        """Destroy the subscriptions and subscribe again with ``qos`` (one profile or one per input)."""
        qos_list = _per_input(qos, len(self.topics))
        if self._destroy is not None:
            self._destroy()
        self._subscribe(qos_list)


def _per_input(qos, n: int) -> list:
    if isinstance(qos, (list, tuple)):
        if len(qos) != n:
            raise ValueError(f"need one QoS profile per input ({n}), got {len(qos)}")
        return list(qos)
    return [qos] * n


def subscribe_synchronized(node, inputs: Sequence[tuple[type, str]], qos, callback, *, queue_size: int,
                           slop_s: float | None, prefer_message_filters: bool = True,
                           event_callbacks: Callable[[int], object] | None = None) -> _Subscriptions:
    """Subscribe to ``inputs`` (``(msg_type, topic)`` pairs) and call ``callback`` with matched sets.

    ``qos`` is one profile for every input or a sequence with one per input. ``slop_s=None``
    selects exact-time matching. ``event_callbacks(i)``, if given, returns the
    ``SubscriptionEventCallbacks`` for input ``i`` (e.g. incompatible-QoS reports). Uses
    message_filters when importable (and ``prefer_message_filters``), otherwise
    :class:`TimeSynchronizer`.
    """
    subs = _Subscriptions([t for _, t in inputs])

    def extra(i: int) -> dict:
        return {} if event_callbacks is None else {"event_callbacks": event_callbacks(i)}

    def destroy() -> None:
        from rclpy.subscription import Subscription

        for handle in subs.handles:
            if isinstance(handle, Subscription):
                node.destroy_subscription(handle)
            elif isinstance(getattr(handle, "sub", None), Subscription):  # pragma: no cover - message_filters
                node.destroy_subscription(handle.sub)
        subs.handles = []

    subs._destroy = destroy
    if _message_filters is not None and prefer_message_filters:  # pragma: no cover - no message_filters here
        def subscribe_mf(qos_list: list) -> None:
            filters = []
            for i, (msg_type, topic) in enumerate(inputs):
                f = _message_filters.Subscriber(node, msg_type, topic, qos_profile=qos_list[i], **extra(i))
                f.registerCallback(lambda msg, i=i: subs.mark(i, msg))
                filters.append(f)
            if slop_s is None:
                sync = _message_filters.TimeSynchronizer(filters, queue_size)
            else:
                sync = _message_filters.ApproximateTimeSynchronizer(filters, queue_size, slop_s)
            sync.registerCallback(callback)
            subs.handles = filters + [sync]
            subs.qos = qos_list

        subs._subscribe = subscribe_mf
        subs.using_message_filters = True
        subscribe_mf(_per_input(qos, len(inputs)))
        return subs

    slop_ns = None if slop_s is None else int(round(slop_s * 1e9))
    sync = TimeSynchronizer(len(inputs), queue_size, slop_ns, callback)
    subs.sync = sync

    def subscribe(qos_list: list) -> None:
        for i, (msg_type, topic) in enumerate(inputs):
            def on_msg(msg, i=i):
                subs.mark(i, msg)
                sync.add(i, msg)
            subs.handles.append(node.create_subscription(msg_type, topic, on_msg, qos_list[i], **extra(i)))
        subs.qos = qos_list

    subs._subscribe = subscribe
    subscribe(_per_input(qos, len(inputs)))
    return subs
