"""What anndata (with pandas) says a column or gene holds: the reference for our readers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

MISSING = 65535


def obs_reference(series: pd.Series) -> tuple[str, np.ndarray, list[str] | None]:
    """(kind, uint16 codes or float32 values, categories) for one obs column."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        return ("categorical", np.where(codes < 0, MISSING, codes).astype(np.uint16),
                [str(c) for c in series.cat.categories])
    if pd.api.types.is_bool_dtype(series.dtype):
        missing = series.isna().to_numpy()
        codes = series.fillna(False).astype(bool).to_numpy().astype(np.uint16)
        codes[missing] = MISSING
        return "boolean", codes, ["False", "True"]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "continuous", series.astype("float64").to_numpy(na_value=np.nan).astype(np.float32), None
    categories = sorted(set(series.dropna().astype(str)))
    lookup = {c: i for i, c in enumerate(categories)}
    codes = np.array([MISSING if pd.isna(v) else lookup[str(v)] for v in series], dtype=np.uint16)
    return "string", codes, categories


def matrix_column(matrix, j: int) -> np.ndarray:
    """float32 [n_rows] of column ``j`` of a dense or scipy sparse matrix."""
    column = matrix[:, j]
    column = column.toarray() if hasattr(column, "toarray") else np.asarray(column)
    return column.reshape(-1).astype(np.float32)


def gene_reference(adata: ad.AnnData, source: str, name: str) -> np.ndarray:
    """float32 [n_cells] of one gene, densified by anndata/scipy."""
    if source == "raw":
        matrix = adata.raw[:, name].X
    elif source.startswith("layers/"):
        matrix = adata[:, name].layers[source.removeprefix("layers/")]
    else:
        matrix = adata[:, name].X
    matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return np.asarray(matrix, dtype=np.float32).reshape(-1)
