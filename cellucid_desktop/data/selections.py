"""Cells a user names by row number: checked against the dataset before any work."""

from __future__ import annotations

import numpy as np

from cellucid_desktop.data.errors import DatasetError


class BadSelection(DatasetError):
    """Cells or names a request gives that do not fit the dataset (a 400 for the API)."""


def rows_from_json(value: object, n_cells: int, what: str) -> np.ndarray:
    """int64 rows from a JSON list of 0-based row numbers (``what`` names it in errors)."""
    if not isinstance(value, list) or not all(
            isinstance(r, int) and not isinstance(r, bool) for r in value):
        raise BadSelection(f"{what} must be a list of cell row numbers")
    rows = np.asarray(value, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_cells):
        raise BadSelection(f"{what} names a cell outside 0..{n_cells - 1}")
    return rows
