"""AnnData's on-disk encodings: describe a store without reading any large array.

The same elements are written to `.h5ad` (HDF5) and to Zarr stores, so everything
here works on a root group of either (data/nodes.py hides the differences). AnnData
has written three generations of encodings, all handled here:

* 0.6-era: ``obs``/``var`` as compound datasets, categories in ``uns/<col>_categories``,
  ``obsm`` as one compound dataset with a field per key (a group by 0.6.22), sparse X
  tagged ``h5sparse_format``, raw as top-level ``raw.X``/``raw.var``;
* 0.7-era: ``obs`` a group with ``_index``/``column-order`` attributes, categorical codes
  whose ``categories`` attribute is an HDF5 object reference;
* 0.8+ (through 0.12, and every Zarr store): every element carries ``encoding-type``:
  ``dataframe``, ``categorical``, ``string-array``, ``nullable-*``,
  ``csr_matrix``/``csc_matrix``, ``array``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellucid_desktop.data.nodes import (attr, attr_list, attr_str, child, is_array, is_group,
                                         is_reference, names, values)

_NUMERIC = "biuf"  # numpy dtype kinds an expression matrix may hold


@dataclass(frozen=True)
class MatrixInfo:
    """Shape and storage layout of X, a layer or raw.X."""

    layout: str  # "dense", "csr" or "csc"
    shape: tuple[int, int]
    dtype: str
    nnz: int | None = None  # stored values, for sparse layouts


@dataclass(frozen=True)
class ColumnInfo:
    """One obs column: its kind decides how a viewer colours by it."""

    name: str
    kind: str  # "categorical", "continuous", "boolean" or "string"
    n_categories: int | None = None


@dataclass(frozen=True)
class AnnDataMeta:
    """What a dataset holds, read from HDF5 headers and small index arrays only."""

    n_cells: int
    n_genes: int
    obs_columns: tuple[ColumnInfo, ...]
    obsm: dict[str, int]  # key -> number of columns
    layers: dict[str, MatrixInfo]
    x: MatrixInfo | None
    raw_x: MatrixInfo | None
    cellucid_id: str | None
    cellucid_name: str | None
    encoding: str  # "0.6", "0.7" or "0.8+"
    raw_x_path: str = "raw/X"  # 0.6 files keep raw at top level: "raw.X", "raw.var"
    raw_var_path: str = "raw/var"
    log1p_base: float | None = None  # scanpy's uns['log1p']['base'] (None: e), for fold changes


def encoding_type(node: Any) -> str:
    """The element's ``encoding-type`` (0.8+), or the 0.6/0.7 sparse tag, or ''."""
    enc = attr_str(node, "encoding-type")
    if not enc and attr(node, "h5sparse_format") is not None:
        enc = attr_str(node, "h5sparse_format") + "_matrix"
    return enc


def matrix_info(node: Any) -> MatrixInfo | None:
    """Describe a dense array or a CSR/CSC group of numbers; None for anything else
    (text or compound values are no expression matrix)."""
    if is_array(node):
        if len(node.shape) != 2 or node.dtype.kind not in _NUMERIC:
            return None
        return MatrixInfo("dense", (int(node.shape[0]), int(node.shape[1])), node.dtype.str)
    enc = encoding_type(node)
    data = child(node, "data")
    if enc not in ("csr_matrix", "csc_matrix") or not is_array(data) \
            or data.dtype.kind not in _NUMERIC:
        return None
    shape_attr = attr(node, "shape", attr(node, "h5sparse_shape"))
    if shape_attr is None:
        return None
    shape = (int(shape_attr[0]), int(shape_attr[1]))
    return MatrixInfo(enc[:3], shape, data.dtype.str, int(data.shape[0]))


def dataframe_index_name(group: Any) -> str:
    """The array holding a dataframe group's row names."""
    return attr_str(group, "_index", "_index") or "_index"


def dataframe_columns(group: Any) -> list[str]:
    """A dataframe's column names in file order (its ``column-order`` where stored, so
    a column named ``__x`` counts and 0.7's ``__categories`` group does not)."""
    if is_array(group):  # 0.6 compound dataset
        return [n for n in group.dtype.names or () if n not in ("index", "_index")]
    order = attr_list(group, "column-order")
    if order:
        return order
    index = dataframe_index_name(group)
    return [k for k in names(group) if k != index and not k.startswith("__")]


def frame_length(element: Any) -> int:
    """Rows of a dataframe (its index, else its first column)."""
    if is_array(element):
        return int(element.shape[0]) if element.shape else 0
    index = child(element, dataframe_index_name(element))
    if is_array(index):
        return int(index.shape[0])
    for key in names(element):
        sub = child(element, key)
        if is_array(sub) and len(sub.shape) >= 1:
            return int(sub.shape[0])
    return 0


