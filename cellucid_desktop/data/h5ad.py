"""Open an `.h5ad` file and describe it without reading any large array.

AnnData has written `.h5ad` in three generations of encodings, all handled here:

* 0.6-era: ``obs``/``var`` as compound datasets, categories in ``uns/<col>_categories``,
  ``obsm`` as one compound dataset with a field per key (a group by 0.6.22), sparse X
  tagged ``h5sparse_format``, raw as top-level ``raw.X``/``raw.var``;
* 0.7-era: ``obs`` a group with ``_index``/``column-order`` attributes, categorical codes
  whose ``categories`` attribute is an HDF5 object reference;
* 0.8+ (through 0.12): every element carries ``encoding-type``: ``dataframe``,
  ``categorical``, ``string-array``, ``nullable-*``, ``csr_matrix``/``csc_matrix``, ``array``.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np

from cellucid_desktop.data.errors import DatasetError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAGIC_OFFSETS = (0, 512, 1024, 2048)
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


def has_hdf5_magic(path: Path) -> bool:
    """True when the HDF5 signature sits at one of the offsets HDF5 allows for it."""
    try:
        with open(path, "rb") as fh:
            for offset in _MAGIC_OFFSETS:
                fh.seek(offset)
                if fh.read(8) == HDF5_MAGIC:
                    return True
    except OSError:
        return False
    return False


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The absolute path with symbolic links resolved; DatasetError for a link loop
    (or a path the OS cannot resolve), so every caller gets one sentence."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # RuntimeError: a loop, before Python 3.13
        raise DatasetError(f"{path} cannot be opened: it is a symbolic link that leads "
                           "back to itself (a link loop); open the file it should name"
                           ) from None


def check_readable(path: Path) -> None:
    """Raise DatasetError with a plain sentence for every way a path can be unusable."""
    if not path.exists():
        raise DatasetError(f"File not found: {path}")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not an .h5ad file")
    if not path.is_file():
        raise DatasetError(f"{path} is not a regular file")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except PermissionError:
        raise DatasetError(f"Permission denied: cannot read {path}") from None
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror or exc}") from None
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty (0 bytes), not an .h5ad file")
    if not has_hdf5_magic(path):
        raise DatasetError(f"{path} is not an HDF5 file, so it cannot be an .h5ad file")


def open_h5ad(source: str | os.PathLike[str] | BinaryIO) -> h5py.File:
    """Open an `.h5ad` read-only, turning HDF5's errors into a DatasetError.

    ``source`` is a path or a seekable binary file object (for example one that reads
    a remote file through HTTP Range requests).
    """
    label = str(source) if isinstance(source, (str, os.PathLike)) else "the remote file"
    if isinstance(source, (str, os.PathLike)):
        check_readable(Path(source))
    try:
        h5 = h5py.File(source, "r")
    except OSError as exc:
        text = str(exc)
        if "truncated" in text:
            raise DatasetError(
                f"{label} is truncated or damaged (incomplete copy or download?); "
                "copy it again"
            ) from None
        if getattr(exc, "errno", None) == errno.EACCES or "Permission denied" in text:
            raise DatasetError(f"Permission denied: cannot read {label}") from None
        raise DatasetError(f"{label} cannot be opened as HDF5: {_hdf5_reason(text)}") from None
    if "obs" not in h5 or "var" not in h5:
        h5.close()
        raise DatasetError(f"{label} is HDF5 but not AnnData: it has no obs/var")
    return h5


def _hdf5_reason(text: str) -> str:
    """The useful tail of an HDF5 error ('Unable to open file (reason)')."""
    start, end = text.rfind("("), text.rfind(")")
    return text[start + 1 : end] if 0 <= start < end else text


def _attr_str(obj: h5py.HLObject, name: str, default: str = "") -> str:
    value = obj.attrs.get(name, default)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
        return value.decode() if isinstance(value, bytes) else str(value)
    return str(value)


def _attr_list(obj: h5py.HLObject, name: str) -> list[str]:
    value = obj.attrs.get(name)
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value]


def encoding_type(obj: h5py.HLObject) -> str:
    """The element's ``encoding-type`` (0.8+), or the 0.6/0.7 sparse tag, or ''."""
    enc = _attr_str(obj, "encoding-type")
    if not enc and "h5sparse_format" in obj.attrs:
        enc = _attr_str(obj, "h5sparse_format") + "_matrix"
    return enc


