"""CPU memory allocator tuning (glibc ``mallopt``).

By default glibc serves every allocation above 128 KiB-32 MiB with a fresh ``mmap`` and gives
it back to the OS on ``free``. A training step allocates and frees the same large activations
and gradients (tens of MB each) every step, so each of them is page-faulted and zeroed by the
kernel again and again, a measurable share of a CPU step (docs/performance.md).
:func:`keep_freed_memory` makes glibc take large blocks from the heap and keep what is freed
there, so the next step reuses the same pages (what jemalloc/tcmalloc, which Intel's PyTorch
CPU guide recommends, do too). The price is a resident peak that does not shrink back between
steps. ``train.py --no_malloc_tuning`` leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Freed memory at the top of the heap is returned to the OS only beyond this (the int maximum).
_TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory for reuse (glibc only).

    Returns True when the allocator was tuned, False where there is no glibc ``mallopt``
    (macOS, Windows, musl) and nothing was changed. Process-wide; forked workers inherit it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; no mmap-ed chunks, so every block is reusable heap
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
