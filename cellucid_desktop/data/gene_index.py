"""A gene-major copy of a CSR matrix, built once per file version, so any gene is a slice.

The copy lives in the user cache folder (``gene-index/<key>/``: ``indptr.i64``,
``rows.i32``, ``data.f32``, ``meta.json``), keyed by the dataset's location (path or
URL, and modality), identity (size, mtime, inode) and source, so it is reused across launches and rebuilt when the file
changes. It is built with bounded memory by a two-pass counting sort: pass 1 counts
the stored values of each gene; pass 2 fills the output one group of consecutive genes
at a time (at most GROUP_VALUES values, 128 MB of buffers), each group by one sweep over
the stored values, appended to the output files sequentially. The folder is written
under a temporary name and renamed into place, so a half-built index is never used.

One worker thread builds one index at a time; gene requests keep being answered by
scanning (genes.read_gene) until the index is ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellucid_desktop import paths
from cellucid_desktop.data.errors import DatasetError, SourceUnreachable
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.memory import return_freed_memory
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.fileio import PositionalFile

log = logging.getLogger(__name__)

FORMAT = 1
BUILD_BLOCK = 1 << 21  # stored values read per step (zero-copy where possible)
GROUP_VALUES = 1 << 24  # values per output group: 128 MB of buffers, bounds the memory


class BuildCancelled(Exception):
    """The dataset was closed while its index was being built."""


def index_root() -> Path:
    return paths.cache_dir() / "gene-index"


def index_key(reader: DatasetReader, source: Source) -> str:
    """The cache folder name of one source of one file version."""
    text = f"{FORMAT}\0{reader.location}\0{reader.identity}\0{source.id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class GeneIndex:
    """A built index: ``column(g)`` is two positioned reads of one small segment.

    Segments are read with positioned reads rather than memory-mapped: the kernel maps
    generous neighbourhoods around each page fault, which would grow the server's
    resident set by megabytes per gene.
    """

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self.n_rows, self.n_cols = int(meta["n_rows"]), int(meta["n_cols"])
        self.indptr = np.fromfile(folder / "indptr.i64", dtype=np.int64)
        nnz = int(self.indptr[-1]) if self.indptr.size else -1
        # File objects, not bare descriptors: a request still reading an index that was
        # just dropped keeps its files open, and no descriptor number is closed twice.
        self._rows = PositionalFile.open(folder / "rows.i32")
        self._data = PositionalFile.open(folder / "data.f32")
        sizes = (os.fstat(self._rows.fileno()).st_size, os.fstat(self._data.fileno()).st_size)
        if self.indptr.size != self.n_cols + 1 or sizes != (nnz * 4, nnz * 4):
            self._rows.close()
            self._data.close()
            raise DatasetError(f"The gene index {folder.name} is damaged; it will be rebuilt")

    def column(self, gene: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n_rows] with zeros where not stored, the values of stored cells)."""
        start, stop = int(self.indptr[gene]), int(self.indptr[gene + 1])
        rows = np.empty(stop - start, dtype=np.int32)
        values = np.empty(stop - start, dtype=np.float32)
        if stop > start:
            self._rows.readinto(memoryview(rows).cast("B"), start * 4)
            self._data.readinto(memoryview(values).cast("B"), start * 4)
        out = np.zeros(self.n_rows, dtype=np.float32)
        np.add.at(out, rows, values)  # a cell stored twice (non-canonical CSR) holds the sum
        return out, out[rows]


