"""Decode small AnnData elements to numpy: string arrays and dataframe indexes."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from cellucid_desktop.data.h5ad import dataframe_index_name
from cellucid_desktop.data.nodes import is_array, values


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


def read_strings(array: Any) -> np.ndarray:
    """A whole string array as an object array of ``str``."""
    if isinstance(array, h5py.Dataset) and h5py.check_string_dtype(array.dtype) is not None:
        return decode_strings(np.asarray(array.asstr(errors="replace")[()], dtype=object))
    return decode_strings(values(array))


def frame_index(root: Any, path: str) -> np.ndarray:
    """Row names of the dataframe at ``path`` (obs, var or raw/var), all encodings."""
    frame = root[path]
    if is_array(frame):  # 0.6 compound dataset
        field = "index" if "index" in (frame.dtype.names or ()) else "_index"
        return decode_strings(frame.fields(field)[()])
    return read_strings(frame[dataframe_index_name(frame)])
