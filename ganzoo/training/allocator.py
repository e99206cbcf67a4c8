"""Freed memory kept for reuse: glibc's malloc tuned for a CPU training process.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and gives it back with ``munmap`` when freed. A CPU training step allocates such
buffers every step (the float32 gradient of a 1024 -> 512 4x4 weight is 32 MiB), so each one
costs a page fault per 4 KiB page, ~20-40 thousand per step of ``pix2pix_unet256``.
:func:`keep_freed_memory` raises the mmap and trim thresholds so that freed buffers stay in
the heap and are reused: ~30 faults per step, 1-9 % off the step (docs/performance.md). The
process keeps its peak heap until it exits, as a training process does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Allocations below this come from the heap.
MMAP_THRESHOLD = 1 << 30
#: Free memory at the heap's top kept rather than given back (mallopt takes a C int).
TRIM_THRESHOLD = 2**31 - 1

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); False where the C
    library is not glibc or refuses."""
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
