"""One obs column as the viewer colours by it: uint16 codes or float32 values.

Categorical, boolean and string columns become category codes (65535 = missing);
numeric columns become float32 (NaN = missing). Every encoding AnnData has written
is read: 0.6 compound ``obs`` with categories in ``uns/<col>_categories``, 0.7 codes
with an HDF5 reference to their categories, and 0.8+ ``categorical`` /
``nullable-*`` / ``string-array`` / ``array`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from cellucid_desktop.data.elements import decode_strings, read_strings, rows_of, take_rows
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import dataframe_columns, encoding_type

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


def read_obs_column(h5: h5py.File, key: str, rows: np.ndarray | None = None) -> ObsColumn:
    """Decode one column (only the sorted ``rows`` if given: a tooltip, a CSV of a
    selection); UnknownColumn or TooManyCategories for the user to read."""
    frame = h5["obs"]
    if key not in dataframe_columns(frame):
        raise UnknownColumn(f"This dataset has no obs column named {key!r}")
    if isinstance(frame, h5py.Dataset):  # 0.6 compound
        values = take_rows(lambda a, b: frame.fields(key)[a:b], frame.shape[0], rows)
        categories = h5.get(f"uns/{key}_categories")
        if categories is not None:
            return _categorical(key, values, _category_names(categories))
        return _plain(key, values)
    element = frame[key]
    enc = encoding_type(element)
    if isinstance(element, h5py.Group):
        if enc == "categorical":
            return _categorical(key, rows_of(element["codes"], rows),
                                _category_names(element["categories"]))
        mask = rows_of(element["mask"], rows).astype(bool) if "mask" in element else None
        if enc == "nullable-integer":
            values = rows_of(element["values"], rows).astype(np.float32)
            if mask is not None:
                values[mask] = np.nan
            return ObsColumn(key, "continuous", values)
        if enc == "nullable-boolean":
            codes = rows_of(element["values"], rows).astype(np.uint16)
            if mask is not None:
                codes[mask] = MISSING_CODE
            return ObsColumn(key, "boolean", codes, ["False", "True"])
        if enc == "nullable-string-array":
            return _factorised(key, read_strings(element["values"], rows), mask)
        raise DatasetError(f"The obs column {key!r} has an encoding ({enc or 'unknown'}) "
                           "that cannot be coloured by")
    ref = element.attrs.get("categories")
    if isinstance(ref, h5py.Reference):  # 0.7 categorical
        return _categorical(key, rows_of(element, rows), _category_names(h5[ref]))
    if h5py.check_string_dtype(element.dtype) is not None or element.dtype.kind in "SUO":
        return _factorised(key, read_strings(element, rows), None)
    return _plain(key, rows_of(element, rows))


def _category_names(ds: h5py.Dataset) -> list[str]:
    if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in "SUO":
        return [str(v) for v in read_strings(ds)]
    return [str(v) for v in ds[()].tolist()]


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


def _plain(key: str, values: np.ndarray) -> ObsColumn:
    if values.dtype.kind not in "biufSUO":
        raise DatasetError(f"The obs column {key!r} holds {values.dtype.name} values, neither "
                           "numbers nor text, so it cannot be coloured by")
    if values.dtype.kind == "b":
        return ObsColumn(key, "boolean", values.astype(np.uint16), ["False", "True"])
    if values.dtype.kind in "iuf":
        return ObsColumn(key, "continuous", values.astype(np.float32))
    return _factorised(key, decode_strings(values), None)
