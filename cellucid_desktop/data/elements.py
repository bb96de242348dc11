"""Decode small AnnData elements to numpy: string arrays and dataframe indexes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from cellucid_desktop.data.h5ad import dataframe_index_name
from cellucid_desktop.data.nodes import is_array, values

ONE_BY_ONE = 64  # selections up to this many rows are read a row at a time
WINDOW = 1 << 16  # larger ones a window of rows at a time (bounded memory)


def decode_strings(data: np.ndarray) -> np.ndarray:
    """An object array of ``str`` from bytes, fixed-width, variable-length or numpy 2
    StringDType strings."""
    if data.dtype.kind == "S" or (data.dtype.kind == "O" and data.size
                                  and isinstance(data.flat[0], bytes)):
        return np.array([v.decode("utf-8", "replace") for v in data.reshape(-1)],
                        dtype=object)
    if data.dtype.kind in "UT":
        return data.reshape(-1).astype(object)
    if data.dtype.kind == "O":
        return data.reshape(-1)
    return data.astype(str).astype(object)


def take_rows(read: Callable[[int, int], np.ndarray], length: int,
              rows: np.ndarray) -> np.ndarray:
    """The elements at the sorted ``rows`` of a 1-D array read by ``read(start, stop)``:
    a few one by one, more a window at a time."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size <= ONE_BY_ONE:
        parts = [read(int(r), int(r) + 1) for r in rows]
        return np.concatenate(parts) if parts else read(0, 0)
    parts = []
    for window in np.unique(rows // WINDOW).tolist():
        lo = window * WINDOW
        block = read(lo, min(length, lo + WINDOW))
        parts.append(block[rows[(rows >= lo) & (rows < lo + WINDOW)] - lo])
    return np.concatenate(parts)


def read_strings(array: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """A string array (whole, or at the sorted ``rows``) as an object array of ``str``."""
    if isinstance(array, h5py.Dataset) and h5py.check_string_dtype(array.dtype) is not None:
        array = array.asstr(errors="replace")
        if rows is None:
            return decode_strings(np.asarray(array[()], dtype=object))
    if rows is None:
        return decode_strings(values(array))
    return decode_strings(np.asarray(take_rows(lambda a, b: array[a:b], array.shape[0], rows),
                                     dtype=object))


def frame_index(root: Any, path: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Row names of the dataframe at ``path`` (obs, var or raw/var), all encodings; only
    those at the sorted ``rows`` if given."""
    frame = root[path]
    if is_array(frame):  # 0.6 compound dataset
        field = "index" if "index" in (frame.dtype.names or ()) else "_index"
        if rows is None:
            return decode_strings(frame.fields(field)[()])
        return decode_strings(take_rows(lambda a, b: frame.fields(field)[a:b],
                                        frame.shape[0], rows))
    return read_strings(frame[dataframe_index_name(frame)], rows)


def row_numbers(n_cells: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The names anndata gives cells whose obs has no index: their row numbers."""
    numbers = np.arange(n_cells) if rows is None else np.asarray(rows)
    return np.array([str(i) for i in numbers.tolist()], dtype=object)
