"""Groups and arrays of a hierarchical store, whichever library opened it.

AnnData writes the same elements to HDF5 (read with h5py) and to Zarr (read with
zarr-python): groups with attributes, and arrays with a shape and a dtype. The two
libraries agree on most of the surface (``group[key]``, ``key in group``,
``group.get(key)``, ``group.keys()``, ``node.attrs``, ``array.shape``/``dtype``,
slicing) and differ in a few places, which these helpers hide: how a node says what it
is, how a whole array is read, and how attribute values come back (h5py: bytes and
numpy scalars; zarr: JSON values).
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np


def is_array(node: Any) -> bool:
    """An array (h5py Dataset, zarr Array): it has a shape and a dtype."""
    return node is not None and hasattr(node, "dtype") and hasattr(node, "shape")


def is_group(node: Any) -> bool:
    """A group (h5py Group/File, zarr Group): it has keys and no dtype."""
    return node is not None and hasattr(node, "keys") and not hasattr(node, "dtype")


def child(group: Any, key: str) -> Any | None:
    """``group[key]`` or None when the group lacks it (or is not a group)."""
    if not is_group(group):
        return None
    try:
        return group.get(key)
    except (KeyError, ValueError, TypeError):
        return None


def names(group: Any) -> list[str]:
    """A group's member names in a stable order: h5py's own (by name, or creation order
    where the file tracks it), sorted for zarr (whose listing order is the filesystem's)."""
    keys = list(group.keys())
    return keys if isinstance(group, h5py.Group) else sorted(keys)


def values(array: Any) -> np.ndarray:
    """A whole array (0-d included) as numpy."""
    return np.asarray(array[()])


def attr(node: Any, name: str, default: Any = None) -> Any:
    """One attribute, or ``default`` when absent."""
    try:
        return node.attrs.get(name, default)
    except (KeyError, OSError, TypeError):
        return default


def attr_str(node: Any, name: str, default: str = "") -> str:
    """An attribute as text (bytes decoded, 0-d arrays unwrapped)."""
    value = attr(node, name, default)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def attr_list(node: Any, name: str) -> list[str]:
    """An attribute holding a list of names (a single name counts as one)."""
    value = attr(node, name)
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value]


def is_text(dtype: np.dtype) -> bool:
    """Strings in any of their stored forms (h5py vlen, fixed bytes, unicode, numpy 2's
    StringDType that zarr returns, object)."""
    return h5py.check_string_dtype(dtype) is not None or dtype.kind in "SUOT"


def is_reference(value: Any) -> bool:
    """An HDF5 object reference (0.7-era categoricals point at their categories)."""
    return isinstance(value, h5py.Reference)
