"""A gene-major copy of a CSR matrix, built once per file version, so any gene is a slice.

The copy lives in the user cache folder (``gene-index/<key>/``: ``indptr.i64``,
``rows.i32``, ``data.f32``, ``meta.json``), keyed by the file's path, identity (size,
mtime, inode) and source, so it is reused across launches and rebuilt when the file
changes. It is built with bounded memory by a two-pass counting sort over blocks of the
stored values: pass 1 counts values per gene, pass 2 scatters each block into its
place in memory-mapped output files. The folder is written under a temporary name and
renamed into place, so a half-built index is never used.

One worker thread builds one index at a time; gene requests keep being answered by
scanning (genes.read_gene) until the index is ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellucid_desktop import paths
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.reader import DatasetReader

log = logging.getLogger(__name__)

FORMAT = 1
BUILD_BLOCK = 1 << 21  # stored values per block: bounds the build's private memory (~100 MB)


class BuildCancelled(Exception):
    """The dataset was closed while its index was being built."""


def index_root() -> Path:
    return paths.cache_dir() / "gene-index"


def index_key(reader: DatasetReader, source: Source) -> str:
    """The cache folder name of one source of one file version."""
    text = f"{FORMAT}\0{reader.local_path or ''}\0{reader.identity}\0{source.id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class GeneIndex:
    """A built index: ``column(g)`` is two positioned reads of one small segment.

    Segments are read with ``preadv`` rather than memory-mapped: the kernel maps
    generous neighbourhoods around each page fault, which would grow the server's
    resident set by megabytes per gene.
    """

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self.n_rows, self.n_cols = int(meta["n_rows"]), int(meta["n_cols"])
        self.indptr = np.fromfile(folder / "indptr.i64", dtype=np.int64)
        nnz = int(self.indptr[-1]) if self.indptr.size else -1
        self._rows = os.open(folder / "rows.i32", os.O_RDONLY)
        self._data = os.open(folder / "data.f32", os.O_RDONLY)
        sizes = (os.fstat(self._rows).st_size, os.fstat(self._data).st_size)
        if self.indptr.size != self.n_cols + 1 or sizes != (nnz * 4, nnz * 4):
            self.close()
            raise DatasetError(f"The gene index {folder.name} is damaged; it will be rebuilt")

    def column(self, gene: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n_rows] with zeros where not stored, the stored values)."""
        start, stop = int(self.indptr[gene]), int(self.indptr[gene + 1])
        rows = np.empty(stop - start, dtype=np.int32)
        values = np.empty(stop - start, dtype=np.float32)
        if stop > start:
            os.preadv(self._rows, [rows], start * 4)
            os.preadv(self._data, [values], start * 4)
        out = np.zeros(self.n_rows, dtype=np.float32)
        out[rows] = values
        return out, values

    def close(self) -> None:
        for fd in (self._rows, self._data):
            os.close(fd)


