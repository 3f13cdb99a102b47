"""Reuse of large freed blocks during a long scoring loop (glibc's allocator; a no-op elsewhere).

A screen allocates and frees the same few large tensors (kernel blocks of training rows x
candidates, tens of MB each) thousands of times. glibc serves a block above its mmap threshold
(dynamic, at most 32 MiB) with a fresh ``mmap`` and returns it with ``munmap``, and trims the
heap's free top above twice that; every new block is then zero-filled by the kernel page by
page. On the ready-made band-gap hurdle that page-faulting was about a quarter of a screen's
time (20,000 candidates: 21.9 s, of which 13.6 s of system time, against 16.0 s with the
thresholds raised; measured by hand on 2 cores). :func:`reuse_large_blocks` raises both
thresholds for the duration of the block, so freed blocks stay in the heap and are reused, and
on leaving it gives the free memory back (``malloc_trim``) and sets the thresholds to fixed
values, those glibc's dynamic rule reaches for such blocks (32 MiB and 64 MiB): glibc has no
way to read the previous ones, and a fixed value ends its dynamic adjustment (and overrides a
``MALLOC_MMAP_THRESHOLD_`` setting) for the rest of the process.

The setting is process-wide: nested and concurrent uses are counted, and the first to enter
and the last to leave set and restore it. Peak memory is the loop's largest working set plus
the heap's fragmentation (``benchmarks/bench_screen.py`` measures it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator

__all__ = ["reuse_large_blocks"]

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: inside the block: blocks up to 1 GiB come from the heap, and its free top is kept up to 1 GiB
#: (the first few large blocks after the change may still be faulted in afresh; a loop's later
#: ones are reused)
_INSIDE = 1 << 30
#: on leaving: glibc's dynamic thresholds after freeing blocks of 32 MiB or more
_MMAP_AFTER = 32 << 20
_TRIM_AFTER = 64 << 20

_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is False:
        _libc = None
        if sys.platform.startswith("linux"):
            try:
                import platform

                if platform.libc_ver()[0] == "glibc":
                    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                    if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                        _libc = lib
            except (OSError, ValueError):
                _libc = None
    return _libc  # type: ignore[return-value]


@contextlib.contextmanager
def reuse_large_blocks() -> Iterator[None]:
    """Keep freed large blocks in the heap inside the block (glibc); no effect elsewhere."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            # glibc's manual caps the mmap threshold at 32 MiB on 64-bit systems, and some
            # releases refuse more (2.36 takes 1 GiB): then the cap, which still keeps blocks
            # up to 32 MiB in the heap
            if not libc.mallopt(_M_MMAP_THRESHOLD, _INSIDE):
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_AFTER)
            libc.mallopt(_M_TRIM_THRESHOLD, _INSIDE)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_AFTER)
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_AFTER)
                libc.malloc_trim(0)