def column_info(frame: Any, name: str, root: Any) -> ColumnInfo:
    """Classify one obs column from its stored type, reading no values."""
    if is_array(frame):  # 0.6 compound: categories live in uns
        dtype = frame.dtype.fields[name][0]
        cats = child(root, f"uns/{name}_categories")
        if cats is not None:
            return ColumnInfo(name, "categorical", int(cats.shape[0]))
        return ColumnInfo(name, _kind_of_dtype(dtype))
    element = frame[name]
    enc = encoding_type(element)
    if enc == "categorical" and is_group(element):
        return ColumnInfo(name, "categorical", int(element["categories"].shape[0]))
    if enc == "nullable-boolean":
        return ColumnInfo(name, "boolean")
    if enc == "nullable-integer":
        return ColumnInfo(name, "continuous")
    if enc == "nullable-string-array":
        return ColumnInfo(name, "string")
    if is_array(element):
        ref = attr(element, "categories")
        if is_reference(ref):  # 0.7 categorical
            return ColumnInfo(name, "categorical", int(root[ref].shape[0]))
        return ColumnInfo(name, _kind_of_dtype(element.dtype))
    return ColumnInfo(name, "string")


def _kind_of_dtype(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iuf":
        return "continuous"
    return "string"


def obsm_widths(obsm: Any, n_cells: int) -> dict[str, int]:
    """Width of every obsm entry with one row per cell (dense or sparse)."""
    widths: dict[str, int] = {}
    if is_array(obsm):  # 0.6: one compound dataset, a field per key
        for name in obsm.dtype.names or ():
            sub = obsm.dtype.fields[name][0]
            widths[name] = int(sub.shape[0]) if sub.shape else 1
        return widths
    if not is_group(obsm):
        return widths
    for key in names(obsm):
        element = child(obsm, key)
        if is_array(element) and len(element.shape) in (1, 2):
            if element.shape[0] == n_cells:
                widths[key] = int(element.shape[1]) if len(element.shape) == 2 else 1
        elif is_group(element):
            info = matrix_info(element)
            if info is not None and info.shape[0] == n_cells:
                widths[key] = info.shape[1]
    return widths


def uns_text(root: Any, path: str) -> str | None:
    """A short text stored at ``path`` (``uns/cellucid/id``), or None."""
    item = child(root, path)
    if not is_array(item) or tuple(item.shape) not in ((), (1,)):
        return None
    value = values(item)
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if isinstance(value, str) and value.strip() else None


def uns_number(root: Any, path: str) -> float | None:
    """A number stored at ``path`` (``uns/log1p/base``), or None (absent, null, text)."""
    item = child(root, path)
    if not is_array(item) or item.shape != () or item.dtype.kind not in "iuf":
        return None  # anndata writes None as an empty dataset (shape None)
    return float(values(item))


def _raw_paths(root: Any) -> tuple[str, str]:
    """raw's X and var: a ``raw`` group (0.7+) or top-level ``raw.X``/``raw.var`` (0.6)."""
    raw = child(root, "raw")
    if is_group(raw) and child(raw, "X") is not None:
        return "raw/X", "raw/var"
    return "raw.X", "raw.var"


def read_metadata(root: Any) -> AnnDataMeta:
    """Describe an open AnnData root group: counts, columns, embeddings, layers, identity."""
    obs, var = root["obs"], root["var"]
    legacy = is_array(obs)
    x_element = child(root, "X")
    x = matrix_info(x_element) if x_element is not None else None
    n_cells = frame_length(obs)
    n_genes = frame_length(var)
    if x is not None:
        n_cells = n_cells or x.shape[0]
        n_genes = n_genes or x.shape[1]
    layers: dict[str, MatrixInfo] = {}
    layer_group = child(root, "layers")
    if is_group(layer_group):
        for key in names(layer_group):
            info = matrix_info(child(layer_group, key))
            if info is not None:
                layers[key] = info
    raw_x_path, raw_var_path = _raw_paths(root)
    raw_x_element = child(root, raw_x_path)
    raw_x = matrix_info(raw_x_element) if raw_x_element is not None else None
    columns = tuple(column_info(obs, name, root) for name in dataframe_columns(obs))
    if legacy:
        encoding = "0.6"
    elif attr_str(obs, "encoding-version", "0.1.0") == "0.1.0":
        encoding = "0.7"
    else:
        encoding = "0.8+"
    return AnnDataMeta(
        n_cells=n_cells,
        n_genes=n_genes,
        obs_columns=columns,
        obsm=obsm_widths(child(root, "obsm"), n_cells),
        layers=layers,
        x=x,
        raw_x=raw_x,
        cellucid_id=uns_text(root, "uns/cellucid/id"),
        cellucid_name=uns_text(root, "uns/cellucid/name"),
        encoding=encoding,
        raw_x_path=raw_x_path,
        raw_var_path=raw_var_path,
        log1p_base=uns_number(root, "uns/log1p/base"),
    )
