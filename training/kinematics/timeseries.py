"""Finding the two samples that bracket a time, with extrapolation and gap checks.

Shared by the TF buffer (transform samples) and the joint-state track (joint positions).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ExtrapolationError", "GapError", "bracket", "format_stamp"]


def format_stamp(stamp_ns: int) -> str:
    """A header/log stamp in nanoseconds as seconds with full precision: ``12.000000345 s``."""
    stamp_ns = int(stamp_ns)
    sign = "-" if stamp_ns < 0 else ""
    sec, nsec = divmod(abs(stamp_ns), 1_000_000_000)
    return f"{sign}{sec}.{nsec:09d} s"


class ExtrapolationError(LookupError):
    """The time lies outside the samples by more than the tolerance (TF or joint states)."""


class GapError(ExtrapolationError):
    """The two bracketing samples are further apart than the allowed gap."""


def bracket(stamps: np.ndarray, t: int, *, tolerance_ns: int, max_gap_ns: int | None,
            what: str, name: str,
            extrapolation_error: type[Exception] = ExtrapolationError,
            gap_error: type[Exception] = GapError) -> tuple[int, int, float]:
    """Indices ``(i, j)`` and weight ``alpha`` such that ``value(t) = (1 - alpha) v[i] + alpha v[j]``.

    ``stamps`` is a sorted ``(N,)`` int64 array (nanoseconds), ``N >= 1``. With ``a = stamps[i]``
    and ``b = stamps[j]`` the two samples around ``t``: ``alpha = (t - a) / (b - a)``. An exact
    hit gives ``i == j`` and ``alpha = 0``; a time within ``tolerance_ns`` before the first
    (after the last) sample is clamped to that sample.

    Raises:
        extrapolation_error: ``t`` further than ``tolerance_ns`` outside ``[stamps[0], stamps[-1]]``.
        gap_error: ``b - a > max_gap_ns``.
        Both messages start with ``what`` (the lookup) and name the series ``name``.
    """
    n = len(stamps)
    if n == 0:
        raise extrapolation_error(f"{what}: {name} has no samples")
    i = int(np.searchsorted(stamps, t, side="right"))  # stamps[:i] <= t
    if i > 0 and stamps[i - 1] == t:
        return i - 1, i - 1, 0.0
    if i == 0 or i == n:
        k = 0 if i == 0 else n - 1
        dist = abs(int(stamps[k]) - t)
        if dist <= tolerance_ns:
            return k, k, 0.0
        side = "before the first" if i == 0 else "after the last"
        raise extrapolation_error(
            f"{what}: extrapolation: {name} has samples from {format_stamp(stamps[0])} to "
            f"{format_stamp(stamps[-1])}; the time is {dist / 1e9:.6f} s {side} sample "
            f"(tolerance {tolerance_ns / 1e9:.6f} s)")
    a, b = int(stamps[i - 1]), int(stamps[i])
    if max_gap_ns is not None and b - a > max_gap_ns:
        raise gap_error(
            f"{what}: gap in {name}: no samples between {format_stamp(a)} and {format_stamp(b)} "
            f"({(b - a) / 1e9:.6f} s > max gap {max_gap_ns / 1e9:.6f} s)")
    return i - 1, i, (t - a) / (b - a)
