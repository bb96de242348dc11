"""Each stored value's rank within its gene over all cells, kept beside the gene index.

A Wilcoxon test of a group against the rest needs, per gene, the group's rank sum among
all cells. Ranks over all cells do not depend on the group, so they are computed once
per file version (one sort of every gene's values, the costly part of the test) and
stored next to the gene index, in the order its values are read; every later test of a
group against the rest is then one pass adding up the ranks of the group's values (the
group's cells with no stored value all share the rank of the block of zeros), with no
sorting. Ties get their average rank, and the zeros form one tied block between the
negative and the positive values, so the sums are exactly those of ranking each full
column.

Files in ``<index folder>/ranks/``: ``ranks.f32`` (or ``.f64`` beyond 2^23 cells, where
float32 stops holding half ranks exactly), one per stored value, block after block;
``genes.npz``: the blocks' gene ranges, and per gene the rank of its zeros and its tie
term sum(t^3 - t) over all cells (for the tie correction).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellucid_desktop.data.gene_index import GeneIndex, spans

BLOCK = 1 << 16  # values ranked at once: small sorts run in the processor's cache
_EXACT_HALVES = 1 << 23  # float32 holds every half-integer up to here


@dataclass(frozen=True)
class RankTable:
    """Ranks over all cells of a gene index's values, and per-gene constants."""

    folder: Path
    blocks: np.ndarray  # [n_blocks, 2] gene ranges, in file order
    zero_rank: np.ndarray  # per gene: the (average) rank of a cell whose value is 0
    ties: np.ndarray  # per gene: sum(t^3 - t) over tied blocks of all cells
    dtype: np.dtype

    @classmethod
    def open(cls, index: GeneIndex) -> RankTable | None:
        folder = index.folder / "ranks"
        try:
            with np.load(folder / "genes.npz") as saved:
                blocks, zero_rank, ties = saved["blocks"], saved["zero_rank"], saved["ties"]
            dtype = np.dtype(np.float64 if index.n_rows > _EXACT_HALVES else np.float32)
            size = os.path.getsize(folder / f"ranks.{dtype.str[1:]}")
        except (OSError, KeyError, ValueError):
            return None
        if zero_rank.shape != (index.n_cols,) or size != index.nnz * dtype.itemsize:
            return None
        return cls(folder, blocks, zero_rank, ties, dtype)

    def blocks_read(self, index: GeneIndex) -> Iterator[tuple[int, int, np.ndarray, np.ndarray,
                                                           np.ndarray]]:
        """(g0, g1, genes - g0, cells, ranks) block after block."""
        with open(self.folder / f"ranks.{self.dtype.str[1:]}", "rb") as handle:
            for g0, g1 in self.blocks.tolist():
                genes, cells, _ = index.read(g0, g1)
                ranks = np.fromfile(handle, dtype=self.dtype, count=genes.size)
                yield g0, g1, genes, cells, ranks


def build(index: GeneIndex, check: Callable[[float], None]) -> RankTable:
    """Rank every stored value of ``index`` and write the table (made atomically)."""
    n_cells = index.n_rows
    dtype = np.dtype(np.float64 if n_cells > _EXACT_HALVES else np.float32)
    gene_ptr = np.concatenate([[0], np.cumsum(index.gene_sizes())])
    blocks = np.array(spans(gene_ptr, BLOCK), dtype=np.int64).reshape(-1, 2)
    zero_rank, ties = np.zeros(index.n_cols), np.zeros(index.n_cols)
    folder = index.folder / "ranks"
    tmp = index.folder / f"ranks.tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with open(tmp / f"ranks.{dtype.str[1:]}", "wb") as out:
            for number, (g0, g1) in enumerate(blocks.tolist()):
                genes, _, values = index.read(g0, g1)
                ranks, zero_rank[g0:g1], ties[g0:g1] = ranks_over_all(g1 - g0, genes, values,
                                                                      n_cells)
                out.write(memoryview(ranks.astype(dtype)))
                check((number + 1) / len(blocks))
        np.savez(tmp / "genes.npz", blocks=blocks, zero_rank=zero_rank, ties=ties)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return RankTable(folder, blocks, zero_rank, ties, dtype)


