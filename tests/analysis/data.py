"""Real-shaped test data for the analyses: a PBMC-like dataset made as a lab would make
one (negative-binomial counts with cluster marker genes, normalised and log-transformed
by scanpy itself), written by anndata in the layouts files come in."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

N_CELLS, N_GENES, N_HVG, N_CLUSTERS = 2400, 320, 200, 6


def pbmc_like(seed: int = 0, log_base: float | None = None) -> ad.AnnData:
    """Clusters of cells, each with its own marker genes; X = the first N_HVG genes of
    the log-normalised data (CSR float32), raw = all genes, layers["counts"] = counts."""
    rng = np.random.default_rng(seed)
    clusters = rng.choice(N_CLUSTERS, N_CELLS, p=np.linspace(1, 2, N_CLUSTERS) / np.linspace(1, 2, N_CLUSTERS).sum())
    baseline = rng.gamma(0.4, 1.0, N_GENES)
    lift = np.ones((N_CLUSTERS, N_GENES))
    for c in range(N_CLUSTERS):
        markers = rng.choice(N_HVG, 12, replace=False)
        lift[c, markers] = rng.uniform(3, 12, markers.size)
    size = rng.lognormal(0, 0.35, N_CELLS)[:, None]
    mean = baseline[None, :] * lift[clusters] * size
    counts = rng.negative_binomial(2, 2 / (2 + mean)).astype(np.float32)
    obs = pd.DataFrame({
        "cluster": pd.Categorical([f"c{c}" for c in clusters]),
        "sample": pd.Categorical(rng.choice(["s1", "s2", "s3"], N_CELLS)),
        "is_doublet": rng.random(N_CELLS) < 0.05,
        "pct_mito": rng.gamma(2, 1.5, N_CELLS).astype(np.float32),
    }, index=[f"AAAC{i:06d}-1" for i in range(N_CELLS)])
    var = pd.DataFrame(index=[f"GENE{i}" for i in range(N_GENES)])
    full = ad.AnnData(sparse.csr_matrix(counts), obs=obs, var=var)
    full.layers["counts"] = full.X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(full, target_sum=1e4)
        sc.pp.log1p(full, base=log_base)
    full.X = full.X.astype(np.float32)
    adata = full[:, :N_HVG].copy()
    adata.raw = full
    return adata


def write(adata: ad.AnnData, path: Path, layout: str = "csr") -> Path:
    """The dataset with X (and raw.X) as CSR, CSC or dense, written by anndata."""
    adata = adata.copy()
    if layout == "csc":
        adata.X = sparse.csc_matrix(adata.X)
        raw = adata.raw.to_adata()
        raw.X = sparse.csc_matrix(raw.X)
        adata.raw = raw
    elif layout == "dense":
        adata.X = adata.X.toarray()
    adata.write_h5ad(path)
    return path