def build_index(reader: DatasetReader, source: Source, folder: Path, *,
                progress=lambda fraction: None, cancelled: threading.Event | None = None,
                block: int | None = None, group_values: int | None = None) -> None:
    """Write the gene-major copy of a CSR source into ``folder`` (made atomically).

    Pass 1 counts the stored values of each gene. Pass 2 fills the output one group
    of consecutive genes at a time: each group holds at most ``group_values`` values
    (so its buffers bound the memory), is filled by one sweep over the stored values
    and is appended to the output files sequentially.
    """
    cancelled = cancelled or threading.Event()
    block = block or BUILD_BLOCK
    group_values = group_values or GROUP_VALUES
    n_rows, n_cols = source.info.shape
    indices = reader.flat(f"{source.path}/indices")
    data = reader.flat(f"{source.path}/data")
    indptr = reader.flat(f"{source.path}/indptr").read(0, n_rows + 1).astype(np.int64)
    nnz = int(indptr[-1])
    if indices.size < nnz or data.size < nnz:
        raise DatasetError(f"{source.label} is damaged: indptr points past its stored values")

    counts = np.zeros(n_cols, dtype=np.int64)
    for first, genes in indices.blocks(0, nnz, block):
        if genes.size and (int(genes.max()) >= n_cols or int(genes.min()) < 0):
            raise DatasetError(f"{source.label} is damaged: a gene index is out of range")
        counts += np.bincount(genes, minlength=n_cols)
        _tick(cancelled, progress, 0.1 * (first + genes.size) / max(nnz, 1))
    out_indptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(counts, out=out_indptr[1:])
    groups = _gene_groups(out_indptr, group_values)

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        out_indptr.tofile(tmp / "indptr.i64")
        with open(tmp / "rows.i32", "wb") as rows_file, open(tmp / "data.f32", "wb") as data_file:
            for number, (g0, g1) in enumerate(groups):
                base = int(out_indptr[g0])
                size = int(out_indptr[g1]) - base
                rows_out = np.empty(size, dtype=np.int32)
                data_out = np.empty(size, dtype=np.float32)
                cursor = out_indptr[g0:g1] - base
                for first, genes in indices.blocks(0, nnz, block):
                    picked = _in_range(genes, g0, g1)
                    if picked.size:
                        positions = picked + first
                        rows = np.searchsorted(indptr, positions, side="right") - 1
                        _scatter(genes[picked] - g0, data.take(positions), rows, cursor,
                                 g1 - g0, rows_out, data_out)
                    done = (number + (first + genes.size) / max(nnz, 1)) / len(groups)
                    _tick(cancelled, progress, 0.1 + 0.9 * done)
                rows_file.write(memoryview(rows_out))
                data_file.write(memoryview(data_out))
                del rows_out, data_out
        (tmp / "meta.json").write_text(json.dumps({
            "format": FORMAT, "n_rows": n_rows, "n_cols": n_cols, "nnz": nnz,
            "source": source.id, "path": reader.location,
            "identity": reader.identity}))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # else another process built it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0)


def _tick(cancelled: threading.Event, progress, fraction: float) -> None:
    if cancelled.is_set():
        raise BuildCancelled()
    progress(fraction)


def _in_range(genes: np.ndarray, g0: int, g1: int) -> np.ndarray:
    """Positions of values in [g0, g1): one subtraction and one unsigned compare."""
    unsigned = np.dtype(f"u{genes.dtype.itemsize}")
    return np.flatnonzero((genes - genes.dtype.type(g0)).view(unsigned) < g1 - g0)


def _gene_groups(indptr: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive gene ranges holding at most ``limit`` values (a bigger gene alone)."""
    groups, start, n = [], 0, len(indptr) - 1
    while start < n:
        stop = int(np.searchsorted(indptr, indptr[start] + limit, side="right")) - 1
        stop = min(n, max(stop, start + 1))
        groups.append((start, stop))
        start = stop
    return groups or [(0, 0)]


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
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._worker: threading.Thread | None = None

    @property
    def root(self) -> Path:
        return self._root or index_root()

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
            return self._open.setdefault(key, (reader, index))[1]

    def forget(self, reader: DatasetReader) -> None:
        """Stop building for a closed reader and drop its open indexes."""
        with self._lock:
            for job in self._jobs.values():
                if job.reader is reader:
                    job.cancelled.set()
            for key in [k for k, (owner, _) in self._open.items() if owner is reader]:
                del self._open[key]  # its files close when the last request using it ends

    def _run(self) -> None:
        while True:
            job = self._queue.get()
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
            return_freed_memory()
            self._remove_stale(folder, job.reader.location, job.source.id)
            log.info("Gene index ready: %s", folder)
        except BuildCancelled:
            log.info("Gene index build cancelled: %s", folder)
        except SourceUnreachable as exc:  # not failed: the next request starts it again
            log.warning("Gene index build interrupted for %s: %s", folder, exc)
        except (DatasetError, OSError, ValueError) as exc:
            message = (str(exc) if isinstance(exc, DatasetError)
                       else f"Building the gene index failed: {exc}; genes are still "
                            "read directly from the file")
            log.warning("Gene index build failed for %s: %s", folder, exc)
            with self._lock:
                self._failed[job.key] = message

    def _remove_stale(self, folder: Path, path: str, source_id: str) -> None:
        """Delete indexes of older versions of the same dataset (``path``, its location)
        and source."""
        for other in self.root.iterdir():
            if other == folder or not (other / "meta.json").exists():
                continue
            try:
                old = json.loads((other / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if old.get("path") == path and old.get("source") == source_id:
                with self._lock:
                    in_use = other.name in self._open
                if not in_use:
                    shutil.rmtree(other, ignore_errors=True)
