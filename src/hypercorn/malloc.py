"""Fixed glibc allocator thresholds for a process that serves large bodies.

glibc's ``malloc`` serves a request above ``M_MMAP_THRESHOLD`` with a fresh ``mmap`` and
returns free memory at the top of its heap to the kernel once it exceeds ``M_TRIM_THRESHOLD``.
Both start low (128 KiB) and move at run time: freeing a large mapped block raises the first to
that block's size and the second to twice it. A server that handles megabyte bodies (a 1 MiB
response is a few megabyte-sized buffers between the application, the protocol and the
socket) then lands, depending on the exact sizes and the heap's layout at the time, either
where those buffers are reused or where every request maps or grows the heap afresh, trims it
again when done, and page-faults its way through every byte. The benchmark showed both:
the same server at ~1,000 or ~4,800 1 MiB downloads per second, chosen when it started.

:func:`tune_allocator` fixes the thresholds where glibc's own adjustment would take them for
8 MiB bodies (mapped above 8 MiB, trimmed above 16 MiB free), so the behaviour is the same
from the first request and in every process. The cost is bounded: at most 16 MiB of free heap
kept per arena instead of being returned at once.

The command line (:func:`hypercorn.run.run`) calls it in every serving process. A program that
embeds the server through ``serve()`` owns its allocator and is left alone. Setting any of
glibc's own ``MALLOC_*_`` variables or a ``glibc.malloc`` tunable also leaves the allocator
alone, so an operator's choice wins. Other C libraries (musl in Alpine images) are not touched.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping
from typing import Optional, cast

MMAP_THRESHOLD = 8 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_OPERATOR_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)


def is_glibc() -> bool:
    """Whether this process runs on glibc (whose allocator this module tunes)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def _glibc_mallopt() -> Optional[Callable[[int, int], int]]:
    if not is_glibc():
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return cast(Callable[[int, int], int], mallopt)


def tune_allocator(
    environ: Mapping[str, str] = os.environ,
    mallopt: Optional[Callable[[int, int], int]] = None,
) -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring). Returns whether they
    were set: not when the operator configured the allocator, nor on another C library."""
    if any(name in environ for name in _OPERATOR_SETTINGS):
        return False
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    if mallopt is None:
        mallopt = _glibc_mallopt()
        if mallopt is None:
            return False
    # mallopt returns 1 on success; setting either threshold also stops glibc moving both.
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
