"""One open `.h5ad` per dataset, shared safely by the server's worker threads.

h5py serialises calls on a handle, but a multi-step read (open a group, look up an
attribute, slice) must not interleave with another thread's, so every read holds the
reader's lock. The opener is any callable returning an ``h5py.File``, so the same
reader works on a local path or on a Python file object (a remote file read through
HTTP Range requests). When the file is local, it is also opened for positioned reads
so the big sparse arrays are scanned without going through HDF5 (see flat_array).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.flat_array import FlatArray, SharedFile
from cellucid_desktop.data.h5ad import AnnDataMeta, read_metadata
from cellucid_desktop.fileio import PositionalFile


def stat_identity(st: os.stat_result) -> str:
    """A file version's identity: size, mtime (ns) and inode, in hex."""
    return f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"


def file_identity(path: str | os.PathLike[str]) -> str:
    """The identity of the file at ``path`` now."""
    return stat_identity(os.stat(path))


class DatasetReader:
    """A lazily opened handle plus the dataset's metadata, closed by ``close()``.

    ``identity`` names the file version (see file_identity); it keys ETags and the
    gene-index cache, so it must change whenever the bytes do.
    """

    def __init__(self, opener: Callable[[], h5py.File], *, identity: str,
                 local_path: Path | None = None) -> None:
        self.identity = identity
        self.local_path = local_path
        self._opener = opener
        self._lock = threading.RLock()
        self._h5: h5py.File | None = None
        self._meta: AnnDataMeta | None = None
        self._file: SharedFile | None = None  # the local file, for reads bypassing HDF5
        self._flat: dict[str, FlatArray] = {}
        self._closed = False

    def _open(self) -> h5py.File:
        if self._closed:
            raise DatasetError("This dataset was closed; open the file again")
        if self._h5 is None:
            h5 = self._opener()
            try:
                self._meta = read_metadata(h5)
            except (KeyError, ValueError, TypeError, OSError, IndexError) as exc:
                h5.close()
                raise DatasetError(f"The file is not a readable AnnData file: {exc}") from None
            self._h5 = h5
            if self.local_path is not None:
                self._file = _open_same_version(self.local_path, self.identity)
        return self._h5

    @contextmanager
    def file(self) -> Iterator[h5py.File]:
        """The open file, held exclusively for the duration of the block."""
        with self._lock:
            yield self._open()

    @property
    def meta(self) -> AnnDataMeta:
        with self._lock:
            self._open()
            assert self._meta is not None
            return self._meta

    def flat(self, name: str) -> FlatArray:
        """Block/gather access to a 1-D array such as ``X/indices``."""
        with self._lock:
            h5 = self._open()
            array = self._flat.get(name)
            if array is None:
                ds = h5[name]
                if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                    raise DatasetError(f"{name} is not a one-dimensional array")
                array = self._flat[name] = FlatArray(ds, self._file, self._lock)
            return array

    def close(self) -> None:
        """Release the handle and the file; later reads raise DatasetError."""
        with self._lock:
            self._closed = True
            self._flat.clear()
            if self._h5 is not None:
                self._h5.close()
                self._h5 = None
            if self._file is not None:
                self._file.close()
                self._file = None


def _open_same_version(path: Path, identity: str) -> SharedFile | None:
    """The file, opened for positioned reads, if it is still the version h5py opened."""
    try:
        file = PositionalFile.open(path)
    except OSError:
        return None
    st = os.fstat(file.fileno())
    if stat_identity(st) != identity or not st.st_size:
        file.close()
        return None
    return SharedFile(file)
