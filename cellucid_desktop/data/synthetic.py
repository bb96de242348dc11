"""Deterministic synthetic single-cell data: the demo dataset and benchmark files.

Cells fall into clusters (cell types) laid out as blobs in 2D and 3D UMAP-like
embeddings; each type has marker genes expressed higher than background; batches and
QC metrics vary smoothly. X is written as CSR, block by block, so a 1M-cell file is
made with bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cellucid_desktop.data.h5ad_writer import Categorical, write_h5ad

CELL_TYPES = ["T cell CD4", "T cell CD8", "NK cell", "B cell", "Plasma cell", "Monocyte CD14",
              "Monocyte FCGR3A", "Dendritic cell", "pDC", "Platelet", "Erythrocyte",
              "HSC", "Mast cell", "Neutrophil"]
MARKERS_PER_TYPE = 12


def _gene_names(n_genes: int) -> list[str]:
    return [f"GENE{i:05d}" for i in range(n_genes)]


def _marker_genes(n_types: int, n_genes: int) -> np.ndarray:
    """[n_types, MARKERS_PER_TYPE] gene indices, distinct across types where possible."""
    rng = np.random.default_rng(7)
    pool = rng.permutation(n_genes)
    need = n_types * MARKERS_PER_TYPE
    return np.resize(pool, need).reshape(n_types, MARKERS_PER_TYPE)


def _x_blocks(types: np.ndarray, n_genes: int, per_cell: int, seed: int,
              block: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    markers = _marker_genes(int(types.max()) + 1, n_genes)
    for start in range(0, len(types), block):
        rng = np.random.default_rng([seed, start])
        t = types[start:start + block]
        rows = len(t)
        counts = rng.poisson(per_cell, rows).clip(1, n_genes)
        row_of = np.repeat(np.arange(rows, dtype=np.int64), counts)
        cols = rng.integers(0, n_genes, size=row_of.size, dtype=np.int64)
        values = rng.gamma(1.2, 0.8, size=row_of.size).astype(np.float32)
        mrow = np.repeat(np.arange(rows, dtype=np.int64), MARKERS_PER_TYPE)
        mcols = markers[t].reshape(-1).astype(np.int64)
        mvals = (rng.gamma(4.0, 0.9, size=mrow.size) + 2.0).astype(np.float32)
        keys = np.concatenate([mrow * n_genes + mcols, row_of * n_genes + cols])
        vals = np.concatenate([mvals, values])
        keys, first = np.unique(keys, return_index=True)  # sorted by (row, col); markers win
        vals = vals[first]
        r = keys // n_genes
        indptr = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=rows), out=indptr[1:])
        yield indptr, (keys % n_genes).astype(np.int32), vals


def make_synthetic(path: str | os.PathLike[str], n_cells: int, n_genes: int, *,
                   genes_per_cell: int = 300, seed: int = 0, dataset_id: str | None = None,
                   name: str | None = None) -> Path:
    """Write a synthetic `.h5ad` (CSR X) and return its path."""
    rng = np.random.default_rng(seed)
    n_types = min(len(CELL_TYPES), max(2, n_cells // 50))
    weights = rng.dirichlet(np.full(n_types, 2.0))
    types = rng.choice(n_types, size=n_cells, p=weights).astype(np.int16)
    centres2 = rng.normal(0, 6, size=(n_types, 2))
    centres3 = rng.normal(0, 6, size=(n_types, 3))
    spread = rng.uniform(0.6, 1.6, size=n_types)
    umap2 = (centres2[types] + rng.normal(size=(n_cells, 2)) * spread[types, None]).astype(np.float32)
    umap3 = (centres3[types] + rng.normal(size=(n_cells, 3)) * spread[types, None]).astype(np.float32)
    pca = np.concatenate([umap3, rng.normal(size=(n_cells, 7))], axis=1).astype(np.float32)
    batch = rng.integers(0, 3, n_cells)
    total_counts = rng.lognormal(8.0, 0.5, n_cells).astype(np.float32)
    n_genes_by_counts = (total_counts ** 0.7).astype(np.int32)
    pct_mt = np.clip(rng.gamma(2.0, 1.5, n_cells), 0, 60).astype(np.float32)
    pct_mt[rng.random(n_cells) < 0.002] = np.nan  # a few missing values, as real QC has
    obs = {
        "cell_type": Categorical(types, CELL_TYPES[:n_types]),
        "batch": Categorical(batch, ["batch_1", "batch_2", "batch_3"]),
        "leiden": Categorical(types, [str(i) for i in range(n_types)]),
        "total_counts": total_counts,
        "n_genes_by_counts": n_genes_by_counts,
        "pct_counts_mt": pct_mt,
        "doublet": rng.random(n_cells) < 0.03,
    }
    uns = {"id": dataset_id, "name": name} if dataset_id and name else None
    return write_h5ad(
        path,
        obs_names=[f"cell{i}" for i in range(n_cells)],
        var_names=_gene_names(n_genes),
        obs=obs,
        obsm={"X_umap": umap2, "X_umap_3d": umap3, "X_pca": pca},
        x_blocks=_x_blocks(types, n_genes, min(genes_per_cell, n_genes), seed),
        uns_cellucid=uns,
    )
