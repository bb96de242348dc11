"""Expression sources (X, raw.X, layers), gene names, and one gene's values per cell.

Gene-major layouts (CSC, dense) give a gene by reading one column. Cell-major CSR, the
common case, needs a scan of the whole ``indices`` array: it is done in large blocks
with vectorised compares (zero-copy on local uncompressed files), while gene_index
builds a gene-major copy so later genes are a slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta, MatrixInfo
from cellucid_desktop.data.reader import DatasetReader


class UnknownSource(DatasetError):
    """No expression matrix of that id."""


class UnknownGene(DatasetError):
    """No gene of that name in the source's var index."""


@dataclass(frozen=True)
class Source:
    """One expression matrix: where it is, its layout, and where its gene names are."""

    id: str  # "X", "raw" or "layers/<name>"
    label: str
    path: str  # where the matrix is, as an AnnData element path (data/layout.py)
    var_path: str  # the dataframe holding its gene names
    info: MatrixInfo

    @property
    def layout(self) -> str:
        return self.info.layout

    def describe(self) -> dict:
        return {"id": self.id, "label": self.label, "layout": self.layout}


def expression_sources(meta: AnnDataMeta) -> list[Source]:
    """X, raw.X and each layer that exists, in that order."""
    sources = []
    if meta.x is not None:
        sources.append(Source("X", "X", "X", "var", meta.x))
    if meta.raw_x is not None:
        sources.append(Source("raw", "raw.X", meta.raw_x_path, meta.raw_var_path, meta.raw_x))
    for name, info in meta.layers.items():
        sources.append(Source(f"layers/{name}", f"layer {name}", f"layers/{name}", "var", info))
    return sources


def find_source(meta: AnnDataMeta, source_id: str | None) -> Source:
    """The named source, or the default (the first) when ``source_id`` is empty."""
    sources = expression_sources(meta)
    if not sources:
        raise UnknownSource("This dataset has no expression matrix (no X, raw.X or layers)")
    if not source_id:
        return sources[0]
    for source in sources:
        if source.id == source_id:
            return source
    choices = ", ".join(s.id for s in sources)
    raise UnknownSource(f"This dataset has no expression source {source_id!r}; "
                        f"use one of: {choices}")


class GeneNames:
    """A source's gene names: exact lookup and ranked search."""

    def __init__(self, names: np.ndarray) -> None:
        self.names: list[str] = [str(n) for n in names]
        self._lower = [n.lower() for n in self.names]
        self._exact: dict[str, int] = {}
        self._folded: dict[str, list[int]] = {}
        for i, name in enumerate(self.names):
            self._exact.setdefault(name, i)
            self._folded.setdefault(self._lower[i], []).append(i)

    @classmethod
    def read(cls, reader: DatasetReader, source: Source) -> GeneNames:
        names = reader.gene_names(source.var_path)
        if len(names) != source.info.shape[1]:
            raise DatasetError(f"{source.label} has {source.info.shape[1]} genes but its var "
                               f"index names {len(names)}; the file is inconsistent")
        return cls(names)

    def lookup(self, name: str) -> int:
        """Case-sensitive match first, then a unique case-insensitive one."""
        if name in self._exact:
            return self._exact[name]
        folded = self._folded.get(name.lower(), [])
        if len(folded) == 1:
            return folded[0]
        if folded:
            raise UnknownGene(f"{name!r} matches several genes that differ only in case; "
                              "use the exact name")
        raise UnknownGene(f"This dataset has no gene named {name!r}")

    def search(self, query: str, limit: int) -> tuple[list[dict], int]:
        """Exact, then prefix, then substring matches (case-insensitive); shorter
        names first within a tier, then alphabetical. An empty query lists names in
        file order."""
        if not query:
            return [{"name": n, "index": i} for i, n in enumerate(self.names[:limit])], len(self.names)
        q = query.lower()
        hits = [i for i, low in enumerate(self._lower) if q in low]

        def rank(i: int) -> tuple:
            low = self._lower[i]
            tier = 0 if low == q else 1 if low.startswith(q) else 2
            return tier, len(low), low, self.names[i]

        hits.sort(key=rank)
        return [{"name": self.names[i], "index": i} for i in hits[:limit]], len(hits)


def read_gene(reader: DatasetReader, source: Source, gene: int) -> np.ndarray:
    """float32 [n_cells] of one gene straight from the file (zeros where not stored; a
    cell stored twice, as a non-canonical sparse matrix may, holds the sum, as in scipy)."""
    n_rows, n_cols = source.info.shape
    if not 0 <= gene < n_cols:
        raise UnknownGene(f"Gene index {gene} is outside 0..{n_cols - 1}")
    if source.layout == "dense":
        return reader.column(source.path, gene)
    out = np.zeros(n_rows, dtype=np.float32)
    if source.layout == "csc":
        start, stop = (int(v) for v in reader.flat(f"{source.path}/indptr").read(gene, gene + 2))
        rows = reader.flat(f"{source.path}/indices").read(start, stop)
        np.add.at(out, rows, reader.flat(f"{source.path}/data").read(start, stop))
        return out
    positions = scan_positions(reader, source, gene)
    indptr = reader.flat(f"{source.path}/indptr").whole()[: n_rows + 1]
    rows = np.searchsorted(indptr, positions, side="right") - 1
    np.add.at(out, rows, reader.flat(f"{source.path}/data").take(positions))
    return out


def scan_positions(reader: DatasetReader, source: Source, gene: int) -> np.ndarray:
    """Sorted positions in a CSR ``indices`` array that hold ``gene``."""
    hits = [np.flatnonzero(block == gene) + first
            for first, block in reader.flat(f"{source.path}/indices").blocks()]
    return np.concatenate(hits) if hits else np.empty(0, dtype=np.int64)
