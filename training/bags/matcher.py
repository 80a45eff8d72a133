"""Streaming nearest-neighbour matching of header stamps across several streams.

One stream is the *reference* (usually the colour camera). Every reference message at stamp
``r`` is paired, for each other stream ``x``, with the message of ``x`` whose stamp ``s``
minimises ``|s - r|``, provided ``|s - r| <= tolerance``; otherwise the reference message is
dropped and counted as *unmatched* for ``x``. A message may serve several references.

Messages arrive in bag (log-time) order, which need not be stamp order. The matcher keeps
small stamp-sorted buffers and emits reference ``r`` only when nothing closer can still arrive:

* every other stream has delivered a stamp ``> r + tolerance + reorder`` (or has ended), and
  the reference stream itself has delivered a stamp ``>= r + reorder``; or
* the reference stream has moved more than ``max_wait`` past ``r`` (a stream that lags or has
  stopped cannot hold everything back; memory stays bounded).

Nothing is silently wrong: a message that arrives after a reference it could have been matched
with was emitted (or dropped) is counted as *late*; a stamp lower than the previous one on the same stream
is counted as *out of order* (and still used when it arrives in time); buffers over
``max_queue`` drop their oldest entry and count it as *overflow*. Each event is also passed to
the ``report`` callback ``(role, kind, stamp_ns)`` so the caller can warn with file and topic.
Emitted matches come out in increasing reference stamp order.
"""
from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Match", "MatchStats", "StampMatcher"]


@dataclass(frozen=True)
class Match:
    """One matched set: the reference stamp and, per role, ``(stamp_ns, payload)``."""

    stamp_ns: int
    parts: dict[str, tuple[int, Any]]


@dataclass
class MatchStats:
    """Counts per role (see module doc for the meaning of each)."""

    seen: dict[str, int] = field(default_factory=dict)
    matched: int = 0
    unmatched: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    out_of_order: dict[str, int] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    max_offset_ns: dict[str, int] = field(default_factory=dict)

    def bump(self, counter: str, role: str) -> None:
        d = getattr(self, counter)
        d[role] = d.get(role, 0) + 1


_NEG_INF = -(1 << 62)


class StampMatcher:
    """Streaming nearest-stamp matcher.

    Args:
        roles: all stream names, the reference included.
        reference: the role whose messages define the samples.
        tolerance_ns: largest allowed ``|s - r|``.
        reorder_ns: how far a stream may run ahead before earlier stamps are no longer expected.
        max_wait_ns: how far the reference may run ahead of a pending reference message.
        max_queue: largest buffer per role.
        report: called as ``report(role, kind, stamp_ns)`` with kind in
            ``{"late", "out_of_order", "unmatched", "overflow"}``.
    """

    def __init__(self, roles: list[str], reference: str, *, tolerance_ns: int, reorder_ns: int = 100_000_000,
                 max_wait_ns: int = 1_000_000_000, max_queue: int = 256,
                 report: Callable[[str, str, int], None] | None = None):
        if reference not in roles:
            raise ValueError(f"reference: {reference!r} is not one of the roles {roles}")
        if len(set(roles)) != len(roles):
            raise ValueError(f"roles: duplicate role names in {roles}")
        if tolerance_ns < 0 or reorder_ns < 0 or max_wait_ns < 0 or max_queue < 1:
            raise ValueError("tolerance_ns, reorder_ns, max_wait_ns must be >= 0 and max_queue >= 1")
        self.reference = reference
        self.others = [r for r in roles if r != reference]
        self.tolerance_ns, self.reorder_ns = int(tolerance_ns), int(reorder_ns)
        self.max_wait_ns, self.max_queue = int(max_wait_ns), int(max_queue)
        self._report = report or (lambda role, kind, stamp: None)
        self.stats = MatchStats(seen={r: 0 for r in roles})
        self._max_seen = {r: _NEG_INF for r in roles}
        self._buffers: dict[str, list[tuple[int, int, Any]]] = {r: [] for r in roles}
        self._horizon: int | None = None  # stamp of the last emitted/dropped reference
        self._recent: deque[int] = deque()  # finalised reference stamps within 2 tolerances of the horizon
        self._seq = 0

    def _event(self, role: str, kind: str, stamp: int) -> None:
        self.stats.bump(kind, role)
        self._report(role, kind, stamp)

    def push(self, role: str, stamp_ns: int, payload: Any) -> list[Match]:
        """Add one message; returns the matches that became final (in stamp order)."""
        s = int(stamp_ns)
        self.stats.seen[role] += 1
        if s < self._max_seen[role]:
            self._event(role, "out_of_order", s)
        self._max_seen[role] = max(self._max_seen[role], s)
        if self._horizon is not None:
            if role == self.reference:
                too_late = s <= self._horizon  # references are emitted in stamp order
            else:
                too_late = s < self._horizon - self.tolerance_ns  # below every future reference's window
            if too_late:
                self._event(role, "late", s)
                return self._drain(final=False)
            if role != self.reference and any(abs(s - r) <= self.tolerance_ns for r in self._recent):
                self._event(role, "late", s)  # it missed an emitted reference; later ones may still use it
        buf = self._buffers[role]
        self._seq += 1
        bisect.insort(buf, (s, self._seq, payload), key=lambda e: (e[0], e[1]))
        if len(buf) > self.max_queue:
            dropped = buf.pop(0)
            self._event(role, "overflow", dropped[0])
        return self._drain(final=False)

    def finish(self) -> list[Match]:
        """All streams ended: finalise every pending reference."""
        return self._drain(final=True)

    def _ready(self, r: int, final: bool) -> bool:
        if final:
            return True
        ref_seen = self._max_seen[self.reference]
        if ref_seen > r + self.max_wait_ns:
            return True
        if ref_seen < r + self.reorder_ns:
            return False
        bound = r + self.tolerance_ns + self.reorder_ns
        return all(self._max_seen[x] > bound for x in self.others)

    def _drain(self, final: bool) -> list[Match]:
        out: list[Match] = []
        pending = self._buffers[self.reference]
        while pending and self._ready(pending[0][0], final):
            r, _, payload = pending.pop(0)
            self._horizon = r
            self._recent.append(r)
            while self._recent and self._recent[0] < r - 2 * self.tolerance_ns:
                self._recent.popleft()
            parts = {self.reference: (r, payload)}
            missing = []
            for x in self.others:
                best = self._nearest(self._buffers[x], r)
                if best is None:
                    missing.append(x)
                else:
                    parts[x] = (best[0], best[2])
            for x in missing:
                self._event(x, "unmatched", r)
            if not missing:
                self.stats.matched += 1
                for x in self.others:
                    off = abs(parts[x][0] - r)
                    self.stats.max_offset_ns[x] = max(self.stats.max_offset_ns.get(x, 0), off)
                out.append(Match(r, parts))
            for x in self.others:  # nothing below r - tol can match a later reference (> r)
                buf = self._buffers[x]
                k = bisect.bisect_left(buf, r - self.tolerance_ns, key=lambda e: e[0])
                del buf[:k]
        return out

    def _nearest(self, buf: list[tuple[int, int, Any]], r: int):
        """Entry with the smallest ``|s - r| <= tolerance`` (the earlier one on a tie), or None."""
        k = bisect.bisect_left(buf, r, key=lambda e: e[0])
        best, best_d = None, None
        for j in (k - 1, k):
            if 0 <= j < len(buf):
                d = abs(buf[j][0] - r)
                if d <= self.tolerance_ns and (best_d is None or d < best_d):
                    best, best_d = buf[j], d
        return best
