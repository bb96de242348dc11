"""Write `.h5ad` files with h5py in AnnData's current (0.8+) encoding.

Used for the built-in demo dataset and for synthetic benchmark files of millions of
cells, where the matrix is written block by block so memory stays bounded. The app
never needs anndata (or pandas) at run time for this.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

_STR = h5py.string_dtype("utf-8")


@dataclass
class Categorical:
    """An obs column of category codes (-1 = missing) and their names."""

    codes: np.ndarray
    categories: list[str]
    ordered: bool = False


def _enc(obj: h5py.HLObject, kind: str, version: str) -> None:
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def _write_strings(group: h5py.Group, name: str, values: Iterable[str]) -> None:
    data = np.asarray(list(values), dtype=object)
    ds = group.create_dataset(name, data=data, dtype=_STR)
    _enc(ds, "string-array", "0.2.0")


def _write_array(group: h5py.Group, name: str, array: np.ndarray) -> None:
    ds = group.create_dataset(name, data=array)
    _enc(ds, "array", "0.2.0")


def write_categorical(group: h5py.Group, name: str, value: Categorical) -> h5py.Group:
    """One pandas Categorical as AnnData 0.8+ encodes it (smallest signed code type)."""
    sub = group.create_group(name)
    _enc(sub, "categorical", "0.2.0")
    sub.attrs["ordered"] = value.ordered
    n = len(value.categories)
    code_dtype = np.int8 if n < 127 else np.int16 if n < 32767 else np.int32
    _write_array(sub, "codes", np.asarray(value.codes, dtype=code_dtype))
    _write_strings(sub, "categories", value.categories)
    return sub


def write_dataframe(group: h5py.Group, index: Iterable[str],
                    columns: Mapping[str, object] | None = None) -> None:
    """A pandas-free dataframe: index strings plus categorical/numeric/bool/str columns."""
    columns = columns or {}
    _enc(group, "dataframe", "0.2.0")
    group.attrs["_index"] = "_index"
    group.attrs["column-order"] = np.array(list(columns), dtype=object) if columns else np.array([], dtype="float64")
    _write_strings(group, "_index", index)
    for name, value in columns.items():
        if isinstance(value, Categorical):
            write_categorical(group, name, value)
            continue
        array = np.asarray(value)
        if array.dtype.kind in "OUS":
            _write_strings(group, name, array.astype(str))
        else:
            _write_array(group, name, array)


class SparseWriter:
    """Append rows (CSR) or columns (CSC) to a sparse matrix group, block by block."""

    def __init__(self, parent: h5py.Group, name: str, shape: tuple[int, int], *,
                 layout: str = "csr", dtype: np.dtype = np.float32,
                 index_dtype: np.dtype = np.int32, compression: str | None = None) -> None:
        self.group = parent.create_group(name)
        _enc(self.group, f"{layout}_matrix", "0.1.0")
        self.group.attrs["shape"] = np.array(shape, dtype=np.int64)
        chunk = (1 << 18,)
        opts = {"compression": compression} if compression else {}
        self.data = self.group.create_dataset("data", shape=(0,), maxshape=(None,),
                                              dtype=dtype, chunks=chunk, **opts)
        self.indices = self.group.create_dataset("indices", shape=(0,), maxshape=(None,),
                                                 dtype=index_dtype, chunks=chunk, **opts)
        self._indptr = [np.zeros(1, dtype=np.int64)]
        self._nnz = 0

    def append(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        """Add a block whose local indptr starts at 0."""
        n = len(data)
        self.data.resize((self._nnz + n,))
        self.indices.resize((self._nnz + n,))
        self.data[self._nnz:] = data
        self.indices[self._nnz:] = indices
        self._indptr.append(np.asarray(indptr[1:], dtype=np.int64) + self._nnz)
        self._nnz += n

    def close(self) -> None:
        self.group.create_dataset("indptr", data=np.concatenate(self._indptr))


def write_h5ad(path: str | os.PathLike[str], *, obs_names: list[str], var_names: list[str],
               obs: Mapping[str, object] | None = None,
               obsm: Mapping[str, np.ndarray] | None = None,
               x_blocks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
               x_dense: np.ndarray | None = None, layout: str = "csr",
               uns_cellucid: Mapping[str, str] | None = None) -> Path:
    """Write a complete `.h5ad` atomically (a temporary file renamed into place).

    ``x_blocks`` yields CSR (or CSC, per ``layout``) blocks as (indptr, indices, data).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shape = (len(obs_names), len(var_names))
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["encoding-type"] = "anndata"
            h5.attrs["encoding-version"] = "0.1.0"
            write_dataframe(h5.create_group("obs"), obs_names, obs)
            write_dataframe(h5.create_group("var"), var_names)
            if x_dense is not None:
                _write_array(h5, "X", x_dense)
            elif x_blocks is not None:
                writer = SparseWriter(h5, "X", shape, layout=layout)
                for block in x_blocks:
                    writer.append(*block)
                writer.close()
            group = h5.create_group("obsm")
            _enc(group, "dict", "0.1.0")
            for key, value in (obsm or {}).items():
                _write_array(group, key, np.asarray(value))
            for name in ("varm", "obsp", "varp", "layers"):
                _enc(h5.create_group(name), "dict", "0.1.0")
            uns = h5.create_group("uns")
            _enc(uns, "dict", "0.1.0")
            if uns_cellucid:
                sub = uns.create_group("cellucid")
                _enc(sub, "dict", "0.1.0")
                for key, value in uns_cellucid.items():
                    ds = sub.create_dataset(key, data=value, dtype=_STR)
                    _enc(ds, "string", "0.2.0")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
