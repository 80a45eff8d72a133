"""Throttled problem reports: one log line per problem kind per period, with a count.

rclpy's ``throttle_duration_sec`` throttles per call site; a node that reports several kinds of
bad input from one place needs one throttle per *kind*, and a count of what was suppressed.
"""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["ThrottledReporter"]


class ThrottledReporter:
    def __init__(self, log: Callable[[str], None], period_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self._log = log
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged less than ``period_s`` ago; True if logged."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        suppressed = self._suppressed.pop(kind, 0)
        suffix = f" ({suppressed} more since last report)" if suppressed else ""
        self._last[kind] = now
        self._log(message + suffix)
        return True
