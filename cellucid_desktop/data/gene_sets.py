"""Several genes at once, per cell: their mean, or scanpy's module score.

The score is scanpy 1.11's ``score_genes`` with its defaults (``ctrl_size=50``,
``n_bins=25``, ``random_state=0``, every gene in the pool): genes are binned by their
mean expression over all cells (``rank(method="min") // round(n_genes / 24)``); from each
bin holding a gene of the set, 50 control genes are drawn (numpy's legacy
``RandomState(0)``, as scanpy seeds it, one ``choice`` per bin in ascending bin order),
the set's own genes are removed from the controls, and the score is the cell's mean over
the set minus its mean over the controls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cellucid_desktop.data.diffexp import Check, Moments
from cellucid_desktop.data.gene_index import GeneIndex
from cellucid_desktop.data.genes import Source, read_gene
from cellucid_desktop.data.matrix_scan import cell_blocks
from cellucid_desktop.data.reader import DatasetReader

METHODS = ("mean", "score")
CONTROL_SIZE, N_BINS, SEED = 50, 25, 0  # scanpy's defaults


def control_genes(means: np.ndarray, chosen: np.ndarray, control_size: int = CONTROL_SIZE,
                  n_bins: int = N_BINS, seed: int = SEED) -> np.ndarray:
    """Sorted control gene indices for the ``chosen`` genes, as scanpy draws them."""
    pool = np.flatnonzero(np.isfinite(means))
    pool_means = means[pool]
    n_items = max(1, int(np.round(pool.size / (n_bins - 1))))
    rank_min = np.searchsorted(np.sort(pool_means), pool_means, side="left") + 1
    cut = rank_min // n_items
    cut_of = dict(zip(pool.tolist(), cut.tolist()))
    rng = np.random.RandomState(seed)
    controls: set[int] = set()
    for value in sorted({cut_of[g] for g in chosen.tolist() if g in cut_of}):
        candidates = pool[cut == value]
        if control_size < candidates.size:
            candidates = candidates[rng.choice(candidates.size, control_size, replace=False)]
        controls.update(candidates.tolist())
    return np.array(sorted(controls - set(chosen.tolist())), dtype=np.int64)


def per_cell_means(reader: DatasetReader, source: Source, sets: list[np.ndarray],
                   index: GeneIndex | None, check: Check) -> list[np.ndarray]:
    """float64 [n_cells] mean of each gene set per cell. A CSR source without its gene
    index is read in one cell-major pass for all sets; otherwise gene by gene."""
    n_cells, n_genes = source.info.shape
    sums = [np.zeros(n_cells) for _ in sets]
    if source.layout == "csr" and index is None:
        weights = np.zeros((n_genes, len(sets)))
        for number, genes in enumerate(sets):
            weights[genes, number] = 1.0
        for block in cell_blocks(reader, source):
            part = block.matrix(n_genes) @ weights  # [cells, sets]: one sparse product
            for number, total in enumerate(sums):
                total[block.rows] += part[:, number]
            check(float(block.rows[-1] + 1) / n_cells if block.rows.size else 0.0)
    else:
        members = [set(genes.tolist()) for genes in sets]
        wanted = sorted(set().union(*members))
        for done, gene in enumerate(wanted):
            column = (index.column(gene)[0] if index is not None
                      else read_gene(reader, source, gene)).astype(np.float64)
            for genes, total in zip(members, sums):
                if gene in genes:
                    total += column
            check((done + 1) / len(wanted))
    return [total / max(len(genes), 1) for genes, total in zip(sets, sums)]


def gene_set_values(reader: DatasetReader, source: Source, chosen: np.ndarray, method: str,
                    all_cells: Callable[[], Moments], index: GeneIndex | None,
                    check: Check) -> tuple[np.ndarray, int]:
    """(float32 [n_cells] values, number of control genes used) for the ``chosen`` genes."""
    if method == "mean":
        (values,) = per_cell_means(reader, source, [chosen], index, check)
        return values.astype(np.float32), 0
    if method != "score":
        raise ValueError(f"method must be one of {METHODS}")
    controls = control_genes(all_cells().mean(), chosen)
    chosen_mean, control_mean = per_cell_means(reader, source, [chosen, controls], index,
                                               check)
    return (chosen_mean - control_mean).astype(np.float32), int(controls.size)
