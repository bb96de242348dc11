"""The datasets the server publishes: one registry, every window a view on one entry.

The registry is the one truth about a dataset's metadata: a file changed on disk is
noticed by :meth:`DatasetRegistry.refresh` (its identity: size, mtime, inode) and read
again, so the protocol's health and the data API never disagree about its shape.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta, read_path_metadata, resolve_path
from cellucid_desktop.data.identity import clean_name, is_valid_id, slugify_id
from cellucid_desktop.data.reader import file_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """A registered `.h5ad`. ``path`` is private: it is never put in a response."""

    id: str
    name: str
    path: Path
    meta: AnnDataMeta
    identity: str | None = None  # the file version ``meta`` was read from (None: remote)

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
        self._refreshing: set[str] = set()
        self._unusable: dict[str, tuple[str, str]] = {}  # id -> (identity, message)

    def add(self, path: str | os.PathLike[str], *, dataset_id: str | None = None,
            name: str | None = None) -> Dataset:
        """Read a file's metadata and publish it; raises DatasetError if unusable."""
        resolved = resolve_path(path)
        existing = self.find_path(resolved)
        if existing is not None:
            return existing
        identity = _identity_of(resolved)
        meta = read_path_metadata(resolved)
        base_id = dataset_id or meta.cellucid_id or resolved.name.removesuffix(".h5ad")
        base_id = base_id if is_valid_id(base_id) else slugify_id(base_id)
        display = clean_name(name or meta.cellucid_name or resolved.stem, base_id)
        return self.publish(base_id, display, resolved, meta, identity)

    def refresh(self, dataset: Dataset) -> Dataset:
        """The entry for the file as it is on disk now: the same one while the file is
        unchanged, else its metadata read again under the same id and name. Raises
        DatasetError if the file is gone or no longer a usable `.h5ad`.

        May block (``stat``): never on the server's I/O thread. While one thread
        checks a dataset (a slow disk), others get its entry as last read at once.
        """
        if dataset.identity is None:  # a remote store: its server checks it
            return dataset
        with self._lock:
            if dataset.id in self._refreshing:
                return self._by_id.get(dataset.id, dataset)
            self._refreshing.add(dataset.id)
        try:
            return self._refresh(dataset)
        finally:
            with self._lock:
                self._refreshing.discard(dataset.id)

    def _refresh(self, dataset: Dataset) -> Dataset:
        identity = _identity_of(dataset.path, dataset.id)
        if identity == dataset.identity:
            return dataset
        unusable = self._unusable.get(dataset.id)
        if unusable is not None and unusable[0] == identity:
            raise DatasetError(unusable[1])
        # HDF5 shares one open state per file: handles still open on the old version
        # would feed its stale structure to the new read. Readers close them first.
        self._release(dataset)
        try:
            meta = read_path_metadata(dataset.path)
        except DatasetError as exc:
            self._unusable[dataset.id] = (identity, str(exc))
            log.warning("Dataset %s changed on disk and can no longer be read: %s",
                        dataset.id, exc)
            raise
        self._unusable.pop(dataset.id, None)
        fresh = replace(dataset, meta=meta, identity=identity)
        with self._lock:
            current = self._by_id.get(dataset.id)
            if current is not None and current.path == dataset.path:
                self._by_id[dataset.id] = fresh
        log.info("Dataset %s changed on disk; read again: %d cells, %d genes", dataset.id,
                 meta.n_cells, meta.n_genes)
        return fresh

    def public_message(self, text: str) -> str:
        """``text`` with every registered file's path and name replaced by its dataset
        id: answers never name a local path (the log may)."""
        for dataset in self.all():
            if dataset.identity is None:
                continue
            label = f"the file of dataset {dataset.id!r}"
            for local in (str(dataset.path), dataset.path.name):
                text = text.replace(local, label)
        return text[:1].upper() + text[1:]

    def publish(self, base_id: str, name: str, path: Path, meta: AnnDataMeta,
                identity: str | None = None) -> Dataset:
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
            entry = Dataset(unique, name, path, meta, identity)
            self._by_id[unique] = entry
        return entry

    def remove(self, dataset_id: str) -> bool:
        """Forget a dataset (its window closed); True if it was registered."""
        with self._lock:
            entry = self._by_id.pop(dataset_id, None)
            self._unusable.pop(dataset_id, None)
        if entry is not None:
            self._release(entry)
        return entry is not None

    def _release(self, dataset: Dataset) -> None:
        with self._lock:
            hooks = list(self._remove_hooks)
        for hook in hooks:
            hook(dataset)

    def on_remove(self, hook: Callable[[Dataset], None]) -> None:
        """Call ``hook(dataset)`` after a dataset is removed, and before its file, changed
        on disk, is read again (readers close the file they hold)."""
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


def _identity_of(path: Path, dataset_id: str | None = None) -> str:
    """The file's identity now; DatasetError (a sentence) if it cannot be read."""
    try:
        return file_identity(path)
    except OSError as exc:
        what = f"The file of dataset {dataset_id!r}" if dataset_id else str(path)
        raise DatasetError(f"{what} is no longer readable ({exc.strerror or exc}); "
                           "open it again") from None
