"""A loom file as a dataset (loompy's format, spec 2 and 3).

Loom keeps a genes x cells ``/matrix`` (chunked, usually gzip), per-cell arrays in
``/col_attrs`` and per-gene arrays in ``/row_attrs``; ``/layers`` hold more matrices of
the same shape. Mapped onto AnnData: cells are columns, ``col_attrs`` are obs columns
(the cell-id attribute is the index), the gene-name attribute is the var index, and the
matrix is a dense source read gene by gene: one gene is one row of the matrix, so it
costs the chunks of that row, never the whole matrix. Embeddings come from the usual
attribute names: 2-D col attrs (anndata's ``write_loom`` writes obsm this way, loomR
writes ``<reduction>_cell_embeddings``), compound col attrs (SCope's ``Embedding``
with ``_X``/``_Y``), and 1-D pairs or triples named alike but for a final 1/2/3 or X/Y/Z
(velocyto's ``_X``/``_Y``, ``_tSNE1``/``_tSNE2``, ``UMAP_1``/``UMAP_2``). loompy
stores text as ASCII with XML character references, undone here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from cellucid_desktop.data.elements import decode_strings, row_numbers
from cellucid_desktop.data.embeddings import Embedding, best_first
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta, ColumnInfo, MatrixInfo
from cellucid_desktop.data.layout import Layout
from cellucid_desktop.data.nodes import child, is_array, is_group, is_text, values
from cellucid_desktop.data.obs import ObsColumn, UnknownColumn, plain_column

CELL_ID_ATTRS = ("CellID", "obs_names", "CellId", "cell_id", "cell_ids", "barcode", "Barcode")
GENE_ATTRS = ("Gene", "var_names", "gene", "Genes", "gene_name", "gene_names", "GeneName",
              "Symbol", "gene_symbols", "Accession", "gene_ids")
_COMPONENT = re.compile(r"^(?P<base>.*?)[_ .-]?(?P<axis>[123xyzXYZ])$")
_AXES = {"1": 0, "2": 1, "3": 2, "x": 0, "y": 1, "z": 2}


def _text(data: np.ndarray) -> np.ndarray:
    return np.array([html.unescape(v) if "&" in v else v for v in decode_strings(data)],
                    dtype=object)


class LoomLayout(Layout):
    """An open loom file (h5py)."""

    def __init__(self, h5: Any, label: str, close: Callable[[], None]) -> None:
        self.h5 = h5
        self._close = close
        matrix = child(h5, "matrix")
        if not is_array(matrix) or len(matrix.shape) != 2:
            raise DatasetError(f"{label} has no expression matrix (/matrix), so it is not a "
                               "complete loom file")
        self.n_genes, self.n_cells = (int(n) for n in matrix.shape)
        self._embeddings: dict[str, tuple[str, ...] | str] = {}

    def _attrs(self, group: str, length: int) -> dict[str, Any]:
        """The 1-D arrays of ``col_attrs``/``row_attrs`` with one value per cell/gene."""
        found = {}
        attrs = child(self.h5, group)
        for key in sorted(attrs.keys()) if is_group(attrs) else ():
            array = child(attrs, key)
            if is_array(array) and tuple(array.shape[:1]) == (length,):
                found[key] = array
        return found

    def _cell_columns(self) -> dict[str, Any]:
        columns = {k: a for k, a in self._attrs("col_attrs", self.n_cells).items()
                   if len(a.shape) == 1 and a.dtype.names is None}
        index = next((name for name in CELL_ID_ATTRS if name in columns), None)
        columns.pop(index, None)
        return columns

    def _find_embeddings(self) -> list[Embedding]:
        self._embeddings.clear()
        found: list[Embedding] = []
        components: dict[str, dict[int, str]] = {}
        for key, array in self._attrs("col_attrs", self.n_cells).items():
            if array.dtype.names:  # SCope's compound Embedding (_X, _Y)
                numeric = [f for f in array.dtype.names if array.dtype[f].kind in "iuf"]
                if len(numeric) >= 2:
                    self._embeddings[key] = key
                    found.append(Embedding(key, len(numeric)))
            elif len(array.shape) == 2 and array.shape[1] >= 2 and array.dtype.kind in "iuf":
                self._embeddings[key] = key
                found.append(Embedding(key, int(array.shape[1])))
            elif len(array.shape) == 1 and array.dtype.kind in "f":
                match = _COMPONENT.match(key)
                if match:
                    axis = _AXES[match["axis"].lower()]
                    components.setdefault(match["base"], {})[axis] = key
        for base, axes in components.items():
            width = 3 if set(axes) == {0, 1, 2} else 2 if {0, 1} <= set(axes) else 0
            if width:
                name = base.strip("_ .-") or "XY"
                if name in self._embeddings:
                    continue
                self._embeddings[name] = tuple(axes[i] for i in range(width))
                found.append(Embedding(name, width))
        return best_first(found)

    def metadata(self) -> AnnDataMeta:
        columns = []
        for key, array in self._cell_columns().items():
            kind = ("boolean" if array.dtype.kind == "b" else
                    "continuous" if array.dtype.kind in "iuf" else "string")
            columns.append(ColumnInfo(key, kind))
        matrix = self.h5["matrix"]
        layers = {}
        for key in sorted(self.h5["layers"].keys()) if is_group(child(self.h5, "layers")) else ():
            layer = child(self.h5["layers"], key)
            if is_array(layer) and tuple(layer.shape) == tuple(matrix.shape) \
                    and layer.dtype.kind in "biuf" and key:
                layers[key] = MatrixInfo("dense", (self.n_cells, self.n_genes), layer.dtype.str)
        x = (MatrixInfo("dense", (self.n_cells, self.n_genes), matrix.dtype.str)
             if matrix.dtype.kind in "biuf" else None)
        return AnnDataMeta(
            n_cells=self.n_cells, n_genes=self.n_genes, obs_columns=tuple(columns),
            obsm={e.key: e.width for e in self._find_embeddings()}, layers=layers, x=x,
            raw_x=None, cellucid_id=None, cellucid_name=None, encoding="loom")

    def embeddings(self, n_cells: int) -> list[Embedding]:
        return self._find_embeddings()

    def embedding(self, embedding: Embedding) -> np.ndarray:
        stored = self._embeddings[embedding.key]
        attrs = self.h5["col_attrs"]
        if isinstance(stored, tuple):
            parts = [values(attrs[name]) for name in stored[:embedding.dims]]
            return np.ascontiguousarray(np.stack(parts, axis=1), dtype=np.float32)
        array = attrs[stored]
        if array.dtype.names:
            fields = [f for f in array.dtype.names if array.dtype[f].kind in "iuf"]
            table = values(array)
            parts = [table[f] for f in fields[:embedding.dims]]
            return np.ascontiguousarray(np.stack(parts, axis=1), dtype=np.float32)
        return np.ascontiguousarray(array[:, :embedding.dims], dtype=np.float32)

    def obs_column(self, key: str) -> ObsColumn:
        array = self._cell_columns().get(key)
        if array is None:
            raise UnknownColumn(f"This dataset has no obs column named {key!r}")
        stored = values(array)
        return plain_column(key, _text(stored) if is_text(stored.dtype) else stored)

    def gene_names(self, var_path: str) -> np.ndarray:
        genes = self._attrs("row_attrs", self.n_genes)
        name = next((n for n in GENE_ATTRS if n in genes and len(genes[n].shape) == 1), None)
        if name is None:
            return np.array([str(i) for i in range(self.n_genes)], dtype=object)
        return _text(values(genes[name]))

    def obs_names(self, rows: np.ndarray | None = None) -> np.ndarray:
        cells = self._attrs("col_attrs", self.n_cells)
        name = next((n for n in CELL_ID_ATTRS if n in cells and len(cells[n].shape) == 1), None)
        if name is None:
            return row_numbers(self.n_cells, rows)
        names = _text(values(cells[name]))
        return names if rows is None else names[rows]

    def column(self, path: str, gene: int) -> np.ndarray:
        matrix = self.h5["matrix"] if path == "X" else self.h5[path]
        return np.asarray(matrix[gene, :], dtype=np.float32)

    def columns(self, path: str, g0: int, g1: int) -> np.ndarray:
        matrix = self.h5["matrix"] if path == "X" else self.h5[path]
        return np.asarray(matrix[g0:g1, :]).T  # loom stores genes x cells

    def array(self, path: str) -> Any:
        raise DatasetError("A loom matrix is dense; it has no sparse parts to read")

    def close(self) -> None:
        self._close()
