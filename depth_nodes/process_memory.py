"""Keep large buffers inside the process: no page faults per frame for multi-megabyte messages.

A node serialises and deserialises messages of several megabytes per frame (a 640x480 ``points2``
is 4.9 MB, each colour image 0.9 MB) and OpenCV's matchers allocate their cost volumes per call.
glibc's ``malloc`` serves every block above ``M_MMAP_THRESHOLD`` (128 kB to start with) with a
fresh ``mmap`` and gives it back with ``munmap`` on ``free``, and trims the heap top above
``M_TRIM_THRESHOLD``; the next frame then touches new pages, and each first touch is a page fault
that the kernel must zero-fill. On the 2-core development VM that made serialising one 4.9 MB
cloud take ~13 ms instead of ~0.6 ms (``benchmarks/bench_stereo.py``).

:func:`keep_large_buffers` raises both thresholds (``mallopt``) so that freed blocks stay in the
heap and are reused by the next frame: the memory a node holds settles at its per-frame working
set (a few tens of MB) instead of going up and down with every frame. It is what real-time ROS
set-ups do with ``mlockall``/pre-faulting, without pinning memory. Set
``DEPTH_NODES_KEEP_LARGE_BUFFERS=0`` to leave glibc's defaults alone; on a C library other than
glibc it does nothing and says so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_large_buffers", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "ENV_SWITCH"]

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# 64 MB covers a 1920x1080 xyz+rgb cloud (33 MB); glibc releases that refuse more than their
# DEFAULT_MMAP_THRESHOLD_MAX (32 MB on 64-bit) get that instead.
MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024
_MMAP_THRESHOLD_FALLBACK = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
ENV_SWITCH = "DEPTH_NODES_KEEP_LARGE_BUFFERS"


def keep_large_buffers(mmap_threshold: int = MMAP_THRESHOLD_BYTES,
                       trim_threshold: int = TRIM_THRESHOLD_BYTES) -> str:
    """Ask glibc to serve blocks up to ``mmap_threshold`` bytes from the heap and to keep up to
    ``trim_threshold`` bytes of free heap instead of returning it to the kernel.

    Returns a one-line description of what was done (for the node's start-up log). Safe to call
    more than once; does nothing when ``DEPTH_NODES_KEEP_LARGE_BUFFERS=0`` or without glibc.
    """
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"malloc: glibc defaults ({ENV_SWITCH}=0)"
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "malloc: not glibc, large buffers are left to the C library"
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) != 1:
        mmap_threshold = min(int(mmap_threshold), _MMAP_THRESHOLD_FALLBACK)
        if mallopt(_M_MMAP_THRESHOLD, mmap_threshold) != 1:
            return "malloc: mallopt refused the thresholds, glibc defaults kept"
    if mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) != 1:
        return "malloc: mallopt refused the thresholds, glibc defaults kept"
    return (f"malloc: blocks up to {mmap_threshold >> 20} MB reused from the heap "
            f"(trim above {trim_threshold >> 20} MB)")
