"""The datasets the server publishes: one registry, every window a view on one entry."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cellucid_desktop.data.h5ad import AnnDataMeta, read_path_metadata
from cellucid_desktop.data.identity import clean_name, is_valid_id, slugify_id


@dataclass(frozen=True)
class Dataset:
    """A registered `.h5ad`. ``path`` is private: it is never put in a response."""

    id: str
    name: str
    path: Path
    meta: AnnDataMeta

    @property
    def route_name(self) -> str:
        """The store's file name under `/_cellucid/anndata/`: named after the id."""
        return f"{self.id}.h5ad"


class DatasetRegistry:
    """Thread-safe set of datasets with unique, stable ids.

    Registering the same file twice returns the existing entry, so an id stays the
    same for as long as the file is open; a second file with the same derived id gets
    ``-2``, ``-3``... appended.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Dataset] = {}
        self._remove_hooks: list[Callable[[Dataset], None]] = []

    def add(self, path: str | os.PathLike[str], *, dataset_id: str | None = None,
            name: str | None = None) -> Dataset:
        """Read a file's metadata and publish it; raises DatasetError if unusable."""
        resolved = Path(path).expanduser().resolve()
        existing = self.find_path(resolved)
        if existing is not None:
            return existing
        meta = read_path_metadata(resolved)
        base_id = dataset_id or meta.cellucid_id or resolved.name.removesuffix(".h5ad")
        base_id = base_id if is_valid_id(base_id) else slugify_id(base_id)
        display = clean_name(name or meta.cellucid_name or resolved.stem, base_id)
        return self.publish(base_id, display, resolved, meta)

    def publish(self, base_id: str, name: str, path: Path, meta: AnnDataMeta) -> Dataset:
        """Register already-read metadata under ``base_id`` made unique (``-2``, ``-3``...).

        ``path`` names the store; for a remote store it is a label, never opened here.
        A path already registered (another thread opened the same file meanwhile)
        returns that entry, so one file never gets two ids.
        """
        with self._lock:
            existing = next((d for d in self._by_id.values() if d.path == path), None)
            if existing is not None:
                return existing
            unique, n = base_id, 1
            while unique in self._by_id:
                n += 1
                unique = f"{base_id[:170]}-{n}"
            entry = Dataset(unique, name, path, meta)
            self._by_id[unique] = entry
        return entry

    def remove(self, dataset_id: str) -> bool:
        """Forget a dataset (its window closed); True if it was registered."""
        with self._lock:
            entry = self._by_id.pop(dataset_id, None)
            hooks = list(self._remove_hooks)
        for hook in hooks if entry is not None else ():
            hook(entry)
        return entry is not None

    def on_remove(self, hook: Callable[[Dataset], None]) -> None:
        """Call ``hook(dataset)`` after a dataset is removed (readers close its file)."""
        with self._lock:
            self._remove_hooks.append(hook)

    def get(self, dataset_id: str) -> Dataset | None:
        with self._lock:
            return self._by_id.get(dataset_id)

    def find_path(self, path: Path) -> Dataset | None:
        with self._lock:
            return next((d for d in self._by_id.values() if d.path == path), None)

    def by_route_name(self, route_name: str) -> Dataset | None:
        with self._lock:
            return next((d for d in self._by_id.values() if d.route_name == route_name), None)

    def all(self) -> list[Dataset]:
        """Datasets in the order they were opened."""
        with self._lock:
            return list(self._by_id.values())
