"""Which frames of a recording are evaluated.

Frames are numbered ``0 .. n-1`` in header-stamp order of the colour images (for a simulator
recording, the order of ``stamps_ns`` in its ``.groundtruth.npz``, which is the same). A
:class:`FrameSelection` picks from them, in this order:

1. ``tail``: the held-out tail, the last ``ceil(tail * n)`` frames (``tail = 0.2`` -> last 20%),
   i.e. frames ``i >= n - ceil(tail * n)``. The training modes hold out the same tail with
   ``--val-fraction`` (:mod:`depth_training.modes.holdout`, same formula); they count the frames
   they decoded, so the two tails are the same frames when every colour image has its depth
   partner (always so for simulator recordings);
2. ``start``, ``stop``: frames ``start <= i < stop`` (``stop = None``: to the end), absolute
   indices, intersected with 1.;
3. ``every``: every ``every``-th of what is left, starting with its first frame.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["FrameSelection", "parse_range", "tail_start"]


def tail_start(n: int, tail: float) -> int:
    """First index of the held-out tail of ``n`` frames: ``n - ceil(tail * n)`` (``0 < tail <= 1``).

    A tiny tolerance keeps float products such as ``0.2 * 10`` from rounding up to an extra frame.
    """
    if not 0.0 < tail <= 1.0:
        raise ValueError(f"tail: expected a fraction in (0, 1], got {tail}")
    return n - int(math.ceil(tail * n - 1e-9))


@dataclass(frozen=True)
class FrameSelection:
    """``start``/``stop``/``every``/``tail`` as in the module docstring."""

    start: int = 0
    stop: int | None = None
    every: int = 1
    tail: float | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop < 0):
            raise ValueError(f"frames: indices must be >= 0, got {self.start}:{self.stop}")
        if self.every < 1:
            raise ValueError(f"every: expected >= 1, got {self.every}")
        if self.tail is not None:
            tail_start(0, self.tail)  # range check

    def indices(self, n: int) -> np.ndarray:
        """The selected frame indices of ``n`` frames: ``(M,)`` int64, increasing."""
        first = self.start if self.tail is None else max(self.start, tail_start(n, self.tail))
        last = n if self.stop is None else min(self.stop, n)
        return np.arange(first, max(first, last), self.every, dtype=np.int64)

    def describe(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """The selection as the options that make it: ``--frames 10:50 --every 2 --tail 0.2`` (or "all frames")."""
        parts = []
        if self.start or self.stop is not None:
            parts.append(f"--frames {self.start or ''}:{'' if self.stop is None else self.stop}")
        if self.every != 1:
            parts.append(f"--every {self.every}")
        if self.tail is not None:
            parts.append(f"--tail {self.tail:g}")
        return " ".join(parts) or "(all frames)"


def parse_range(text: str) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)``, ``"A:"`` -> ``(A, None)``, ``":B"`` -> ``(0, B)``, ``"A"`` -> ``(A, A + 1)``."""
    head, sep, tail = text.partition(":")
    try:
        start = int(head) if head.strip() else 0
        if not sep:
            return start, start + 1
        return start, (int(tail) if tail.strip() else None)
    except ValueError:
        raise ValueError(f"frames: expected A:B, A: or :B with integers, got {text!r}") from None
