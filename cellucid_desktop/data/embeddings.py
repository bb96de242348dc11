"""Embeddings (obsm arrays a viewer can draw) in cellucid's order of preference."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.nodes import child, is_array, is_group, names

# Earlier tiers are better default views; unknown names sit between diffmap and the
# latent spaces (PCA, scVI, Harmony...), which are rarely meant to be looked at.
_TIERS = [r"umap", r"t-?sne", r"draw_graph|force|(^|[^a-z])fa([^a-z]|$)", r"phate",
          r"pacmap|trimap", r"spatial", r"diffmap", None, r"pca|scvi|latent|harmony"]
_OTHER = _TIERS.index(None)


class UnknownEmbedding(DatasetError):
    """No drawable obsm array of that name."""


@dataclass(frozen=True)
class Embedding:
    key: str
    width: int

    @property
    def dims(self) -> int:
        return min(self.width, 3)

    def describe(self) -> dict:
        return {"key": self.key, "dims": self.dims, "width": self.width}


def preference(key: str) -> int:
    """The tier of an obsm key: lower is a better default view."""
    lowered = key.lower()
    for tier, pattern in enumerate(_TIERS):
        if pattern is not None and re.search(pattern, lowered):
            return tier
    return _OTHER


def best_first(found: list[Embedding]) -> list[Embedding]:
    """Embeddings ordered by preference, ties in stored order."""
    order = {e.key: i for i, e in enumerate(found)}
    return sorted(found, key=lambda e: (preference(e.key), order[e.key]))


def list_embeddings(root: Any, n_cells: int) -> list[Embedding]:
    """Dense obsm arrays with one row per cell and at least two columns, best first."""
    obsm = child(root, "obsm")
    found: list[Embedding] = []
    if is_array(obsm):  # 0.6: one compound dataset, a field per key
        if tuple(obsm.shape[:1]) == (n_cells,):
            for name in obsm.dtype.names or ():
                shape = obsm.dtype.fields[name][0].shape
                if len(shape) == 1 and shape[0] >= 2:
                    found.append(Embedding(name, int(shape[0])))
    elif is_group(obsm):
        for key in names(obsm):
            element = child(obsm, key)
            if (is_array(element) and len(element.shape) == 2
                    and element.shape[0] == n_cells and element.shape[1] >= 2
                    and element.dtype.kind in "iuf"):
                found.append(Embedding(key, int(element.shape[1])))
    return best_first(found)


def read_embedding(root: Any, embedding: Embedding) -> np.ndarray:
    """The first ``dims`` columns as C-ordered float32 [n_cells, dims]."""
    obsm = root["obsm"]
    if is_array(obsm):
        stored = obsm.fields(embedding.key)[()][:, : embedding.dims]
    else:
        stored = obsm[embedding.key][:, : embedding.dims]
    return np.ascontiguousarray(stored, dtype=np.float32)


def find_embedding(embeddings: list[Embedding], key: str) -> Embedding:
    """The listed embedding named ``key``; UnknownEmbedding otherwise."""
    for embedding in embeddings:
        if embedding.key == key:
            return embedding
    raise UnknownEmbedding(f"This dataset has no embedding named {key!r}")
