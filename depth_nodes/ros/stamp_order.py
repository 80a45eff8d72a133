"""Frame stamp order with clock jumps: small reorderings are dropped, a jump back starts over.

A node that serves the latest frame drops a frame older than the last one it processed (a
reordered or late message must not overwrite newer output). When a recording loops
(``depth-nodes play --loop``), a simulator resets or ``/clock`` jumps back, every later stamp
is older than the last processed one: dropping them all would silence the node for good.
:class:`StampOrder` tells the two apart by how far back a stamp is:

* ``stamp >= last``: in order (:meth:`StampOrder.accept` it once processed);
* ``last - stamp <= jump_back_s``: a reordering, dropped (:attr:`Verdict.REORDERED`);
* ``last - stamp > jump_back_s``: time went back: the time state starts over from this frame
  (:attr:`Verdict.JUMPED_BACK`; the node logs one line and resets whatever else it keeps per
  time, e.g. buffered depth images).

:meth:`StampOrder.clock_jumped_back` (from a ``/clock`` jump callback with ``use_sim_time``)
makes the next frame start over whatever its stamp. Plain Python, thread-safe.
"""
from __future__ import annotations

import enum
import threading

__all__ = ["StampOrder", "Verdict", "jump_message"]


class Verdict(enum.Enum):
    IN_ORDER = "in_order"
    REORDERED = "reordered"
    JUMPED_BACK = "jumped_back"  # the stamp is far older than the last one
    CLOCK_JUMPED_BACK = "clock_jumped_back"  # older than the last one after a /clock jump back


class StampOrder:
    """Order of processed frame stamps (integer nanoseconds).

    Args:
        jump_back_s: a stamp older than the last accepted one by more than this (seconds) is
            a jump back in time; up to this it is a reordering. ``> 0``.
    """

    def __init__(self, jump_back_s: float):
        if not jump_back_s > 0:
            raise ValueError(f"jump_back_s must be > 0, got {jump_back_s}")
        self.jump_back_s = float(jump_back_s)
        self._last: int | None = None
        self._clock_jump = False
        self._lock = threading.Lock()

    @property
    def last_ns(self) -> int | None:
        """The newest accepted stamp (``None`` before the first or after a reset)."""
        return self._last

    def check(self, stamp_ns: int) -> tuple[Verdict, float]:
        """Classify ``stamp_ns``; a jump back forgets the last stamp (the time state starts over).

        Returns ``(verdict, back_s)`` with ``back_s = (last - stamp) / 1e9`` (0 for the first
        frame; negative when in order). Call :meth:`accept` once the frame was processed.
        """
        with self._lock:
            last, jumped = self._last, self._clock_jump
            self._clock_jump = False
            back_s = 0.0 if last is None else (last - stamp_ns) / 1e9
            if back_s <= 0:
                return Verdict.IN_ORDER, back_s
            if jumped:
                verdict = Verdict.CLOCK_JUMPED_BACK
            elif back_s <= self.jump_back_s:
                return Verdict.REORDERED, back_s
            else:
                verdict = Verdict.JUMPED_BACK
            self._last = None
            return verdict, back_s

    def accept(self, stamp_ns: int) -> None:
        """The frame stamped ``stamp_ns`` was processed: later frames are ordered after it."""
        with self._lock:
            self._last = int(stamp_ns) if self._last is None else max(self._last, int(stamp_ns))

    def clock_jumped_back(self) -> None:
        """The node's clock went back (``/clock`` of a looping player): the next frame starts over."""
        with self._lock:
            self._clock_jump = True

    def reset(self) -> None:
        with self._lock:
            self._last, self._clock_jump = None, False


def jump_message(verdict: Verdict, back_s: float) -> str:
    """The one log line of a reset (``verdict``: one of the two jump verdicts)."""
    why = "/clock jumped back" if verdict is Verdict.CLOCK_JUMPED_BACK else "frame stamp"
    return (f"time went back ({why}: {back_s:.3f} s older than the last frame processed; a looping recording or "
            "a simulator reset?): starting over from this frame")