def build_index(reader: DatasetReader, source: Source, folder: Path, *,
                progress=lambda fraction: None, cancelled: threading.Event | None = None,
                block: int | None = None) -> None:
    """Write the gene-major copy of a CSR source into ``folder`` (made atomically)."""
    cancelled = cancelled or threading.Event()
    block = block or BUILD_BLOCK
    n_rows, n_cols = source.info.shape
    indices = reader.flat(f"{source.path}/indices")
    data = reader.flat(f"{source.path}/data")
    indptr = reader.flat(f"{source.path}/indptr").read(0, n_rows + 1).astype(np.int64)
    nnz = int(indptr[-1])
    if indices.size < nnz or data.size < nnz:
        raise DatasetError(f"{source.label} is damaged: indptr points past its stored values")

    def check(done: int, weight: float, offset: float) -> None:
        if cancelled.is_set():
            raise BuildCancelled()
        progress(offset + weight * done / max(nnz, 1))

    counts = np.zeros(n_cols, dtype=np.int64)
    for first, genes in indices.blocks(0, nnz, block):
        if genes.size and (int(genes.max()) >= n_cols or int(genes.min()) < 0):
            raise DatasetError(f"{source.label} is damaged: a gene index is out of range")
        counts += np.bincount(genes, minlength=n_cols)
        check(first + genes.size, 0.3, 0.0)
    out_indptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(counts, out=out_indptr[1:])

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        out_indptr.tofile(tmp / "indptr.i64")
        with _OutputMap(tmp / "rows.i32", np.int32, nnz) as rows_out, \
                _OutputMap(tmp / "data.f32", np.float32, nnz) as data_out:
            cursor = out_indptr[:-1].copy()
            for lo in range(0, nnz, block):
                hi = min(nnz, lo + block)
                genes, values = indices.read(lo, hi), data.read(lo, hi)
                _scatter(genes, values, _rows_of(indptr, lo, hi), cursor, n_cols,
                         rows_out.array, data_out.array)
                rows_out.release()
                data_out.release()
                check(hi, 0.7, 0.3)
        (tmp / "meta.json").write_text(json.dumps({
            "format": FORMAT, "n_rows": n_rows, "n_cols": n_cols, "nnz": nnz,
            "source": source.id, "path": str(reader.local_path or ""),
            "identity": reader.identity}))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # else another process built it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rows_of(indptr: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The row of each stored value in [lo, hi)."""
    first = int(np.searchsorted(indptr, lo, side="right")) - 1
    last = int(np.searchsorted(indptr, hi - 1, side="right")) - 1
    bounds = np.clip(indptr[first:last + 2], lo, hi)
    return np.repeat(np.arange(first, last + 1, dtype=np.int32), np.diff(bounds))


def _scatter(genes: np.ndarray, values: np.ndarray, rows: np.ndarray, cursor: np.ndarray,
             n_cols: int, rows_out: np.ndarray, data_out: np.ndarray) -> None:
    """Counting-sort one block by gene (stable, so rows stay ascending) into place."""
    keys = genes.astype(np.uint16) if n_cols <= 1 << 16 else genes  # uint16 sorts by radix
    order = np.argsort(keys, kind="stable")
    sorted_genes = genes[order]
    block_counts = np.bincount(genes, minlength=n_cols)
    block_starts = np.cumsum(block_counts) - block_counts
    dest = np.arange(genes.size, dtype=np.int64)
    dest -= block_starts[sorted_genes]
    dest += cursor[sorted_genes]
    rows_out[dest] = rows[order]
    data_out[dest] = values[order]
    cursor += block_counts


@dataclass
class _OutputMap:
    """A file of ``count`` values written through a shared mapping, whose pages are
    dropped from the process after each block (the page cache writes them back)."""

    path: Path
    dtype: type
    count: int
    array: np.ndarray = field(init=False)

    def __enter__(self) -> _OutputMap:
        nbytes = self.count * np.dtype(self.dtype).itemsize
        self._fh = open(self.path, "w+b")  # noqa: SIM115 - closed in __exit__
        self._fh.truncate(nbytes)
        self._map = mmap.mmap(self._fh.fileno(), nbytes) if nbytes else None
        self.array = (np.frombuffer(self._map, dtype=self.dtype) if self._map is not None
                      else np.empty(0, dtype=self.dtype))
        return self

    def release(self) -> None:
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)

    def __exit__(self, *exc: object) -> None:
        del self.array
        if self._map is not None:
            self._map.flush()
            self._map.close()
        self._fh.close()


@dataclass
class _Job:
    key: str
    reader: DatasetReader
    source: Source
    progress: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)


