"""Freed memory goes back to the system: glibc's malloc is told to map every large block
on its own (docs/adr/0023).

By default glibc raises the size from which it maps a block on its own each
time such a block is freed (up to 32 MB), so after the first 1 MiB read
buffer is freed every later one comes from the heap, and a heap's free space
is handed back only from its top. A push of 100,000 articles reads and
frees gigabytes in 1 MiB chunks in several threads (each with its own heap)
while it keeps long-lived records among them: its peak RSS was 254 MB with
the default and 179 MB with the threshold fixed at 128 KiB, the same as
``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072`` in the
environment. Elsewhere (musl, macOS, Windows) nothing is changed.
"""

from __future__ import annotations

import contextlib
import sys

LARGE_BLOCK_BYTES = 128 * 1024
"""Blocks of this size and more are mapped on their own and unmapped when freed."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def return_freed_memory() -> bool:
    """Fix glibc's mapping and trimming thresholds for this process; whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # noqa: PLC0415 - only where glibc may be

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # another C library (musl): its mallopt does nothing
        mallopt = libc.mallopt
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        mapped: int = mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)
        trimmed: int = mallopt(_M_TRIM_THRESHOLD, LARGE_BLOCK_BYTES)
        return mapped == 1 and trimmed == 1
    return False
