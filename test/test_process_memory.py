"""keep_large_buffers: multi-megabyte blocks come from the heap (no mmap per frame) when it is on."""
import ctypes
import subprocess
import sys

import pytest

from depth_nodes.process_memory import ENV_SWITCH, keep_large_buffers

# Allocates an 8 MB block (the size class of a 640x480 cloud) and prints how many blocks glibc
# serves by mmap while it is alive (mallinfo2().hblks, glibc >= 2.33).
_PROBE = r"""
import ctypes, sys
from depth_nodes.process_memory import keep_large_buffers
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
print(keep_large_buffers())
before = libc.mallinfo2().hblks
block = bytearray(8 * 1024 * 1024)
during = libc.mallinfo2().hblks
del block
print(during - before)
"""


def _glibc_has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


def _probe(switch: str) -> tuple[str, int]:
    env = {ENV_SWITCH: switch, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    note, mmapped = out.stdout.strip().splitlines()
    return note, int(mmapped)


@pytest.mark.skipif(not _glibc_has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_large_blocks_come_from_the_heap_only_when_switched_on():
    note_off, mmapped_off = _probe("0")
    note_on, mmapped_on = _probe("1")
    assert mmapped_off == 1 and "defaults" in note_off      # glibc's default: one mmap for the block
    assert mmapped_on == 0 and "reused from the heap" in note_on


def test_it_can_be_called_again_and_names_what_it_did():
    first, second = keep_large_buffers(), keep_large_buffers()
    assert first == second and first.startswith("malloc:")
