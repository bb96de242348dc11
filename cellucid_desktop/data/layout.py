"""An open dataset seen as AnnData, whatever its format: what the readers ask of it.

Each format maps its own layout onto AnnData's: an AnnData store (`.h5ad` or Zarr) is
read as it is (``AnnDataLayout``), a MuData modality adds the container's cells
(data/mudata.py), a loom file maps its attributes and genes x cells matrix
(data/loom.py). Paths name AnnData elements (``X``, ``raw/X``, ``layers/counts``,
``var``); a layout resolves them in its own store. A layout owns the open handle and
releases it in ``close()``. Calls are not thread-safe: DatasetReader holds its lock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from cellucid_desktop.data.elements import frame_index, row_numbers
from cellucid_desktop.data.embeddings import Embedding, list_embeddings, read_embedding
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta, frame_length, read_metadata
from cellucid_desktop.data.nodes import is_array
from cellucid_desktop.data.obs import ObsColumn, read_obs_column


class Layout(ABC):
    """The read operations the data API, the gene reader and the gene index need."""

    @abstractmethod
    def metadata(self) -> AnnDataMeta:
        """Counts, obs columns, obsm widths, expression matrices, identity."""

    @abstractmethod
    def embeddings(self, n_cells: int) -> list[Embedding]:
        """Drawable embeddings, best first."""

    @abstractmethod
    def embedding(self, embedding: Embedding) -> np.ndarray:
        """float32 [n_cells, dims]."""

    @abstractmethod
    def obs_column(self, key: str) -> ObsColumn:
        """One obs column, decoded."""

    @abstractmethod
    def gene_names(self, var_path: str) -> np.ndarray:
        """The row names of a var dataframe (``var``, ``raw/var``)."""

    @abstractmethod
    def obs_names(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The cells' names (barcodes), all or those at the sorted ``rows``; row numbers
        as text where the data names none."""

    @abstractmethod
    def column(self, path: str, gene: int) -> np.ndarray:
        """Column ``gene`` of the dense matrix at ``path``, one value per cell."""

    def columns(self, path: str, g0: int, g1: int) -> np.ndarray:
        """Columns [g0, g1) of the dense matrix at ``path``: [n_cells, g1 - g0]."""
        return np.stack([self.column(path, gene) for gene in range(g0, g1)], axis=1)

    @abstractmethod
    def array(self, path: str) -> Any:
        """The 1-D array at ``path`` (a sparse matrix's ``indices``, ``data``, ``indptr``),
        an h5py or zarr array the gene reader reads by blocks."""

    @abstractmethod
    def close(self) -> None:
        """Release the handle."""


class AnnDataLayout(Layout):
    """An AnnData root group, h5py or zarr, read as it is."""

    def __init__(self, root: Any, close: Callable[[], None] = lambda: None) -> None:
        self.root = root
        self._close = close

    def metadata(self) -> AnnDataMeta:
        if self.root.get("obs") is None or self.root.get("var") is None:
            raise DatasetError("This store is not AnnData: it has no obs/var")
        return read_metadata(self.root)

    def embeddings(self, n_cells: int) -> list[Embedding]:
        return list_embeddings(self.root, n_cells)

    def embedding(self, embedding: Embedding) -> np.ndarray:
        return read_embedding(self.root, embedding)

    def obs_column(self, key: str) -> ObsColumn:
        return read_obs_column(self.root, key)

    def gene_names(self, var_path: str) -> np.ndarray:
        return frame_index(self.root, var_path)

    def obs_names(self, rows: np.ndarray | None = None) -> np.ndarray:
        try:
            return frame_index(self.root, "obs", rows)
        except KeyError:  # no index stored: anndata names the cells by their rows
            return row_numbers(frame_length(self.root["obs"]), rows)

    def column(self, path: str, gene: int) -> np.ndarray:
        return np.asarray(self.root[path][:, gene], dtype=np.float32)

    def columns(self, path: str, g0: int, g1: int) -> np.ndarray:
        return np.asarray(self.root[path][:, g0:g1])

    def array(self, path: str) -> Any:
        node = self.root.get(path)
        if not is_array(node) or len(node.shape) != 1:
            raise DatasetError(f"{path} is not a one-dimensional array")
        return node

    def close(self) -> None:
        self._close()
