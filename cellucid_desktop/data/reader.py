"""One open dataset per reader, shared safely by the server's worker threads.

The reader opens its DatasetSource lazily and asks the source's Layout for everything
(metadata, embeddings, obs columns, gene columns, the 1-D arrays a gene scan reads). h5py
serialises calls on a handle and zarr runs its reads on one event loop, but a multi-step
read (open a group, look up an attribute, slice) must not interleave with another
thread's, so every read holds the reader's lock. When the source is a local HDF5 file,
it is also opened for positioned reads so the big sparse arrays are scanned without
going through HDF5 (see flat_array). Whatever a damaged store makes the libraries raise
becomes a DatasetError naming the element, never a traceback, and never a local path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cellucid_desktop.data.embeddings import Embedding, find_embedding
from cellucid_desktop.data.errors import (READ_ERRORS, DatasetError, SourceUnreachable,
                                          TransportError)
from cellucid_desktop.data.flat_array import FlatArray, SharedFile
from cellucid_desktop.data.h5ad import AnnDataMeta
from cellucid_desktop.data.layout import Layout
from cellucid_desktop.data.obs import ObsColumn
from cellucid_desktop.data.source import DatasetSource
from cellucid_desktop.fileio import PositionalFile

log = logging.getLogger(__name__)


def stat_identity(st: os.stat_result) -> str:
    """A file version's identity: size, mtime (ns) and inode, in hex."""
    return f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"


def file_identity(path: str | os.PathLike[str]) -> str:
    """The identity of the file at ``path`` now."""
    return stat_identity(os.stat(path))


class DatasetReader:
    """A lazily opened source plus the dataset's metadata, closed by ``close()``.

    ``identity`` names the data version (DatasetSource.identity); it keys ETags and the
    gene-index cache, so it must change whenever the bytes do. ``location`` names the
    dataset (path or URL and modality) for the gene-index cache.
    """

    def __init__(self, source: DatasetSource, identity: str) -> None:
        self.source = source
        self.identity = identity
        self.location = source.location
        self._lock = threading.RLock()
        self._layout: Layout | None = None
        self._meta: AnnDataMeta | None = None
        self._embeddings: list[Embedding] | None = None
        self._file: SharedFile | None = None  # the local file, for reads bypassing HDF5
        self._flat: dict[str, FlatArray] = {}
        self._closed = False

    def _open(self) -> Layout:
        if self._closed:
            raise DatasetError("This dataset was closed; open the file again")
        if self._layout is None:
            layout = self.source.open()
            try:
                with _readable("the dataset's description"):
                    self._meta = layout.metadata()
            except BaseException:
                layout.close()
                raise
            self._layout = layout
            path = self.source.positioned_file()
            if path is not None:
                self._file = _open_same_version(path, self.identity)
        return self._layout

    @contextmanager
    def _reading(self, what: str) -> Iterator[Layout]:
        """The open layout, held exclusively, its library errors made sentences."""
        with self._lock, _readable(what):
            yield self._open()

    @property
    def meta(self) -> AnnDataMeta:
        with self._lock:
            self._open()
            assert self._meta is not None
            return self._meta

    def embeddings(self) -> list[Embedding]:
        """Drawable embeddings, best first (listed once)."""
        with self._reading("the embeddings (obsm)") as layout:
            if self._embeddings is None:
                self._embeddings = layout.embeddings(self.meta.n_cells)
            return self._embeddings

    def find_embedding(self, key: str) -> Embedding:
        return find_embedding(self.embeddings(), key)

    def embedding(self, embedding: Embedding) -> np.ndarray:
        with self._reading(f"the embedding {embedding.key!r}") as layout:
            return layout.embedding(embedding)

    def obs_column(self, key: str) -> ObsColumn:
        with self._reading(f"the obs column {key!r}") as layout:
            return layout.obs_column(key)

    def gene_names(self, var_path: str) -> np.ndarray:
        with self._reading(f"the gene names ({var_path})") as layout:
            return layout.gene_names(var_path)

    def obs_names(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The cells' names (barcodes), all or those at the sorted ``rows``."""
        with self._reading("the cell names (the obs index)") as layout:
            return layout.obs_names(rows)

    def column(self, path: str, gene: int) -> np.ndarray:
        with self._reading(f"gene {gene} of {path}") as layout:
            return layout.column(path, gene)

    def columns(self, path: str, g0: int, g1: int) -> np.ndarray:
        """Columns [g0, g1) of a dense matrix: [n_cells, g1 - g0]."""
        with self._reading(f"genes {g0}..{g1 - 1} of {path}") as layout:
            return layout.columns(path, g0, g1)

    def flat(self, name: str) -> FlatArray:
        """Block/gather access to a 1-D array such as ``X/indices``."""
        with self._reading(name) as layout:
            array = self._flat.get(name)
            if array is None:
                ds = layout.array(name)
                direct = self._file if self.source.positioned_file() is not None else None
                array = self._flat[name] = FlatArray(ds, direct, _GuardedLock(self._lock, name))
            return array

    def close(self) -> None:
        """Release the handle and the file; later reads raise DatasetError."""
        with self._lock:
            self._closed = True
            self._flat.clear()
            if self._layout is not None:
                self._layout.close()
                self._layout = None
            if self._file is not None:
                self._file.close()
                self._file = None


def _as_sentence(exc: BaseException, what: str) -> DatasetError | None:
    """The DatasetError a library error while reading ``what`` stands for, or None."""
    if isinstance(exc, SourceUnreachable):
        return None  # passes through as is: the read can succeed once the tunnel is back
    if isinstance(exc, TransportError):
        return DatasetError(str(exc))
    if isinstance(exc, READ_ERRORS) and not isinstance(exc, DatasetError):
        log.warning("Reading %s failed", what, exc_info=exc)
        return DatasetError(f"Reading {what} failed ({type(exc).__name__}); the file or store "
                            "may be damaged or incompletely copied")
    return None


@contextmanager
def _readable(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only read errors are translated
        sentence = _as_sentence(exc, what)
        if sentence is None:
            raise
        raise sentence from None


class _GuardedLock:
    """The reader's lock for FlatArray reads, turning library errors into sentences
    (a chunk that does not decompress in the middle of a gene scan). Stateless, so the
    same thread may hold it re-entrantly (a scan's blocks around a gather)."""

    def __init__(self, lock: threading.RLock, what: str) -> None:
        self._lock = lock
        self._what = what

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        self._lock.release()
        sentence = _as_sentence(exc, self._what) if exc is not None else None
        if sentence is not None:
            raise sentence from None
        return False


def _open_same_version(path: Path, identity: str) -> SharedFile | None:
    """The file, opened for positioned reads, if it is still the version h5py opened."""
    try:
        file = PositionalFile.open(path)
    except OSError:
        return None
    st = os.fstat(file.fileno())
    if not identity.startswith(stat_identity(st)) or not st.st_size:
        file.close()
        return None
    return SharedFile(file)
