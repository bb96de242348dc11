"""Keep the server's resident memory small after big temporary arrays (glibc only).

glibc serves multi-megabyte blocks from heap arenas once it has seen one freed (its mmap
threshold grows up to 32 MB), gives each thread its own arena (up to 8 per core), and
keeps freed arena memory mapped. Gene vectors of a few MB answered from a dozen server
threads would each leave an arena holding them: hundreds of MB for nothing. Limiting the
arenas keeps the fast heap reuse (mapping every block afresh costs ~2 ms per gene in page
faults) without the bloat. Elsewhere (macOS, Windows, musl) these do nothing.
"""

from __future__ import annotations

import ctypes
import threading

_M_ARENA_MAX = -8  # glibc's mallopt parameter number
_ARENAS = 2
_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
_loaded = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            try:
                libc = ctypes.CDLL("libc.so.6")
                _libc = libc if hasattr(libc, "malloc_trim") else None
            except OSError:
                _libc = None
        return _libc


def limit_arenas() -> None:
    """Share two heap arenas among all threads created from now on."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, _ARENAS)


def return_freed_memory() -> None:
    """Give the heap's free pages back to the OS (after a big job such as an index build)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