def ranks_over_all(n_genes: int, genes: np.ndarray, values: np.ndarray, n: int,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the stored values of ``n_genes`` genes among ``n`` cells: (each value's average
    rank in its gene, in the given order; per gene the rank of its zeros; per gene the
    tie term sum(t^3 - t), the zeros included)."""
    nonzero = values != 0
    sorted_genes, order, new_tie, negative = _sort(genes[nonzero], values[nonzero])
    m = sorted_genes.size
    stored = np.bincount(sorted_genes, minlength=n_genes)
    zeros = (n - stored).astype(np.float64)
    gene_start = np.cumsum(stored) - stored
    negatives = np.bincount(sorted_genes[negative], minlength=n_genes)
    zero_rank = negatives + (zeros + 1) / 2
    position = np.arange(m) - gene_start[sorted_genes]  # 0-based, within the gene
    if new_tie is None:
        rank = position + 1.0
        ties = np.zeros(n_genes)
    else:
        tie = np.cumsum(new_tie) - 1
        tie_start = np.flatnonzero(new_tie)
        tie_size = np.diff(np.append(tie_start, m)).astype(np.float64)
        rank = (position - (np.arange(m) - tie_start[tie]) + (tie_size[tie] + 1) / 2)
        ties = np.bincount(sorted_genes[tie_start], weights=tie_size ** 3 - tie_size,
                           minlength=n_genes)
    rank += np.where(negative, 0, zeros[sorted_genes])
    ties += zeros ** 3 - zeros
    out = np.empty(values.size)
    out[np.flatnonzero(nonzero)[order]] = rank
    out[~nonzero] = zero_rank[genes[~nonzero]]  # a stored 0 is one of the zeros
    return out, zero_rank, ties


def _sort(genes: np.ndarray, values: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Sort values within each gene: (sorted genes, the sorting order, starts of tied
    blocks or None when no two values of a gene are equal, negative), in sorted order.
    float32 values are sorted as one packed integer per value (gene | value bits |
    position), the fastest sort numpy has; other values by a two-key lexsort."""
    m = values.size
    gene_bits = int(genes.max()).bit_length() if m else 0
    position_bits = max(1, (m - 1).bit_length())
    exact = _as_float32(values)
    if exact is not None and gene_bits + position_bits <= 32:
        bits = exact.view(np.uint32)
        # float order as unsigned order: flip the bits of negatives, set positives' sign
        ordered = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
        key = genes.astype(np.uint64) << np.uint64(32 + position_bits)
        key |= ordered.astype(np.uint64) << np.uint64(position_bits)
        key |= np.arange(m, dtype=np.uint64)
        key.sort()
        order = (key & np.uint64((1 << position_bits) - 1)).astype(np.intp)
        sorted_genes = (key >> np.uint64(32 + position_bits)).astype(np.intp)
        value_key = key >> np.uint64(position_bits)
        same = value_key[1:] == value_key[:-1]
        negative = (value_key & np.uint64(0xFFFFFFFF)) < np.uint64(0x80000000)
    else:
        order = np.lexsort((values, genes))
        sorted_genes, sorted_values = genes[order].astype(np.intp), values[order]
        same = (sorted_genes[1:] == sorted_genes[:-1]) & (sorted_values[1:] == sorted_values[:-1])
        negative = sorted_values < 0
    if not same.any():
        return sorted_genes, order, None, negative
    new_tie = np.ones(m, dtype=bool)
    np.logical_not(same, out=new_tie[1:])
    return sorted_genes, order, new_tie, negative


def _as_float32(values: np.ndarray) -> np.ndarray | None:
    """``values`` as float32 when that keeps every value exactly (counts, float32
    data), else None."""
    if values.dtype == np.float32:
        return values
    narrowed = values.astype(np.float32)
    same = narrowed.astype(values.dtype) == values
    return narrowed if bool(np.all(same | np.isnan(narrowed))) else None
