"""Unmatched-message accounting for a synchroniser that does not count (message_filters).

:class:`~depth_nodes.ros.sync.TimeSynchronizer` counts, per input, the messages that leave its
queue without being part of an emitted set; message_filters' synchronisers do not. To give the
node the same diagnosis on both paths, :class:`UnmatchedCounter` keeps a shadow of each input's
queue (stamps only) under the same rules -- a queue holds at most ``queue_size`` stamps (oldest
dropped, counted), a repeated stamp replaces the earlier message (counted), and when a set is
emitted every queued stamp at or before the emitted one is dropped (counted) -- and is fed the
per-message arrivals (:meth:`received`) and the emitted sets (:meth:`emitted`).
:func:`attach_unmatched_counter` hooks it onto the subscriptions returned by
:func:`~depth_nodes.ros.sync.subscribe_synchronized`.
"""
from __future__ import annotations

import threading
from typing import Sequence

__all__ = ["UnmatchedCounter", "attach_unmatched_counter"]


class UnmatchedCounter:
    def __init__(self, n_inputs: int, queue_size: int):
        self._queues: list[set[int]] = [set() for _ in range(n_inputs)]
        self._queue_size = int(queue_size)
        self._lock = threading.Lock()
        self.unmatched = [0] * n_inputs

    def received(self, index: int, stamp: int) -> None:
        """A message with header stamp ``stamp`` (ns) arrived on input ``index``."""
        with self._lock:
            q = self._queues[index]
            if stamp in q:
                self.unmatched[index] += 1
            q.add(stamp)
            while len(q) > self._queue_size:
                q.remove(min(q))
                self.unmatched[index] += 1

    def emitted(self, stamps: Sequence[int]) -> None:
        """A set with these stamps (one per input) was emitted."""
        with self._lock:
            for i, s in enumerate(stamps):
                q = self._queues[i]
                q.discard(s)
                stale = [t for t in q if t <= s]
                for t in stale:
                    q.remove(t)
                self.unmatched[i] += len(stale)


def attach_unmatched_counter(subs, queue_size: int) -> UnmatchedCounter:
    """Feed a new :class:`UnmatchedCounter` from ``subs`` (the per-message ``mark(i, msg)`` hook).

    The caller reports emitted sets with ``counter.emitted([stamp_ns(m) for m in msgs])`` from
    its synchronised callback.
    """
    from depth_nodes.ros.sync import stamp_ns

    counter = UnmatchedCounter(len(subs.topics), queue_size)
    mark = subs.mark

    def counting_mark(index: int, msg=None) -> None:
        if msg is not None:
            counter.received(index, stamp_ns(msg))
        return mark(index, msg) if msg is not None else mark(index)

    subs.mark = counting_mark  # the subscription callbacks look ``subs.mark`` up per message
    return counter
