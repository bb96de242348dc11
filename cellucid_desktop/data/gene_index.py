"""A gene-major copy of a CSR matrix, built once per file version, so any gene is a read.

The copy lives in the user cache folder (``gene-index/<key>/``: ``cells.bin``,
``offsets.i64``, ``meta.json``), keyed by the dataset's location (path or URL, and
modality), identity (size, mtime, inode) and source, so it is reused across launches
and rebuilt when the data changes. It is built in one sequential pass with bounded
memory: runs of rows (about RUN_VALUES stored values each) are transposed by scipy's
linear-time counting sort and appended, so a gene is one piece per run (a few dozen
small reads at a million cells). The folder is written under a temporary name and
renamed into place, so a half-built index is never used.

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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from cellucid_desktop import paths
from cellucid_desktop.data.errors import DatasetError, SourceUnreachable
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.memory import return_freed_memory
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.fileio import PositionalFile

log = logging.getLogger(__name__)

FORMAT = 2  # 1: one contiguous segment per gene (two-pass build); 2: runs, see above
RUN_VALUES = 1 << 23  # stored values transposed at once (~130 MB of buffers)
# A stored value with its row, side by side: a piece of a gene is one read.
CELL = np.dtype([("row", "<i4"), ("value", "<f4")])
_OFFSETS_BLOCK = 1 << 22  # int64 run offsets transposed at once when finishing (32 MB)
PROGRESS_EVERY_S = 0.2  # how often a request waiting for a build reports its progress


class BuildCancelled(Exception):
    """The dataset was closed while its index was being built."""


def index_root() -> Path:
    return paths.cache_dir() / "gene-index"


def index_key(reader: DatasetReader, source: Source) -> str:
    """The cache folder name of one source of one file version."""
    text = f"{FORMAT}\0{reader.location}\0{reader.identity}\0{source.id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class GeneIndex:
    """A built index: gene ``g`` is one piece in each run, found through ``offsets.i64``
    (row ``g`` holds where each run's piece of gene ``g`` starts; row ``g + 1`` where it
    ends), so a gene is one small read of offsets and one read per run.

    Pieces are read with positioned reads (fileio.PositionalFile: a lock around seek
    and read where the OS has none) rather than memory-mapped: the kernel maps
    generous neighbourhoods around each page fault, which would grow the server's
    resident set by megabytes per gene.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / "meta.json").read_text())
        self.n_rows, self.n_cols = int(meta["n_rows"]), int(meta["n_cols"])
        self.n_runs, self.nnz = int(meta["n_runs"]), int(meta["nnz"])
        nnz = self.nnz
        # File objects, not bare descriptors: a request still reading an index that was
        # just dropped keeps its files open, and no descriptor number is closed twice.
        self._files = [PositionalFile.open(folder / name) for name in ("offsets.i64",
                                                                        "cells.bin")]
        self._offsets, self._cells = self._files
        sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        if self.n_runs < 1 or sizes != [(self.n_cols + 1) * self.n_runs * 8,
                                        nnz * CELL.itemsize]:
            self.close()
            raise DatasetError(f"The gene index {folder.name} is damaged; it will be rebuilt")

    def close(self) -> None:
        for file in self._files:
            file.close()

    def pieces(self, g0: int, g1: int) -> np.ndarray:
        """int64 [g1 - g0 + 1, n_runs]: row i holds where gene g0 + i starts in each run."""
        out = np.empty((g1 - g0 + 1, self.n_runs), dtype=np.int64)
        self._read(self._offsets, out, g0 * self.n_runs * 8)
        return out

    def gene_sizes(self) -> np.ndarray:
        """int64 [n_cols]: the stored values of each gene (offsets read a block at a time)."""
        out = np.empty(self.n_cols, dtype=np.int64)
        step = max(1, _OFFSETS_BLOCK // self.n_runs)
        for g0 in range(0, self.n_cols, step):
            g1 = min(self.n_cols, g0 + step)
            out[g0:g1] = np.diff(self.pieces(g0, g1), axis=0).sum(axis=1)
        return out

    def read(self, g0: int, g1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored values of genes [g0, g1): (gene offsets from g0, int32 rows, float32
        values), grouped by run, gene by gene within each run."""
        bounds = self.pieces(g0, g1)
        cells = self._cells_of(bounds)
        counts = np.diff(bounds, axis=0).T.reshape(-1)  # [run, gene], in read order
        genes = np.repeat(np.tile(np.arange(g1 - g0, dtype=np.int32), self.n_runs), counts)
        return genes, np.ascontiguousarray(cells["row"]), np.ascontiguousarray(cells["value"])

    def _cells_of(self, bounds: np.ndarray) -> np.ndarray:
        """(row, value) records of the pieces [bounds[0], bounds[-1]) of every run: one
        positioned read per run."""
        lengths = bounds[-1] - bounds[0]
        cells = np.empty(int(lengths.sum()), dtype=CELL)
        at = 0
        for run in np.flatnonzero(lengths).tolist():
            n = int(lengths[run])
            self._read(self._cells, cells[at:at + n], int(bounds[0, run]) * CELL.itemsize)
            at += n
        return cells

    def column(self, gene: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n_rows] with zeros where not stored, the values of stored cells)."""
        cells = self._cells_of(self.pieces(gene, gene + 1))
        rows, values = cells["row"], cells["value"]
        out = np.zeros(self.n_rows, dtype=np.float32)
        np.add.at(out, rows, values)  # a cell stored twice (non-canonical CSR) holds the sum
        return out, out[rows]

    @staticmethod
    def _read(file: PositionalFile, out: np.ndarray, offset: int) -> None:
        view = memoryview(out).cast("B")
        while view:
            got = file.readinto(view, offset)
            if not got:
                raise DatasetError("The gene index ends early; it will be rebuilt")
            view, offset = view[got:], offset + got


def build_index(reader: DatasetReader, source: Source, folder: Path, *,
                progress=lambda fraction: None, cancelled: threading.Event | None = None,
                block: int | None = None) -> None:
    """Write the gene-major copy of a CSR source into ``folder`` (made atomically).

    One sequential pass: the stored values are read in runs of whole rows holding about
    ``block`` values; each run is transposed to gene-major order by scipy's linear-time
    counting sort (``tocsc``, stable, so rows stay ascending) and appended to
    ``cells.bin`` as (row, value) records, and where each gene's piece starts in each
    run goes to ``offsets.i64``. Memory is bounded by one run whatever the file size; the disk
    holds 8 bytes per stored value plus 8 per gene and run.
    """
    cancelled = cancelled or threading.Event()
    block = block or RUN_VALUES
    n_rows, n_cols = source.info.shape
    indices = reader.flat(f"{source.path}/indices")
    data = reader.flat(f"{source.path}/data")
    indptr = reader.flat(f"{source.path}/indptr").read(0, n_rows + 1).astype(np.int64)
    nnz = int(indptr[-1]) if indptr.size else 0
    if indptr.size != n_rows + 1 or indices.size < nnz or data.size < nnz \
            or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise DatasetError(f"{source.label} is damaged: its indptr does not match its "
                           "stored values")
    runs = spans(indptr, block) or [(0, 0)]
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with open(tmp / "cells.bin", "wb") as cells_file, \
                open(tmp / "starts.tmp", "wb") as starts_file, \
                ThreadPoolExecutor(1, thread_name_prefix="gene-index-writer") as writer:
            written: Future | None = None

            def write(cells: np.ndarray, starts: np.ndarray) -> None:
                cells_file.write(memoryview(cells).cast("B"))
                starts_file.write(memoryview(starts))

            for r0, r1 in runs:
                # The next run is transposed while the previous one is written (the
                # counting sort and the writes both release the GIL); only the records
                # of the run being written are kept meanwhile.
                rows, values, gene_ptr = transpose_rows(indices, data, indptr, r0, r1, n_cols,
                                                        source.label)
                cells = np.empty(rows.size, dtype=CELL)
                cells["row"], cells["value"] = rows, values
                del rows, values
                if written is not None:
                    written.result()
                written = writer.submit(write, cells, gene_ptr + int(indptr[r0]))
                del cells
                _tick(cancelled, progress, 0.98 * int(indptr[r1]) / max(nnz, 1))
            written.result()
        _transpose_offsets(tmp / "starts.tmp", tmp / "offsets.i64", len(runs), n_cols + 1)
        (tmp / "starts.tmp").unlink()
        (tmp / "meta.json").write_text(json.dumps({
            "format": FORMAT, "n_rows": n_rows, "n_cols": n_cols, "nnz": nnz,
            "n_runs": len(runs), "source": source.id, "path": reader.location,
            "identity": reader.identity}))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # else another process built it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0)


def transpose_rows(indices, data, indptr: np.ndarray, r0: int, r1: int, n_cols: int,
                   label: str, dtype: np.dtype | type = np.float32,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows [r0, r1) in gene-major order: (global rows int32, values as ``dtype``, int64
    [n_cols + 1] offsets of each gene's piece within the run)."""
    first, last = int(indptr[r0]), int(indptr[r1])
    genes = indices.read(first, last)
    if genes.size and (int(genes.max()) >= n_cols or int(genes.min()) < 0):
        raise DatasetError(f"{label} is damaged: a gene index is out of range")
    local = sparse.csr_matrix(
        (data.read(first, last).astype(dtype, copy=False),
         genes.astype(np.int32, copy=False), (indptr[r0:r1 + 1] - first).astype(np.int32)),
        shape=(r1 - r0, n_cols)).tocsc()  # scipy's linear-time counting sort; stable
    rows = local.indices.astype(np.int32, copy=False)
    rows += r0
    return rows, local.data, local.indptr.astype(np.int64)


def _transpose_offsets(source: Path, target: Path, n_runs: int, n_genes: int) -> None:
    """[run, gene] offsets (written run by run) to [gene, run], a block of genes at a time."""
    starts = np.memmap(source, dtype=np.int64, mode="r", shape=(n_runs, n_genes))
    step = max(1, _OFFSETS_BLOCK // n_runs)
    with open(target, "wb") as out:
        for g0 in range(0, n_genes, step):
            out.write(memoryview(np.ascontiguousarray(starts[:, g0:g0 + step].T)))
    del starts


def _tick(cancelled: threading.Event, progress, fraction: float) -> None:
    if cancelled.is_set():
        raise BuildCancelled()
    progress(fraction)


def spans(indptr: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of an indptr's rows holding at most ``limit`` values (a bigger
    row alone)."""
    spans, start, n = [], 0, len(indptr) - 1
    while start < n:
        stop = int(np.searchsorted(indptr, indptr[start] + limit, side="right")) - 1
        stop = min(n, max(stop, start + 1))
        spans.append((start, stop))
        start = stop
    return spans


@dataclass
class _Job:
    key: str
    reader: DatasetReader
    source: Source
    progress: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)  # built, failed or stopped


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

    def wait(self, reader: DatasetReader, source: Source,
             progress: Callable[[float], None]) -> GeneIndex:
        """The index of a CSR source, built first if missing: waits for the build,
        reporting its progress, and raises DatasetError with the failure's message (or
        that it stopped: the dataset was closed or its source became unreachable)."""
        key = index_key(reader, source)
        index = self.open(reader, source)
        if index is None:
            self.ensure(reader, source)
            with self._lock:
                job = self._jobs.get(key)
            if job is not None:
                while not job.ended.wait(PROGRESS_EVERY_S):
                    progress(job.progress)
            index = self.open(reader, source)
        if index is not None:
            return index
        with self._lock:
            failed = self._failed.get(key)
        raise DatasetError(failed or "The gene index build stopped; open the dataset again")

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
                job.ended.set()

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
