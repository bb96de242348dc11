"""Odd but legal `.h5ad` files: real anndata 0.12 writes them, h5py then reshapes the
layouts anndata no longer writes (X removed, int64 indices, chunked arrays, extra groups).

``build_all(folder)`` writes every case once and returns ``{case: path}``; a case anndata
refuses to write (a dtype it cannot store) is left out here rather than skipped in a test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

N = 40  # cells of the ordinary cases
G = 12  # genes of the ordinary cases


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def base(n_cells: int = N, n_genes: int = G, x=None, genes: list[str] | None = None) -> ad.AnnData:
    """A small dataset with a UMAP, a categorical and a float column, CSR float32 X."""
    rng = _rng(n_cells * 1000 + n_genes)
    if x is None:
        x = sparse.random(n_cells, n_genes, density=0.3, format="csr", dtype=np.float32,
                          random_state=1)
    obs = pd.DataFrame({
        "group": pd.Categorical(rng.choice(["a", "b"], n_cells)),
        "score": rng.normal(size=n_cells),
    }, index=[f"c{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=genes if genes is not None else [f"g{i}" for i in range(n_genes)])
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.obsm["X_umap"] = rng.normal(size=(n_cells, 2)).astype(np.float32)
    return adata


def _dense(dtype: str) -> ad.AnnData:
    values = _rng().integers(0, 5, (N, G))
    return base(x=values.astype(dtype) if dtype != "bool" else values > 2)


def _csr_int() -> ad.AnnData:
    return base(x=sparse.csr_matrix(_rng().integers(0, 3, (N, G)).astype(np.int32)))


def _csr_of(values: np.ndarray) -> Callable[[], ad.AnnData]:
    return lambda: base(x=sparse.csr_matrix(values))


def _bare() -> ad.AnnData:
    """X alone: no obs columns, no obsm, no var columns."""
    return ad.AnnData(X=_rng().random((N, G)).astype(np.float32))


def _all_missing_strings() -> ad.AnnData:
    adata = base()
    adata.obs["none_str"] = pd.array([None] * N, dtype="string")
    adata.obs["nan_text"] = pd.Categorical(["nan" if i % 2 else "NaN" for i in range(N)])
    return adata


def _csc() -> ad.AnnData:
    return base(x=sparse.random(N, G, density=0.3, format="csc", dtype=np.float64,
                                random_state=2))


def _with_raw_and_layers() -> ad.AnnData:
    adata = base()
    raw = base(n_genes=G + 5)
    adata.raw = raw
    adata.layers["counts"] = _rng().integers(0, 9, (N, G)).astype(np.int16)
    sparse64 = _rng().random((N, G)) * (_rng(1).random((N, G)) < .2)
    adata.layers["sparse64"] = sparse.csr_matrix(sparse64)
    return adata


def _odd_genes() -> ad.AnnData:
    names = ["a/b", "with space", "ünïcødé", "", "CD4", "CD4", "x"]
    names += [f"g{i}" for i in range(G - len(names))]
    return base(genes=names)


def _odd_obs_keys() -> ad.AnnData:
    adata = base()
    values = _rng().normal(size=N)
    for key in ("a/b", "with space", "ünï", ".hidden", "..two", "__dunder", "_index2"):
        adata.obs[key] = values
    return adata


def _odd_obs_columns() -> ad.AnnData:
    adata = base()
    rng = _rng(7)
    cat = pd.Categorical(rng.choice(["x", "y", "z"], N), categories=["z", "y", "x", "unused"])
    cat[::5] = np.nan
    nullable_int = pd.array(rng.integers(0, 9, N), dtype="Int64")
    nullable_int[::4] = pd.NA
    nullable_bool = pd.array(rng.random(N) < .5, dtype="boolean")
    nullable_bool[::3] = pd.NA
    strings = pd.array([None if i % 6 == 0 else f"s{i % 5}" for i in range(N)], dtype="string")
    inf = rng.normal(size=N)
    inf[0], inf[1], inf[2] = np.inf, -np.inf, np.nan
    obs = adata.obs
    obs["cat_nan"] = cat
    obs["ordered"] = pd.Categorical(rng.choice(["lo", "mid", "hi"], N),
                                    categories=["lo", "mid", "hi"], ordered=True)
    obs["int_cats"] = pd.Categorical(rng.integers(0, 4, N) * 10)
    obs["float_cats"] = pd.Categorical(rng.choice([0.5, 1.25], N))
    obs["cats_300"] = pd.Categorical([f"k{i % 300}" for i in range(N)],
                                     categories=[f"k{i}" for i in range(300)])
    obs["cats_70000"] = pd.Categorical([f"k{i}" for i in range(N)],
                                       categories=[f"k{i}" for i in range(70000)])
    obs["nullable_int"] = nullable_int
    obs["nullable_bool"] = nullable_bool
    obs["nullable_str"] = strings
    obs["plain_str"] = np.array([f"t{i % 3}" for i in range(N)], dtype=object)
    obs["all_nan"] = np.full(N, np.nan)
    obs["with_inf"] = inf
    obs["ints"] = rng.integers(-5, 5, N).astype(np.int8)
    obs["uints"] = rng.integers(0, 2**40, N).astype(np.uint64)
    obs["bools"] = rng.random(N) < .5
    obs["constant"] = np.zeros(N)
    return adata


def _mixed_none() -> ad.AnnData:
    adata = base()
    adata.obs["mixed"] = pd.Series([None if i % 3 == 0 else f"m{i % 4}" for i in range(N)],
                                   index=adata.obs_names, dtype=object)
    return adata


def _datetime() -> ad.AnnData:
    adata = base()
    adata.obs["when"] = pd.date_range("2020-01-01", periods=N, freq="D")
    return adata


def _nullable_float() -> ad.AnnData:
    adata = base()
    floats = pd.array(_rng().normal(size=N), dtype="Float64")
    floats[::3] = pd.NA
    adata.obs["nullable_float"] = floats
    return adata


def _obsm() -> ad.AnnData:
    adata = base()
    rng = _rng(9)
    adata.obsm["X_one"] = rng.normal(size=(N, 1))
    adata.obsm["X_tsne"] = rng.normal(size=(N, 2))
    adata.obsm["X_umap_3d"] = rng.normal(size=(N, 3)).astype(np.float32)
    adata.obsm["X_pca"] = rng.normal(size=(N, 50)).astype(np.float32)
    adata.obsm["X_UMAP"] = rng.normal(size=(N, 2)).astype(np.float32)
    adata.obsm["frame"] = pd.DataFrame({"u": rng.normal(size=N), "v": rng.normal(size=N)},
                                       index=adata.obs_names)
    adata.obsm["X_sparse"] = sparse.random(N, 4, density=.5, format="csr", random_state=3)
    with_nan = rng.normal(size=(N, 2)).astype(np.float32)
    with_nan[::3, 0] = np.nan
    adata.obsm["X_nan"] = with_nan
    adata.obsm["X_zero"] = np.zeros((N, 2), dtype=np.float32)
    adata.obsm["int_coords"] = rng.integers(0, 100, (N, 2)).astype(np.int32)
    return adata


def _named_indexes() -> ad.AnnData:
    adata = base()
    adata.obs.index.name = "cell_id"
    adata.var.index.name = "gene_ids"
    adata.var["symbol"] = [f"S{i}" for i in range(G)]
    return adata


def _more_columns() -> ad.AnnData:
    adata = base()
    rng = _rng(11)
    adata.obs["bool_cats"] = pd.Categorical(rng.random(N) < .5)
    adata.obs["no_categories"] = pd.Categorical([np.nan] * N, categories=[])
    adata.obs["empty_strings"] = pd.Categorical(["" if i % 2 else "x" for i in range(N)])
    adata.obs["big_ints"] = rng.integers(-2**62, 2**62, N)
    return adata


def _unsorted_csr() -> ad.AnnData:
    x = sparse.random(N, G, density=.4, format="csr", dtype=np.float32, random_state=4)
    for row in range(N):  # reverse each row's indices: legal, scipy keeps them as given
        lo, hi = x.indptr[row], x.indptr[row + 1]
        x.indices[lo:hi] = x.indices[lo:hi][::-1].copy()
        x.data[lo:hi] = x.data[lo:hi][::-1].copy()
    x.has_sorted_indices = False
    return base(x=x)


def _duplicate_entries_csr() -> ad.AnnData:
    """A non-canonical CSR: a (cell, gene) stored twice means the sum, as in scipy."""
    indptr = np.arange(0, 2 * N + 1, 2)
    indices = np.tile([3, 3], N).astype(np.int32)
    data = np.arange(2 * N, dtype=np.float32)
    return base(x=sparse.csr_matrix((data, indices, indptr), shape=(N, G)))


def _dense_gzip() -> ad.AnnData:
    return _dense("float32")


def _uns(cellucid: dict) -> Callable[[], ad.AnnData]:
    def make() -> ad.AnnData:
        adata = base()
        adata.uns["cellucid"] = cellucid
        return adata
    return make


# --- h5py edits of files anndata wrote --------------------------------------------------


def _drop(*paths: str) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        for p in paths:
            del h5[p]
    return edit


def _retype(dtype: str, *paths: str, **options) -> Callable[[h5py.File], None]:
    """Rewrite arrays with another dtype and/or storage (chunks, compression)."""
    def edit(h5: h5py.File) -> None:
        for p in paths:
            data = h5[p][()]
            del h5[p]
            h5.create_dataset(p, data=data.astype(dtype or data.dtype), **options)
    return edit


def _extra_groups(h5: h5py.File) -> None:
    h5.create_group("extra").create_dataset("stuff", data=np.arange(5))
    h5.create_dataset("loose", data=np.arange(3))
    h5.create_group("scratch")
    h5.attrs["note"] = "written by another tool"


def _cellucid_not_strings(h5: h5py.File) -> None:
    group = h5.require_group("uns/cellucid")
    group.create_dataset("id", data=42)
    group.create_dataset("name", data=np.array([b"two", b"names"]))


def _cellucid_group_id(h5: h5py.File) -> None:
    group = h5.require_group("uns/cellucid")
    group.create_group("id")
    group.create_dataset("name", data=np.float64(1.5))


LONG = "x" * 200
CASES: dict[str, tuple[Callable[[], ad.AnnData], Callable[[h5py.File], None] | None, dict]] = {
    "x_dense_f64": (lambda: _dense("float64"), None, {}),
    "x_dense_f32": (lambda: _dense("float32"), None, {}),
    "x_dense_i32": (lambda: _dense("int32"), None, {}),
    "x_dense_i64": (lambda: _dense("int64"), None, {}),
    "x_dense_bool": (lambda: _dense("bool"), None, {}),
    "x_dense_f16": (lambda: _dense("float16"), None, {}),
    "x_dense_u8": (lambda: _dense("uint8"), None, {}),
    "x_csr_int": (_csr_int, None, {}),
    "x_csr_int8": (_csr_of(_rng().integers(-3, 3, (N, G)).astype(np.int8)), None, {}),
    "x_csr_all_zero": (_csr_of(np.zeros((N, G), np.float32)), None, {}),
    "bare": (_bare, None, {}),
    "all_missing_strings": (_all_missing_strings, None, {}),
    "x_csr_int64_indices": (base, _retype("int64", "X/indptr", "X/indices"), {}),
    "x_csc": (_csc, None, {}),
    "x_absent_raw_only": (_with_raw_and_layers, _drop("X", "layers/counts", "layers/sparse64"), {}),
    "x_absent_layers_only": (_with_raw_and_layers, _drop("X", "raw"), {}),
    "x_absent_entirely": (_with_raw_and_layers, _drop("X", "raw", "layers/counts",
                                                      "layers/sparse64"), {}),
    "raw_and_layers": (_with_raw_and_layers, None, {}),
    "gzip": (_odd_obs_columns, None, {"compression": "gzip"}),
    "lzf": (_obsm, None, {"compression": "lzf"}),
    "chunked_uncompressed": (base, _retype("", "X/data", "X/indices", "obsm/X_umap",
                                           chunks=True), {}),
    "chunked_small_chunks": (base, _retype("", "X/data", "X/indices", chunks=(7,)), {}),
    "shuffle_gzip_csc": (_csc, _retype("", "X/data", "X/indices", compression="gzip",
                                       shuffle=True), {}),
    "dense_gzip_chunked": (_dense_gzip, None, {"compression": "gzip"}),
    "named_indexes": (_named_indexes, None, {}),
    "more_columns": (_more_columns, None, {}),
    "unsorted_csr": (_unsorted_csr, None, {}),
    "duplicate_entries_csr": (_duplicate_entries_csr, None, {}),
    "zero_cells": (lambda: base(n_cells=0), None, {}),
    "one_cell": (lambda: base(n_cells=1), None, {}),
    "one_gene": (lambda: base(n_genes=1), None, {}),
    "zero_genes": (lambda: base(n_genes=0), None, {}),
    "zero_genes_dense": (lambda: base(n_genes=0, x=np.zeros((N, 0), np.float32)), None, {}),
    "odd_gene_names": (_odd_genes, None, {}),
    "odd_obs_keys": (_odd_obs_keys, None, {}),
    "odd_obs_columns": (_odd_obs_columns, None, {}),
    "mixed_none_object": (_mixed_none, None, {}),
    "datetime_column": (_datetime, None, {}),
    "nullable_float_column": (_nullable_float, None, {}),
    "obsm_shapes": (_obsm, None, {}),
    "uns_spaces_id": (_uns({"id": "my data set", "name": "  My data  "}), None, {}),
    "uns_unicode": (_uns({"id": "données-ß", "name": "Données 🧬 ß"}), None, {}),
    "uns_long": (_uns({"id": LONG, "name": LONG}), None, {}),
    "uns_invalid_id": (_uns({"id": "..CON", "name": "\u200b\t"}), None, {}),
    "uns_not_strings": (base, _cellucid_not_strings, {}),
    "uns_group_id": (base, _cellucid_group_id, {}),
    "extra_groups": (base, _extra_groups, {}),
}


def _add_obs_column(name: str, data: np.ndarray) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        h5["obs"].create_dataset(name, data=data)
        order = [str(c) for c in h5["obs"].attrs["column-order"]]
        h5["obs"].attrs["column-order"] = np.array(order + [name], dtype=h5py.string_dtype())
    return edit


def _replace(path: str, data: np.ndarray) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        del h5[path]
        h5.create_dataset(path, data=data)
    return edit


def _add(path: str, data: np.ndarray) -> Callable[[h5py.File], None]:
    return lambda h5: h5.create_dataset(path, data=data)


# Files other tools damaged or wrote loosely (not legal AnnData): each must still be
# refused with a sentence or served without a 500 or a payload of the wrong length.
DAMAGED: dict[str, Callable[[h5py.File], None]] = {
    "obs_column_of_records": _add_obs_column("records",
                                             np.zeros(N, dtype=[("a", "f4"), ("b", "i4")])),
    "obs_column_2d": _add_obs_column("two_d", np.zeros((N, 3))),
    "obs_column_too_short": _add_obs_column("short", np.zeros(N - 5)),
    "obs_column_complex": _add_obs_column("complex", np.zeros(N, dtype=np.complex64)),
    "categorical_codes_2d": _replace("obs/group/codes", np.zeros((N, 2), dtype=np.int8)),
    "column_order_names_a_ghost": lambda h5: h5["obs"].attrs.modify(
        "column-order", np.array(["group", "ghost"], dtype=h5py.string_dtype())),
    "categories_missing": _drop("obs/group/categories"),
    "var_index_missing": _drop("var/_index"),
    "x_of_text": _replace("X", np.full((N, G), b"a")),
    "x_one_dimensional": _replace("X", np.zeros(N)),
    "x_shape_attr_missing": lambda h5: h5["X"].attrs.__delitem__("shape"),
    "layer_of_other_shape": _add("layers/short", np.zeros((5, 3))),
    "obsm_of_other_rows": _add("obsm/X_short", np.zeros((5, 2))),
    "obsm_3d": _add("obsm/X_cube", np.zeros((N, 2, 2))),
    "obsm_of_text": _add("obsm/X_text", np.full((N, 2), b"a")),
    "uns_a_dataset": _replace("uns", np.int64(1)),
    "obsm_a_dataset": _replace("obsm", np.zeros(3)),
}


def build_damaged(folder: Path) -> dict[str, Path]:
    """Every damaged variant of the plain case, by name."""
    paths = {}
    for name, edit in DAMAGED.items():
        path = folder / f"damaged_{name}.h5ad"
        base().write_h5ad(path)
        with h5py.File(path, "r+") as h5:
            edit(h5)
        paths[name] = path
    return paths


def build(case: str, folder: Path) -> tuple[Path, ad.AnnData] | None:
    """Write one case: its path and the AnnData written (before any h5py edit), or None
    when anndata refuses to write it (so it is not a case)."""
    make, edit, options = CASES[case]
    path = folder / f"{case}.h5ad"
    adata = make()
    try:
        with ad.settings.override(allow_write_nullable_strings=True):
            adata.write_h5ad(path, **options)
    except Exception as exc:  # noqa: BLE001 - anndata's refusal has no public error type
        if "No method registered for writing" in str(exc):
            path.unlink(missing_ok=True)
            return None
        raise
    if edit is not None:
        with h5py.File(path, "r+") as h5:
            edit(h5)
    return path, adata


def build_all(folder: Path) -> dict[str, tuple[Path, ad.AnnData]]:
    built = {case: build(case, folder) for case in CASES}
    return {case: item for case, item in built.items() if item is not None}