def matrix_info(obj: h5py.HLObject) -> MatrixInfo | None:
    """Describe a dense dataset or a CSR/CSC group of numbers; None for anything else
    (text or compound values are no expression matrix)."""
    if isinstance(obj, h5py.Dataset):
        if obj.ndim != 2 or obj.dtype.kind not in _NUMERIC:
            return None
        return MatrixInfo("dense", (int(obj.shape[0]), int(obj.shape[1])), obj.dtype.str)
    enc = encoding_type(obj)
    if enc not in ("csr_matrix", "csc_matrix") or not isinstance(obj.get("data"), h5py.Dataset) \
            or obj["data"].dtype.kind not in _NUMERIC:
        return None
    shape_attr = obj.attrs.get("shape", obj.attrs.get("h5sparse_shape"))
    if shape_attr is None:
        return None
    shape = (int(shape_attr[0]), int(shape_attr[1]))
    data = obj["data"]
    return MatrixInfo(enc[:3], shape, data.dtype.str, int(data.shape[0]))


def dataframe_index_name(group: h5py.Group) -> str:
    """The dataset holding a dataframe group's row names."""
    return _attr_str(group, "_index", "_index") or "_index"


def dataframe_columns(group: h5py.HLObject) -> list[str]:
    """A dataframe's column names in file order (its ``column-order`` where stored, so
    a column named ``__x`` counts and 0.7's ``__categories`` group does not)."""
    if isinstance(group, h5py.Dataset):  # 0.6 compound dataset
        names = list(group.dtype.names or ())
        return [n for n in names if n not in ("index", "_index")]
    order = _attr_list(group, "column-order")
    if order:
        return order
    index = dataframe_index_name(group)
    return [k for k in group.keys() if k != index and not k.startswith("__")]


def _frame_length(element: h5py.HLObject) -> int:
    if isinstance(element, h5py.Dataset):
        return int(element.shape[0]) if element.ndim else 0
    index = dataframe_index_name(element)
    if index in element:
        return int(element[index].shape[0])
    for key in element:
        sub = element[key]
        if isinstance(sub, h5py.Dataset) and sub.ndim >= 1:
            return int(sub.shape[0])
    return 0


def column_info(frame: h5py.HLObject, name: str, h5: h5py.File) -> ColumnInfo:
    """Classify one obs column from its HDF5 type, reading no values."""
    if isinstance(frame, h5py.Dataset):  # 0.6 compound: categories live in uns
        dtype = frame.dtype.fields[name][0]
        cats = h5.get(f"uns/{name}_categories")
        if cats is not None:
            return ColumnInfo(name, "categorical", int(cats.shape[0]))
        return ColumnInfo(name, _kind_of_dtype(dtype))
    element = frame[name]
    enc = encoding_type(element)
    if enc == "categorical" and isinstance(element, h5py.Group):
        return ColumnInfo(name, "categorical", int(element["categories"].shape[0]))
    if enc == "nullable-boolean":
        return ColumnInfo(name, "boolean")
    if enc == "nullable-integer":
        return ColumnInfo(name, "continuous")
    if enc == "nullable-string-array":
        return ColumnInfo(name, "string")
    if isinstance(element, h5py.Dataset):
        ref = element.attrs.get("categories")
        if ref is not None and isinstance(ref, h5py.Reference):  # 0.7 categorical
            return ColumnInfo(name, "categorical", int(h5[ref].shape[0]))
        return ColumnInfo(name, _kind_of_dtype(element.dtype))
    return ColumnInfo(name, "string")


