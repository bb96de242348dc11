"""A PBMC-shaped `.h5ad` written by anndata itself for the analysis features: real marker
gene names (CD2, CD4, CD14, MS4A1, ...), log-normalised CSR X with raw counts, clusters
laid out as blobs, QC columns and one very long category name."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

LONG_NAME = "Dendritic cells (conventional, type 2) sampled from the peripheral blood of healthy donors"
MARKERS = {
    "CD4 T cells": ["CD3D", "CD3E", "CD4", "IL7R", "CD2"],
    "CD8 T cells": ["CD3D", "CD3E", "CD8A", "CD8B", "CD2"],
    "B cells": ["MS4A1", "CD79A", "CD19"],
    "NK cells": ["GNLY", "NKG7", "CD2"],
    "CD14+ Monocytes": ["CD14", "LYZ", "S100A8"],
    "FCGR3A+ Monocytes": ["FCGR3A", "MS4A7", "LYZ"],
    "Megakaryocytes": ["PPBP", "PF4"],
    LONG_NAME: ["FCER1A", "CST3"],
}
N_CELLS = 4000


def gene_names() -> list[str]:
    markers = sorted({g for genes in MARKERS.values() for g in genes})
    return markers + ["MT-CO1", "MT-ND1"] + [f"Gene{i:03d}" for i in range(1, 301)]


def write_pbmc_like(path: Path) -> Path:
    rng = np.random.default_rng(12)
    types = list(MARKERS)
    labels = rng.choice(len(types), size=N_CELLS, p=[0.3, 0.15, 0.15, 0.12, 0.15, 0.06, 0.02, 0.05])
    genes = gene_names()
    column = {g: j for j, g in enumerate(genes)}
    rate = np.full((len(types), len(genes)), 0.08)
    for t, name in enumerate(types):
        for g in MARKERS[name]:
            rate[t, column[g]] = 5.0
    rate[:, column["MT-CO1"]] = 3.0
    counts = rng.poisson(rate[labels]).astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    lognorm = np.log1p(counts / np.maximum(totals, 1) * 1e4).astype(np.float32)
    barcodes = ["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(N_CELLS)]
    obs = pd.DataFrame({
        "cell_type": pd.Categorical([types[t] for t in labels], categories=types),
        "sample": pd.Categorical(rng.choice(["donor A", "donor B"], N_CELLS)),
        "percent_mito": (rng.gamma(2.0, 2.5, N_CELLS)).astype(np.float32),
        "n_genes": (counts > 0).sum(axis=1).astype(np.int32),
    }, index=pd.Index(barcodes))
    var = pd.DataFrame(index=pd.Index(genes))
    adata = ad.AnnData(X=sp.csr_matrix(lognorm), obs=obs, var=var)
    adata.raw = ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)
    centres = rng.normal(0, 9, size=(len(types), 2))
    adata.obsm["X_umap"] = (centres[labels] + rng.normal(size=(N_CELLS, 2))).astype(np.float32)
    adata.write_h5ad(path)
    return path
