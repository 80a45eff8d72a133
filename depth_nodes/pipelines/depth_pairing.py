"""Pair each colour image with the depth image of its stamp, waiting briefly for a late depth.

A depth camera's image with the colour image's stamp often arrives a moment *after* the colour
image (another topic, another driver thread). Looking the depth up when the colour image arrives
takes the previous frame's depth or none. :class:`DepthPairing` holds the newest image(s) until
their depth can be chosen for good, then releases them:

* an image is *ready* once a depth stamped at or after it has arrived (depth arrives in stamp
  order, so no nearer one can still come); it is released with the nearest depth whose stamp
  is within ``max_age_s`` of its own (``None`` if there is none);
* an image still waiting ``wait_s`` after it arrived is released with the nearest depth within
  ``max_age_s`` so far (``None``: 2D only), so a stopped depth camera costs at most ``wait_s``;
* latest-frame semantics: releasing an image drops every older waiting one and at most
  ``max_images`` wait; an image older than the last one released is passed on at once without
  depth (for the node's stamp-order check to skip and report);
* time going back (a stamp older than the newest one seen by more than ``jump_back_s``: a looping
  recording, a simulator reset) empties the buffers and pairing starts over.

Plain Python (no ROS): stamps are integer nanoseconds, items and depths opaque; the clock is
injectable. Thread-safe.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["DepthPairing", "Release"]


@dataclass(frozen=True)
class Release:
    """An image ready to process: its ``item``, the paired ``depth`` (or ``None``), and, without
    depth, ``why`` in words (for a throttled log line)."""

    stamp_ns: int
    item: Any
    depth: Any
    waited_s: float
    why: str = ""


class DepthPairing:
    """See the module docstring. ``max_depths``: depth images kept (newest)."""

    def __init__(self, wait_s: float, max_age_s: float, jump_back_s: float, *, max_images: int = 2,
                 max_depths: int = 8, clock: Callable[[], float] = time.monotonic):
        if wait_s < 0 or max_age_s < 0 or jump_back_s <= 0 or max_images < 1 or max_depths < 1:
            raise ValueError("wait_s and max_age_s must be >= 0, jump_back_s > 0, max_images and max_depths >= 1")
        self.wait_s, self.max_age_s, self.jump_back_s = float(wait_s), float(max_age_s), float(jump_back_s)
        self.max_images = int(max_images)
        self._clock = clock
        self._depths: deque[tuple[int, Any]] = deque(maxlen=int(max_depths))
        self._images: list[tuple[int, Any, float]] = []  # (stamp, item, arrival), oldest first
        self._last_released: int | None = None
        self._lock = threading.Lock()
        self.dropped = 0  # images superseded while waiting
        self.resets = 0

    def _reset(self) -> None:
        """Forget every waiting image and depth (time went back)."""
        self.dropped += len(self._images)
        self._images.clear()
        self._depths.clear()
        self._last_released = None
        self.resets += 1

    def _newest_ns(self) -> int | None:
        stamps = [s for s, _ in self._depths] + [s for s, _, _ in self._images]
        if self._last_released is not None:
            stamps.append(self._last_released)
        return max(stamps) if stamps else None

    def _jumped_back(self, stamp: int) -> bool:
        newest = self._newest_ns()
        return newest is not None and newest - stamp > self.jump_back_s * 1e9

    def add_image(self, stamp_ns: int, item: Any) -> list[Release]:
        with self._lock:
            if self._jumped_back(stamp_ns):
                self._reset()
            if self._last_released is not None and stamp_ns < self._last_released:
                # a reordering: passed on at once without depth, for the node's stamp-order check to report
                return [Release(int(stamp_ns), item, None, 0.0, "out of order")]
            self._images.append((int(stamp_ns), item, self._clock()))
            self._images.sort(key=lambda r: r[0])
            while len(self._images) > self.max_images:
                self._images.pop(0)
                self.dropped += 1
            return self._release(self._clock())

    def add_depth(self, stamp_ns: int, depth: Any) -> list[Release]:
        with self._lock:
            if self._jumped_back(stamp_ns):
                self._reset()
            self._depths.append((int(stamp_ns), depth))
            return self._release(self._clock())

    def expire(self) -> list[Release]:
        """Release images that waited ``wait_s`` (call from a timer, a few times per ``wait_s``)."""
        with self._lock:
            return self._release(self._clock())

    def pending(self) -> int:
        with self._lock:
            return len(self._images)

    def _nearest(self, stamp: int) -> tuple[Any, float | None]:
        if not self._depths:
            return None, None
        d_stamp, depth = min(self._depths, key=lambda d: abs(d[0] - stamp))
        gap = abs(d_stamp - stamp) / 1e9
        return (depth if gap <= self.max_age_s else None), gap

    def _release(self, now: float) -> list[Release]:
        newest_depth = max((s for s, _ in self._depths), default=None)
        chosen = None
        for k in range(len(self._images) - 1, -1, -1):  # the newest image that can go
            stamp, _, arrival = self._images[k]
            if (newest_depth is not None and newest_depth >= stamp) or now - arrival >= self.wait_s:
                chosen = k
                break
        if chosen is None:
            return []
        stamp, item, arrival = self._images[chosen]
        self.dropped += chosen  # older waiting images are superseded
        del self._images[:chosen + 1]
        self._last_released = stamp
        depth, gap = self._nearest(stamp)
        why = ""
        if depth is None:
            why = ("no depth image received yet" if gap is None else
                   f"the nearest depth image is {gap:.3f} s from the image (max_age {self.max_age_s:g} s, waited "
                   f"{now - arrival:.3f} s)")
        return [Release(stamp, item, depth, now - arrival, why)]