def _kind_of_dtype(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iuf":
        return "continuous"
    return "string"


def _obsm_widths(h5: h5py.File, n_cells: int) -> dict[str, int]:
    obsm = h5.get("obsm")
    widths: dict[str, int] = {}
    if obsm is None:
        return widths
    if isinstance(obsm, h5py.Dataset):  # 0.6: one compound dataset, a field per key
        for name in obsm.dtype.names or ():
            sub = obsm.dtype.fields[name][0]
            widths[name] = int(sub.shape[0]) if sub.shape else 1
        return widths
    for key, element in obsm.items():
        if isinstance(element, h5py.Dataset) and element.ndim in (1, 2):
            if element.shape[0] == n_cells:
                widths[key] = int(element.shape[1]) if element.ndim == 2 else 1
        elif isinstance(element, h5py.Group):
            info = matrix_info(element)
            if info is not None and info.shape[0] == n_cells:
                widths[key] = info.shape[1]
    return widths


def _uns_text(h5: h5py.File, path: str) -> str | None:
    item = h5.get(path)
    if not isinstance(item, h5py.Dataset) or item.shape not in ((), (1,)):
        return None
    value = item[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value.strip() else None


def _raw_elements(h5: h5py.File) -> tuple[h5py.HLObject | None, h5py.HLObject | None]:
    """raw's X and var: a ``raw`` group (0.7+) or top-level ``raw.X``/``raw.var`` (0.6)."""
    raw = h5.get("raw")
    if isinstance(raw, h5py.Group) and "X" in raw:
        return raw["X"], raw.get("var")
    return h5.get("raw.X"), h5.get("raw.var")


def read_metadata(h5: h5py.File) -> AnnDataMeta:
    """Describe an open `.h5ad`: counts, columns, embeddings, layers and identity."""
    obs, var = h5["obs"], h5["var"]
    legacy = isinstance(obs, h5py.Dataset)
    x = matrix_info(h5["X"]) if "X" in h5 else None
    n_cells = _frame_length(obs)
    n_genes = _frame_length(var)
    if x is not None:
        n_cells = n_cells or x.shape[0]
        n_genes = n_genes or x.shape[1]
    layers: dict[str, MatrixInfo] = {}
    if isinstance(h5.get("layers"), h5py.Group):
        for key, element in h5["layers"].items():
            info = matrix_info(element)
            if info is not None:
                layers[key] = info
    raw_x_element, raw_var = _raw_elements(h5)
    raw_x = matrix_info(raw_x_element) if raw_x_element is not None else None
    raw_paths = {}
    if raw_x_element is not None:
        raw_paths["raw_x_path"] = raw_x_element.name.lstrip("/")
    if raw_var is not None:
        raw_paths["raw_var_path"] = raw_var.name.lstrip("/")
    columns = tuple(column_info(obs, name, h5) for name in dataframe_columns(obs))
    if legacy:
        encoding = "0.6"
    elif _attr_str(obs, "encoding-version", "0.1.0") == "0.1.0":
        encoding = "0.7"
    else:
        encoding = "0.8+"
    return AnnDataMeta(
        n_cells=n_cells,
        n_genes=n_genes,
        obs_columns=columns,
        obsm=_obsm_widths(h5, n_cells),
        layers=layers,
        x=x,
        raw_x=raw_x,
        cellucid_id=_uns_text(h5, "uns/cellucid/id"),
        cellucid_name=_uns_text(h5, "uns/cellucid/name"),
        encoding=encoding,
        **raw_paths,
    )


def read_path_metadata(path: str | os.PathLike[str]) -> AnnDataMeta:
    """Open, describe and close: the check every dataset gets when it is registered."""
    h5 = open_h5ad(path)
    try:
        return read_metadata(h5)
    except DatasetError:
        raise
    except (KeyError, ValueError, TypeError, OSError, IndexError) as exc:
        raise DatasetError(f"{path} is not a readable AnnData file: {exc}") from None
    finally:
        h5.close()
