"""An expression source's stored values in bounded blocks, cell-major or gene-major.

Analyses (differential expression, gene-set scores) are passes over the stored values,
so they never hold a matrix in memory: a block is ``(cells, genes, values)`` arrays of at
most about ``block`` values. Cell-major blocks read only the rows asked for (a CSR
matrix stores each cell's values together); gene-major blocks give every stored value
of a range of genes (a CSC matrix, the gene index of a CSR one, or a dense matrix read
by columns). Zeros a sparse matrix does not store are not in any block.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import sparse

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.gene_index import RUN_VALUES, GeneIndex, spans, transpose_rows
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.reader import DatasetReader

T = TypeVar("T")
R = TypeVar("R")

WORKERS = max(1, min(4, os.cpu_count() or 1))  # blocks worked on at once
BLOCK = 1 << 18  # values per block: a few MB of temporaries, reused from the heap


def _indptr(reader: DatasetReader, source: Source, length: int) -> np.ndarray:
    indptr = reader.flat(f"{source.path}/indptr").read(0, length + 1).astype(np.int64)
    if indptr.size != length + 1 or (length and (indptr[0] != 0 or np.any(np.diff(indptr) < 0))):
        raise DatasetError(f"{source.label} is damaged: its indptr does not match its "
                           "stored values")
    return indptr


def _check_range(values: np.ndarray, limit: int, source: Source) -> None:
    if values.size and (int(values.min()) < 0 or int(values.max()) >= limit):
        raise DatasetError(f"{source.label} is damaged: an index is out of range")


@dataclass(frozen=True)
class RowBlock:
    """Some cells' stored values, CSR-style: cell ``rows[i]`` holds the values
    ``values[indptr[i]:indptr[i + 1]]`` of genes ``genes[...]``."""

    rows: np.ndarray
    indptr: np.ndarray
    genes: np.ndarray
    values: np.ndarray

    def matrix(self, n_cols: int, data: np.ndarray | None = None) -> sparse.csr_matrix:
        """[len(rows) x n_cols] CSR matrix of ``data`` (default: the values as float64),
        for scipy's compiled products (a column sum is ``matrix.T @ weights``)."""
        data = self.values.astype(np.float64) if data is None else data
        return sparse.csr_matrix((data, self.genes, self.indptr),
                                 shape=(self.rows.size, n_cols))


def cell_blocks(reader: DatasetReader, source: Source, rows: np.ndarray | None = None,
                block: int = BLOCK) -> Iterator[RowBlock]:
    """The stored values of a CSR source for the sorted ``rows`` (None: all), in blocks
    of whole rows; only the rows asked for are read."""
    n_rows, n_cols = source.info.shape
    indptr = _indptr(reader, source, n_rows)
    indices = reader.flat(f"{source.path}/indices")
    data = reader.flat(f"{source.path}/data")
    if rows is None:
        for r0, r1 in spans(indptr, block):
            first, last = int(indptr[r0]), int(indptr[r1])
            yield _row_block(np.arange(r0, r1), indptr[r0:r1 + 1] - first,
                             indices.read(first, last), data.read(first, last), n_cols, source)
        return
    lengths = indptr[rows + 1] - indptr[rows]
    ends = np.cumsum(lengths)
    start = 0
    while start < len(rows):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + block,
                                   side="right"))
        stop = min(len(rows), max(stop, start + 1))
        batch, counts = rows[start:stop], lengths[start:stop]
        local = np.concatenate([[0], np.cumsum(counts)])
        positions = np.repeat(indptr[batch] - local[:-1], counts) + np.arange(int(local[-1]))
        yield _row_block(batch, local, indices.take(positions), data.take(positions), n_cols,
                         source)
        start = stop


def _row_block(rows: np.ndarray, indptr: np.ndarray, genes: np.ndarray, values: np.ndarray,
               n_cols: int, source: Source) -> RowBlock:
    _check_range(genes, n_cols, source)
    return RowBlock(rows.astype(np.int64, copy=False), indptr.astype(np.int32),
                    genes.astype(np.int32, copy=False), values)


GeneBlock = tuple[int, int, np.ndarray, np.ndarray, np.ndarray]


def gene_blocks(reader: DatasetReader, source: Source, index: GeneIndex | None = None,
                block: int = BLOCK) -> Iterator[GeneBlock]:
    """(g0, g1, genes - g0, cells, values) for consecutive gene ranges [g0, g1) covering
    every gene, values in no particular order within a block.

    A CSR source is read through its built gene ``index`` (or transposed in memory when
    it is small); a dense one yields its zeros too.
    """
    n_rows, n_cols = source.info.shape
    if source.layout == "dense":
        width = max(1, block // max(n_rows, 1))
        for g0 in range(0, n_cols, width):
            g1 = min(n_cols, g0 + width)
            columns = reader.columns(source.path, g0, g1)
            genes = np.repeat(np.arange(g1 - g0, dtype=np.int32), n_rows)
            cells = np.tile(np.arange(n_rows, dtype=np.int64), g1 - g0)
            yield g0, g1, genes, cells, columns.T.reshape(-1)
        return
    if source.layout == "csr":
        if index is None:
            yield from _transposed_in_memory(reader, source, block)
            return
        gene_ptr = np.concatenate([[0], np.cumsum(index.gene_sizes())])
        for g0, g1 in spans(gene_ptr, block):
            yield g0, g1, *index.read(g0, g1)
        return
    indptr = _indptr(reader, source, n_cols)
    indices = reader.flat(f"{source.path}/indices")
    data = reader.flat(f"{source.path}/data")
    for g0, g1 in spans(indptr, block):
        first, last = int(indptr[g0]), int(indptr[g1])
        cells = indices.read(first, last)
        _check_range(cells, n_rows, source)
        genes = np.repeat(np.arange(g1 - g0, dtype=np.int32), np.diff(indptr[g0:g1 + 1]))
        yield g0, g1, genes, cells, data.read(first, last)


def fits_in_memory(source: Source) -> bool:
    """Whether a CSR source is small enough to transpose at once (one gene-index run)."""
    return (source.info.nnz or 0) <= RUN_VALUES


def _transposed_in_memory(reader: DatasetReader, source: Source,
                          block: int) -> Iterator[GeneBlock]:
    """Gene-major blocks of a small CSR source without its gene index."""
    n_rows, n_cols = source.info.shape
    if not fits_in_memory(source):
        raise ValueError("a large CSR source is read gene by gene through its gene index")
    indptr = _indptr(reader, source, n_rows)
    data = reader.flat(f"{source.path}/data")  # values kept in their own type, exactly
    cells, values, gene_ptr = transpose_rows(reader.flat(f"{source.path}/indices"), data,
                                             indptr, 0, n_rows, n_cols, source.label,
                                             data.dtype)
    for g0, g1 in spans(gene_ptr, block):
        first, last = int(gene_ptr[g0]), int(gene_ptr[g1])
        genes = np.repeat(np.arange(g1 - g0, dtype=np.int32), np.diff(gene_ptr[g0:g1 + 1]))
        yield g0, g1, genes, cells[first:last], values[first:last]


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                ) -> Iterator[R]:
    """``work(item)`` for each item, on up to ``workers`` threads, results in order.

    numpy's sort and scipy's sparse products release the GIL, so blocks of a pass use
    every core. At most ``workers + 1`` items are in flight, which bounds the memory;
    items are produced (read) by the caller's thread. Closing the generator early (a
    cancelled analysis) waits for the blocks already started.
    """
    workers = workers or WORKERS
    if workers == 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="analysis-block") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
