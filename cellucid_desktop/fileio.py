"""Positioned reads and writes that work on every OS, fast where the OS allows.

``os.pread``/``os.preadv``/``os.pwrite`` read or write at an offset without moving a
shared file position, so several threads can use one descriptor at once. Windows has
none of them and macOS has ``preadv`` only from 11, so :class:`PositionalFile` picks
by feature detection: the calls where they exist, else a lock around ``seek`` plus
``read``/``write`` on a handle it owns (no one else moves its position).
:class:`PageCacheView` tells whether bytes are already in memory (Linux ``mincore``), for
code that must never wait on a disk or a network file system.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
import weakref
from typing import BinaryIO

_PREAD = getattr(os, "pread", None)
_PREADV = getattr(os, "preadv", None)
_PWRITE = getattr(os, "pwrite", None)


class PositionalFile:
    """A binary file read (and written) at explicit offsets, safely from many threads.

    Owns ``handle``: closing this object closes it.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self._fd = handle.fileno()
        self._lock = threading.Lock()  # the fallback's seek and read must not interleave

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "rb") -> PositionalFile:
        return cls(open(path, mode, buffering=0))  # noqa: SIM115 - owned by the object

    def fileno(self) -> int:
        return self._fd

    def readinto(self, view: memoryview, offset: int) -> int:
        """Fill as much of ``view`` as the file holds from ``offset``; bytes read."""
        if _PREADV is not None:
            return _PREADV(self._fd, [view], offset)
        with self._lock:
            self.handle.seek(offset)
            return self.handle.readinto(view) or 0

    def read(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the file)."""
        if _PREAD is not None:
            return _PREAD(self._fd, length, offset)
        with self._lock:
            self.handle.seek(offset)
            return self.handle.read(length) or b""

    def write(self, data: bytes, offset: int) -> None:
        """Write all of ``data`` at ``offset``."""
        view = memoryview(data)
        while view:
            if _PWRITE is not None:
                done = _PWRITE(self._fd, view, offset)
            else:
                with self._lock:
                    self.handle.seek(offset)
                    done = self.handle.write(view) or 0
            view, offset = view[done:], offset + done

    def close(self) -> None:
        self.handle.close()


class PageCacheView:
    """Which bytes of a file are in memory (the page cache), asked without reading them:
    ``mincore`` over a read-only shared mapping of the file (Linux; nothing is read or
    faulted in, the mapping only names the pages). Made by :meth:`create`, which gives
    None where the OS offers no such question; the mapping goes with the object."""

    def __init__(self, address: int, size: int) -> None:
        self._address = address
        self._size = size
        self._vector = ctypes.create_string_buffer(_INLINE_PAGES + 1)
        weakref.finalize(self, _LIBC.munmap, address, size)

    @classmethod
    def create(cls, fd: int, size: int) -> PageCacheView | None:
        if _LIBC is None or size <= 0:
            return None
        address = _LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            return None
        return cls(address, size)

    def resident(self, offset: int, length: int) -> bool:
        """True if every byte of ``offset .. offset+length`` is in memory now (False
        for ranges past the size mapped or longer than INLINE_BYTES)."""
        first = offset - offset % _PAGE
        pages = -(-(offset + length - first) // _PAGE)
        if length <= 0 or offset + length > self._size or pages > _INLINE_PAGES:
            return False
        if _LIBC.mincore(self._address + first, offset + length - first, self._vector):
            return False
        return b"\x00" not in self._vector.raw[:pages]


class ChangeWatch:
    """Whether any watched file changed since the last ask, answered without blocking
    (Linux inotify: the kernel queues an event during the writer's own system call, so
    a change made before a request was sent is always seen by it). Made by
    :meth:`create`, which gives None where the OS has no such watch."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        weakref.finalize(self, os.close, fd)

    @classmethod
    def create(cls) -> ChangeWatch | None:
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        return cls(fd) if fd >= 0 else None

    def watch(self, path: str | os.PathLike[str]) -> None:
        """Watch the file now at ``path``: writes, truncation, metadata, moves, deletion
        (a file replaced by a rename loses a link: a metadata change)."""
        _LIBC.inotify_add_watch(self._fd, os.fsencode(path), _WATCH_MASK)

    def changed(self) -> bool:
        """True if a watched file changed since the last call (events are consumed)."""
        seen = False
        while True:
            try:
                if not os.read(self._fd, 65536):
                    return seen
            except BlockingIOError:
                return seen
            except OSError:
                return True
            seen = True


def _linux_libc() -> ctypes.CDLL | None:
    """The C library's mmap/mincore/munmap with their argument types, on Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mincore = libc.mincore
    except (OSError, AttributeError):
        return None
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


INLINE_BYTES = 1 << 20  # the longest range PageCacheView answers for
_PAGE = mmap.PAGESIZE
_INLINE_PAGES = INLINE_BYTES // _PAGE + 1
_MAP_FAILED = ctypes.c_void_p(-1).value
# IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF
_WATCH_MASK = 0x002 | 0x004 | 0x800 | 0x400
_LIBC = _linux_libc()
