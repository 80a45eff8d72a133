"""Progress for the non-training commands (``info``, ``eval``, ``export``): a tqdm bar with rate and
ETA when stderr is a terminal, plain periodic lines when it is not.

:func:`progress` wraps an iterable. On a terminal it is a :class:`tqdm.tqdm` (cleared when done,
so tables printed afterwards stay readable); piped, a line such as
``depth-train info: 12000/48000 messages (25%), 3100 messages/s, eta 0:00:11`` goes to stderr at
most every ``period_s`` seconds (default 30, and nothing for work that ends sooner). Training
has its own bar (:class:`~depth_training.engine.monitor.Monitor`).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from .monitor import format_duration

__all__ = ["progress", "format_rate"]

T = TypeVar("T")


def format_rate(rate: float, unit: str) -> str:
    """``rate`` items per second with the digits that matter: ``3100 messages/s``, ``2.4 batches/s``,
    ``0.031 batches/s`` (three significant digits below 100; never a rounded-down ``0``)."""
    return f"{rate:.0f} {unit}/s" if rate >= 100 else f"{rate:.3g} {unit}/s"


def progress(items: Iterable[T], *, total: int | None, desc: str, unit: str, period_s: float = 30.0,
             terminal: bool | None = None, stream=None) -> Iterator[T]:
    """Yield ``items`` while showing progress on ``stream`` (default ``sys.stderr``)."""
    stream = stream or sys.stderr
    if terminal is None:
        terminal = bool(getattr(stream, "isatty", lambda: False)())
    if terminal:
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit=f" {unit}", leave=False, file=stream,
                        dynamic_ncols=True, smoothing=0.1)
        return
    t0 = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= period_s:
            last = now
            rate = done / (now - t0) if now > t0 else 0.0
            if total:
                eta = format_duration((total - done) / rate) if rate > 0 else "?"
                text = f"{done}/{total} {unit} ({100 * done / total:.0f}%), {format_rate(rate, unit)}, eta {eta}"
            else:
                text = f"{done} {unit}, {format_rate(rate, unit)}"
            print(f"{desc}: {text}", file=stream, flush=True)
