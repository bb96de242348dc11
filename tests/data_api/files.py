"""Test files for the data API: one written by real anndata, and the two old encodings
(0.7 categorical references, 0.6 compound datasets) written with h5py, since anndata
no longer writes them."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

N_CELLS, N_GENES, N_RAW_GENES = 400, 60, 75
GENE_NAMES = ["Actb", "CD4", "CD40", "CD40LG", "Cd44", "MT-CO1", "xcd4x", "GAPDH"] + [
    f"G{i:03d}" for i in range(N_GENES - 8)]


def make_anndata(seed: int = 3) -> ad.AnnData:
    """Every obs kind, several embeddings, CSR X, CSC raw.X, a dense and a CSC layer."""
    rng = np.random.default_rng(seed)
    x = sparse.random(N_CELLS, N_GENES, density=0.15, format="csr", dtype=np.float32,
                      random_state=seed)
    x.data = np.round(x.data * 10, 2).astype(np.float32)
    cell_type = pd.Categorical(rng.choice(["B", "T", "NK", "Mono"], N_CELLS),
                               categories=["T", "B", "NK", "Mono", "unused"])
    cell_type[rng.random(N_CELLS) < 0.1] = np.nan
    score = rng.normal(size=N_CELLS).astype(np.float32)
    score[::17] = np.nan
    nullable_int = pd.array(rng.integers(0, 50, N_CELLS), dtype="Int64")
    nullable_int[::13] = pd.NA
    nullable_bool = pd.array(rng.random(N_CELLS) < 0.5, dtype="boolean")
    nullable_bool[::11] = pd.NA
    obs = pd.DataFrame({
        "cell_type": cell_type,
        "cluster_num": pd.Categorical(rng.integers(0, 5, N_CELLS)),
        "score": score,
        "n_counts": rng.integers(100, 5000, N_CELLS),
        "is_doublet": rng.random(N_CELLS) < 0.1,
        "nullable_int": nullable_int,
        "nullable_bool": nullable_bool,
        "barcode": [f"bc{rng.integers(1e9)}-{i}" for i in range(N_CELLS)],
        "sample/group": pd.Categorical(rng.choice(["s1", "s2"], N_CELLS)),
        "donor": rng.choice(["d2", "d10", "d1"], N_CELLS).astype(object),
        "note": pd.array([None if i % 7 == 0 else f"n{i}" for i in range(N_CELLS)],
                         dtype="string"),
    }, index=[f"cell{i}" for i in range(N_CELLS)])
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=GENE_NAMES))
    raw_x = sparse.random(N_CELLS, N_RAW_GENES, density=0.2, format="csc", dtype=np.float32,
                          random_state=seed + 1)
    raw = ad.AnnData(X=raw_x, var=pd.DataFrame(index=GENE_NAMES + [f"R{i}" for i in range(15)]))
    adata.raw = raw
    adata.layers["dense"] = rng.normal(size=(N_CELLS, N_GENES)).astype(np.float32)
    adata.layers["spliced"] = sparse.csc_matrix(x * 2)
    adata.obsm["X_pca"] = rng.normal(size=(N_CELLS, 12)).astype(np.float32)
    adata.obsm["X_umap"] = rng.normal(size=(N_CELLS, 2)).astype(np.float32)
    adata.obsm["X_tsne"] = rng.normal(size=(N_CELLS, 2))  # float64 on disk
    adata.obsm["X_umap_3d"] = rng.normal(size=(N_CELLS, 3)).astype(np.float32)
    adata.obsm["spatial"] = rng.normal(size=(N_CELLS, 2)).astype(np.float32)
    adata.obsm["X_one"] = rng.normal(size=(N_CELLS, 1)).astype(np.float32)
    return adata


def write_anndata(path: Path, seed: int = 3) -> Path:
    """Text columns stay text (string-array, nullable-string-array), not categoricals."""
    with ad.settings.override(allow_write_nullable_strings=True):
        make_anndata(seed).write_h5ad(path, convert_strings_to_categoricals=False)
    return path


def _frame_07(group: h5py.Group, index: list[str], columns: dict) -> None:
    """A 0.7-era dataframe: codes carry an HDF5 reference to their categories."""
    group.attrs["_index"] = "_index"
    group.attrs["column-order"] = np.array(list(columns), dtype=h5py.string_dtype())
    group.attrs["encoding-type"] = "dataframe"
    group.attrs["encoding-version"] = "0.1.0"
    group.create_dataset("_index", data=np.array(index, dtype="S"))
    cats = group.create_group("__categories")
    for name, value in columns.items():
        if isinstance(value, tuple):
            codes, categories = value
            cat_ds = cats.create_dataset(name, data=np.array(categories, dtype="S"))
            ds = group.create_dataset(name, data=codes)
            ds.attrs["categories"] = cat_ds.ref
        else:
            group.create_dataset(name, data=value)


def write_legacy_07(path: Path, seed: int = 5) -> dict:
    """A 0.7-encoded file; returns the values it holds, for comparison."""
    rng = np.random.default_rng(seed)
    n, g = 120, 10
    codes = rng.integers(-1, 3, n).astype(np.int8)
    dense_x = np.where(rng.random((n, g)) < 0.3, rng.random((n, g)), 0).astype(np.float32)
    csr = sparse.csr_matrix(dense_x)
    umap = rng.normal(size=(n, 2)).astype(np.float32)
    score = rng.random(n)
    with h5py.File(path, "w") as h5:
        _frame_07(h5.create_group("obs"), [f"c{i}" for i in range(n)],
                  {"louvain": (codes, ["a", "b", "c"]), "score": score})
        _frame_07(h5.create_group("var"), [f"g{i}" for i in range(g)], {})
        x = h5.create_group("X")
        x.attrs["h5sparse_format"] = "csr"
        x.attrs["h5sparse_shape"] = np.array([n, g])
        x.create_dataset("data", data=csr.data)
        x.create_dataset("indices", data=csr.indices)
        x.create_dataset("indptr", data=csr.indptr)
        h5.create_group("obsm").create_dataset("X_umap", data=umap)
    return {"codes": codes, "categories": ["a", "b", "c"], "score": score, "x": dense_x,
            "umap": umap}


def write_legacy_06(path: Path, seed: int = 6) -> dict:
    """A 0.6-encoded file (compound obs/var/obsm, categories in uns); returns its values."""
    rng = np.random.default_rng(seed)
    n, g = 90, 8
    codes = rng.integers(0, 2, n).astype(np.int8)
    score = rng.random(n).astype(np.float32)
    dense_x = rng.random((n, g)).astype(np.float32)
    umap = rng.normal(size=(n, 2)).astype(np.float32)
    with h5py.File(path, "w") as h5:
        obs = np.zeros(n, dtype=[("index", "S8"), ("group", "i1"), ("score", "f4")])
        obs["index"] = [f"c{i}".encode() for i in range(n)]
        obs["group"], obs["score"] = codes, score
        h5.create_dataset("obs", data=obs)
        var = np.zeros(g, dtype=[("index", "S8")])
        var["index"] = [f"g{i}".encode() for i in range(g)]
        h5.create_dataset("var", data=var)
        h5.create_dataset("X", data=dense_x)
        obsm = np.zeros(n, dtype=[("X_umap", "f4", (2,))])
        obsm["X_umap"] = umap
        h5.create_dataset("obsm", data=obsm)
        h5.create_dataset("uns/group_categories", data=np.array(["lo", "hi"], dtype="S"))
    return {"codes": codes, "categories": ["lo", "hi"], "score": score, "x": dense_x,
            "umap": umap}
