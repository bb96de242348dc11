"""Real-world-shaped `.h5ad` files written by anndata itself (not our writer), with the
shapes that trip viewers up: no obs columns, a 3D-only embedding, t-SNE only, a text
column, hundreds of categories, raw and layers."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def _blobs(rng: np.random.Generator, n: int, dims: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % groups)  # every group present
    centres = rng.normal(0, 8, size=(groups, dims))
    return (centres[labels] + rng.normal(size=(n, dims))).astype(np.float32), labels


def write_no_obs_3d_only(path: Path) -> Path:
    """800 cells, dense X, no obs columns, one embedding with three columns."""
    rng = np.random.default_rng(3)
    coords, _ = _blobs(rng, 800, 3, 5)
    adata = ad.AnnData(X=rng.poisson(1.0, size=(800, 40)).astype(np.float32))
    adata.obs_names = [f"c{i}" for i in range(800)]
    adata.var_names = [f"Gene{i}" for i in range(40)]
    adata.obsm["X_umap"] = coords
    adata.write_h5ad(path)
    return path


def write_tsne_text_many_categories(path: Path) -> Path:
    """1,200 cells, X_tsne only, a unique text column, 300 categories, raw and a layer."""
    rng = np.random.default_rng(4)
    coords, labels = _blobs(rng, 1200, 2, 300)
    x = sp.random(1200, 60, density=0.2, format="csr", random_state=5, dtype=np.float32)
    obs = pd.DataFrame({
        "barcode": [f"AAAC{i:06d}-1" for i in range(1200)],
        "cluster": pd.Categorical([f"cluster {k:03d}" for k in labels]),
        "score": rng.normal(size=1200).astype(np.float32),
    }, index=[f"cell{i}" for i in range(1200)])
    adata = ad.AnnData(X=x, obs=obs)
    adata.var_names = [f"MT-{i}" if i < 3 else f"Gene{i}" for i in range(60)]
    adata.layers["counts"] = x.copy()
    adata.raw = adata.copy()
    adata.obsm["X_tsne"] = coords
    adata.write_h5ad(path)
    return path
