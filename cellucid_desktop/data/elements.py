"""Decode small AnnData elements to numpy: string arrays and dataframe indexes."""

from __future__ import annotations

from collections.abc import Callable

import h5py
import numpy as np

ONE_BY_ONE = 64  # selections up to this many rows are read a row at a time
WINDOW = 1 << 16  # larger ones a window of rows at a time (bounded memory)

from cellucid_desktop.data.h5ad import dataframe_index_name


def decode_strings(values: np.ndarray) -> np.ndarray:
    """An object array of ``str`` from bytes, fixed-width or variable-length strings."""
    if values.dtype.kind == "S" or (values.dtype.kind == "O" and values.size
                                    and isinstance(values.flat[0], bytes)):
        return np.array([v.decode("utf-8", "replace") for v in values.reshape(-1)],
                        dtype=object)
    if values.dtype.kind == "U":
        return values.astype(object)
    if values.dtype.kind == "O":
        return values.reshape(-1)
    return values.astype(str).astype(object)


def take_rows(read: Callable[[int, int], np.ndarray], length: int,
              rows: np.ndarray | None) -> np.ndarray:
    """Elements [0, length) of a 1-D array read by ``read(start, stop)``, or only those
    at the sorted ``rows``: a few one by one, more a window at a time."""
    if rows is None:
        return read(0, length)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size <= ONE_BY_ONE:
        parts = [read(int(r), int(r) + 1) for r in rows]
        return np.concatenate(parts) if parts else read(0, 0)
    parts = []
    for window in np.unique(rows // WINDOW).tolist():
        lo = window * WINDOW
        block = read(lo, min(length, lo + WINDOW))
        picked = rows[(rows >= lo) & (rows < lo + WINDOW)]
        parts.append(block[picked - lo])
    return np.concatenate(parts)


def rows_of(ds: h5py.Dataset, rows: np.ndarray | None) -> np.ndarray:
    """A dataset whole, or a 1-D one at the sorted ``rows``."""
    return ds[()] if rows is None else take_rows(lambda a, b: ds[a:b], ds.shape[0], rows)


def read_strings(ds: h5py.Dataset, rows: np.ndarray | None = None) -> np.ndarray:
    """A string dataset (whole, or at the sorted ``rows``) as an object array of ``str``."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        text = ds.asstr(errors="replace")
        values = text[()] if rows is None else take_rows(lambda a, b: text[a:b], ds.shape[0],
                                                         rows)
        return decode_strings(np.asarray(values, dtype=object))
    return decode_strings(rows_of(ds, rows))


def frame_index(h5: h5py.File, path: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Row names of the dataframe at ``path`` (obs, var or raw/var), all encodings; only
    those at the sorted ``rows`` if given."""
    frame = h5[path]
    if isinstance(frame, h5py.Dataset):  # 0.6 compound dataset
        field = "index" if "index" in (frame.dtype.names or ()) else "_index"
        return decode_strings(take_rows(lambda a, b: frame.fields(field)[a:b],
                                        frame.shape[0], rows))
    return read_strings(frame[dataframe_index_name(frame)], rows)


def obs_names(h5: h5py.File, n_cells: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The cells' names (barcodes), whole or at the sorted ``rows``; a file whose obs has
    no readable index gets the names anndata gives such cells: their row numbers."""
    try:
        return frame_index(h5, "obs", rows)
    except (KeyError, ValueError, TypeError, OSError):
        numbers = np.arange(n_cells) if rows is None else np.asarray(rows)
        return np.array([str(i) for i in numbers.tolist()], dtype=object)
