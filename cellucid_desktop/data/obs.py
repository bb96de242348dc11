"""One obs column as the viewer colours by it: uint16 codes or float32 values.

Categorical, boolean and string columns become category codes (65535 = missing);
numeric columns become float32 (NaN = missing). Every encoding AnnData has written
is read: 0.6 compound ``obs`` with categories in ``uns/<col>_categories``, 0.7 codes
with an HDF5 reference to their categories, and 0.8+ ``categorical`` /
``nullable-*`` / ``string-array`` / ``array`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellucid_desktop.data.elements import decode_strings, read_strings
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import dataframe_columns, encoding_type
from cellucid_desktop.data.nodes import attr, is_array, is_group, is_reference, is_text, values

MISSING_CODE = 65535
MAX_CATEGORIES = 65534


class UnknownColumn(DatasetError):
    """The dataset has no obs column of that name."""


class TooManyCategories(DatasetError):
    """A column has more distinct values than uint16 codes can hold."""


@dataclass(frozen=True)
class ObsColumn:
    key: str
    kind: str  # "categorical", "continuous", "boolean" or "string"
    values: np.ndarray  # uint16 codes or float32 values, one per cell
    categories: list[str] | None = None

    def subset(self, rows: np.ndarray) -> ObsColumn:
        """The same column for the cells at ``rows`` (a MuData modality's cells)."""
        return ObsColumn(self.key, self.kind, self.values[rows], self.categories)

    def describe(self) -> dict:
        """The JSON metadata the viewer reads before the values."""
        if self.values.dtype == np.uint16:
            stored = self.values[self.values != MISSING_CODE]
            counts = np.bincount(stored, minlength=len(self.categories or ())).tolist()
            return {"key": self.key, "kind": self.kind, "dtype": "uint16",
                    "categories": self.categories, "counts": counts, "min": None,
                    "max": None, "n_missing": int(self.values.size - stored.size)}
        finite = self.values[np.isfinite(self.values)]
        return {"key": self.key, "kind": self.kind, "dtype": "float32", "categories": None,
                "counts": None, "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None,
                "n_missing": int(np.isnan(self.values).sum())}


def read_obs_column(root: Any, key: str, frame_path: str = "obs") -> ObsColumn:
    """Decode one column of the dataframe at ``frame_path`` of an AnnData root;
    UnknownColumn or TooManyCategories for the user to read."""
    frame = root[frame_path]
    if key not in dataframe_columns(frame):
        raise UnknownColumn(f"This dataset has no obs column named {key!r}")
    if is_array(frame):  # 0.6 compound
        stored = frame.fields(key)[()]
        categories = root.get(f"uns/{key}_categories")
        if categories is not None:
            return _categorical(key, stored, _category_names(categories))
        return plain_column(key, stored)
    element = frame[key]
    enc = encoding_type(element)
    if is_group(element):
        if enc == "categorical":
            return _categorical(key, values(element["codes"]),
                                _category_names(element["categories"]))
        mask = values(element["mask"]).astype(bool) if "mask" in element else None
        if enc == "nullable-integer":
            numbers = values(element["values"]).astype(np.float32)
            if mask is not None:
                numbers[mask] = np.nan
            return ObsColumn(key, "continuous", numbers)
        if enc == "nullable-boolean":
            codes = values(element["values"]).astype(np.uint16)
            if mask is not None:
                codes[mask] = MISSING_CODE
            return ObsColumn(key, "boolean", codes, ["False", "True"])
        if enc == "nullable-string-array":
            return _factorised(key, read_strings(element["values"]), mask)
        raise DatasetError(f"The obs column {key!r} has an encoding ({enc or 'unknown'}) "
                           "that cannot be coloured by")
    ref = attr(element, "categories")
    if is_reference(ref):  # 0.7 categorical
        return _categorical(key, values(element), _category_names(root[ref]))
    if is_text(element.dtype):
        return _factorised(key, read_strings(element), None)
    return plain_column(key, values(element))


def _category_names(array: Any) -> list[str]:
    if is_text(array.dtype):
        return [str(v) for v in read_strings(array)]
    return [str(v) for v in values(array).tolist()]


def _check_count(key: str, n: int) -> None:
    if n > MAX_CATEGORIES:
        raise TooManyCategories(
            f"The obs column {key!r} has {n:,} distinct values, more than the "
            f"{MAX_CATEGORIES:,} that can be coloured by; pick another column")


def _categorical(key: str, codes: np.ndarray, categories: list[str]) -> ObsColumn:
    _check_count(key, len(categories))
    codes = np.asarray(codes).astype(np.int64)
    out = codes.astype(np.uint16)
    out[(codes < 0) | (codes >= len(categories))] = MISSING_CODE
    return ObsColumn(key, "categorical", out, categories)


def _factorised(key: str, strings: np.ndarray, mask: np.ndarray | None) -> ObsColumn:
    """String columns: codes into the sorted distinct values."""
    present = np.ones(strings.size, dtype=bool) if mask is None else ~mask
    categories, inverse = np.unique(strings[present].astype(str), return_inverse=True)
    _check_count(key, len(categories))
    out = np.full(strings.size, MISSING_CODE, dtype=np.uint16)
    out[present] = inverse.reshape(-1)
    return ObsColumn(key, "string", out, categories.tolist())


def plain_column(key: str, stored: np.ndarray) -> ObsColumn:
    """A column stored as one plain array: numbers, booleans or text."""
    if stored.dtype.kind not in "biufSUOT":
        raise DatasetError(f"The obs column {key!r} holds {stored.dtype.name} values, neither "
                           "numbers nor text, so it cannot be coloured by")
    if stored.dtype.kind == "b":
        return ObsColumn(key, "boolean", stored.astype(np.uint16), ["False", "True"])
    if stored.dtype.kind in "iuf":
        return ObsColumn(key, "continuous", stored.astype(np.float32))
    return _factorised(key, decode_strings(stored), None)
