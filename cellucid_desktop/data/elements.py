"""Decode small AnnData elements to numpy: string arrays and dataframe indexes."""

from __future__ import annotations

import h5py
import numpy as np

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


def read_strings(ds: h5py.Dataset) -> np.ndarray:
    """A whole string dataset as an object array of ``str``."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return decode_strings(np.asarray(ds.asstr(errors="replace")[()], dtype=object))
    return decode_strings(ds[()])


def frame_index(h5: h5py.File, path: str) -> np.ndarray:
    """Row names of the dataframe at ``path`` (obs, var or raw/var), all encodings."""
    frame = h5[path]
    if isinstance(frame, h5py.Dataset):  # 0.6 compound dataset
        field = "index" if "index" in (frame.dtype.names or ()) else "_index"
        return decode_strings(frame.fields(field)[()])
    return read_strings(frame[dataframe_index_name(frame)])