class GeneIndexManager:
    """Builds indexes one at a time in a worker thread and opens the ready ones."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._failed: dict[str, str] = {}
        self._open: dict[str, tuple[DatasetReader, GeneIndex]] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    @property
    def root(self) -> Path:
        return self._root or index_root()

    def folder(self, reader: DatasetReader, source: Source) -> Path:
        return self.root / index_key(reader, source)

    def status(self, reader: DatasetReader, source: Source) -> dict:
        """``{"status", "progress", "message"}`` as the data API reports it."""
        if source.layout != "csr":
            return {"status": "ready", "progress": 1.0,
                    "message": f"{source.label} is stored gene by gene; no index is needed"}
        key = index_key(reader, source)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return {"status": "building", "progress": round(job.progress, 4), "message": None}
            if key in self._failed:
                return {"status": "failed", "progress": 0.0, "message": self._failed[key]}
        if (self.root / key / "meta.json").exists():
            return {"status": "ready", "progress": 1.0, "message": None}
        return {"status": "none", "progress": 0.0, "message": None}

    def ensure(self, reader: DatasetReader, source: Source) -> None:
        """Queue a build unless the index exists, is being built, or failed."""
        if source.layout != "csr":
            return
        key = index_key(reader, source)
        if (self.root / key / "meta.json").exists():
            return
        with self._lock:
            if key in self._jobs or key in self._failed:
                return
            job = self._jobs[key] = _Job(key, reader, source)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="gene-index-builder",
                                                daemon=True)
                self._worker.start()
        self._queue.put(job)

    def open(self, reader: DatasetReader, source: Source) -> GeneIndex | None:
        """The ready index of a CSR source, or None."""
        key = index_key(reader, source)
        with self._lock:
            if key in self._open:
                return self._open[key][1]
        folder = self.root / key
        if not (folder / "meta.json").exists():
            return None
        try:
            index = GeneIndex(folder)
        except (OSError, ValueError, DatasetError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged: the next request rebuilds
            return None
        with self._lock:
            kept = self._open.setdefault(key, (reader, index))[1]
        if kept is not index:
            index.close()
        return kept

    def forget(self, reader: DatasetReader) -> None:
        """Stop building for a closed reader and drop its open indexes."""
        with self._lock:
            for job in self._jobs.values():
                if job.reader is reader:
                    job.cancelled.set()
            for key in [k for k, (owner, _) in self._open.items() if owner is reader]:
                self._open.pop(key)[1].close()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                if not job.cancelled.is_set():
                    self._build(job)
            finally:
                with self._lock:
                    self._jobs.pop(job.key, None)

    def _build(self, job: _Job) -> None:
        folder = self.root / job.key

        def progress(fraction: float) -> None:
            job.progress = fraction

        try:
            build_index(job.reader, job.source, folder, progress=progress,
                        cancelled=job.cancelled)
            self._remove_stale(folder)
            log.info("Gene index ready: %s", folder)
        except BuildCancelled:
            log.info("Gene index build cancelled: %s", folder)
        except (DatasetError, OSError, ValueError) as exc:
            message = (str(exc) if isinstance(exc, DatasetError)
                       else f"Building the gene index failed: {exc}; genes are still "
                            "read directly from the file")
            log.warning("Gene index build failed for %s: %s", folder, exc)
            with self._lock:
                self._failed[job.key] = message

    def _remove_stale(self, folder: Path) -> None:
        """Delete indexes of older versions of the same file and source."""
        meta = json.loads((folder / "meta.json").read_text())
        if not meta["path"]:
            return
        for other in self.root.iterdir():
            if other == folder or not (other / "meta.json").exists():
                continue
            try:
                old = json.loads((other / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if old.get("path") == meta["path"] and old.get("source") == meta["source"]:
                with self._lock:
                    in_use = other.name in self._open
                if not in_use:
                    shutil.rmtree(other, ignore_errors=True)

    def close(self) -> None:
        """Cancel every build and stop the worker."""
        with self._lock:
            for job in self._jobs.values():
                job.cancelled.set()
            for _, index in self._open.values():
                index.close()
            self._open.clear()
        self._queue.put(None)
