"""A MuData modality as a dataset: the modality's AnnData plus the container's cells.

A MuData store (``.h5mu``, or MuData Zarr) holds one AnnData per modality under
``mod/<name>`` and, at its root, ``obs`` and ``obsm`` over the union of all cells (a
WNN or MOFA UMAP, a joint clustering). One modality opened as a dataset shows its own
obs columns, embeddings and features, plus the container's columns and embeddings
restricted to the modality's cells. ``obsmap/<name>`` (written by mudata) maps each
container row to its 1-based row in the modality (0 = not measured); stores without it
are aligned by cell names. A container column whose name a modality column already
uses is listed as ``mdata:<name>``; the container's copies of this modality's columns
(``<name>:<column>``, made by ``mdata.update()``) are left out as duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from cellucid_desktop.data.elements import frame_index
from cellucid_desktop.data.embeddings import Embedding, best_first, read_embedding
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import (AnnDataMeta, column_info, dataframe_columns,
                                        frame_length, obsm_widths, uns_text)
from cellucid_desktop.data.layout import AnnDataLayout, Layout
from cellucid_desktop.data.nodes import attr, attr_list, child, is_array, is_group, names, values
from cellucid_desktop.data.obs import ObsColumn, read_obs_column

# The names a gene-expression modality goes by (cellucid's default_modality rule).
EXPRESSION_NAMES = ("rna", "gex", "gene expression", "gene_expression", "sct")
SHARED_PREFIX = "mdata:"


def modality_names(container: Any, label: str) -> list[str]:
    """The modalities in stored order (``mod-order`` when it lists them all);
    DatasetError for a store that is not a usable MuData."""
    axis = attr(container, "axis", 0)
    if int(np.asarray(axis).reshape(-1)[0]) != 0:
        raise DatasetError(f"{label} is a MuData that shares features, not cells (axis "
                           f"{int(np.asarray(axis).reshape(-1)[0])}); only MuData with shared "
                           "cells (axis 0) can be viewed")
    mod = child(container, "mod")
    if not is_group(mod):
        raise DatasetError(f"{label} is not a MuData file: it has no mod group of modalities")
    keys = [key for key in names(mod) if is_group(child(mod, key))]
    if not keys:
        raise DatasetError(f"{label} is a MuData file without any modality (its mod group "
                           "is empty)")
    order = attr_list(mod, "mod-order")
    return order if sorted(order) == sorted(keys) else keys


def default_modality(names: list[str]) -> str:
    """The modality a MuData opens on: the expression one by name, else the first."""
    return next((n for n in names if n.lower() in EXPRESSION_NAMES), names[0])


def _shared_rows(container: Any, name: str, modality: Any) -> np.ndarray | None:
    """For each cell of the modality, its row in the container; None if unknown."""
    n_mod = frame_length(modality["obs"])
    obsmap = child(container, f"obsmap/{name}")
    if is_array(obsmap) and len(obsmap.shape) == 1:
        positions = values(obsmap).astype(np.int64)
        present = np.flatnonzero(positions > 0)
        rows = np.full(n_mod, -1, dtype=np.int64)
        inside = positions[present] <= n_mod
        rows[positions[present][inside] - 1] = present[inside]
        return rows if n_mod and rows.min() >= 0 else None
    shared = {str(n): i for i, n in enumerate(frame_index(container, "obs"))}
    rows = np.array([shared.get(str(n), -1) for n in frame_index(modality, "obs")],
                    dtype=np.int64)
    return rows if n_mod and rows.min() >= 0 else None


class ModalityLayout(Layout):
    """One modality of an open MuData container (h5py file or zarr group)."""

    def __init__(self, container: Any, name: str, close: Callable[[], None]) -> None:
        self.container = container
        self.name = name
        self.inner = AnnDataLayout(container[f"mod/{name}"])
        self._close = close
        self._rows: np.ndarray | None = None
        self._obs: dict[str, str] = {}  # listed key -> container column
        self._obsm: dict[str, str] = {}  # listed key -> container obsm key

    def metadata(self) -> AnnDataMeta:
        meta = self.inner.metadata()
        self._rows = _shared_rows(self.container, self.name, self.inner.root)
        columns = list(meta.obs_columns)
        obsm = dict(meta.obsm)
        if self._rows is not None:
            own = {c.name for c in columns}
            frame = self.container["obs"]
            for column in dataframe_columns(frame):
                if column.startswith(f"{self.name}:") and column.split(":", 1)[1] in own:
                    continue  # mdata.update()'s copy of this modality's own column
                listed = f"{SHARED_PREFIX}{column}" if column in own else column
                self._obs[listed] = column
                columns.append(replace(column_info(frame, column, self.container), name=listed))
            n_shared = frame_length(frame)
            for key, width in obsm_widths(child(self.container, "obsm"), n_shared).items():
                listed = f"{SHARED_PREFIX}{key}" if key in obsm else key
                self._obsm[listed] = key
                obsm[listed] = width
        return replace(meta, obs_columns=tuple(columns), obsm=obsm,
                       cellucid_id=uns_text(self.container, "uns/cellucid/id"),
                       cellucid_name=uns_text(self.container, "uns/cellucid/name"))

    def embeddings(self, n_cells: int) -> list[Embedding]:
        found = self.inner.embeddings(n_cells)
        shared = child(self.container, "obsm")
        for listed, key in self._obsm.items():
            array = child(shared, key)
            if (is_array(array) and len(array.shape) == 2 and array.shape[1] >= 2
                    and array.dtype.kind in "iuf"):
                found.append(Embedding(listed, int(array.shape[1])))
        return best_first(found)

    def embedding(self, embedding: Embedding) -> np.ndarray:
        key = self._obsm.get(embedding.key)
        if key is None:
            return self.inner.embedding(embedding)
        assert self._rows is not None
        full = read_embedding(self.container, replace(embedding, key=key))
        return np.ascontiguousarray(full[self._rows])

    def obs_column(self, key: str) -> ObsColumn:
        column = self._obs.get(key)
        if column is None:
            return self.inner.obs_column(key)
        assert self._rows is not None
        decoded = read_obs_column(self.container, column)
        return replace(decoded.subset(self._rows), key=key)

    def gene_names(self, var_path: str) -> np.ndarray:
        return self.inner.gene_names(var_path)

    def obs_names(self, rows: np.ndarray | None = None) -> np.ndarray:
        return self.inner.obs_names(rows)

    def column(self, path: str, gene: int) -> np.ndarray:
        return self.inner.column(path, gene)

    def columns(self, path: str, g0: int, g1: int) -> np.ndarray:
        return self.inner.columns(path, g0, g1)

    def array(self, path: str) -> Any:
        return self.inner.array(path)

    def close(self) -> None:
        self._close()
