"""The datasets the server publishes: one registry, every window a view on one entry.

The registry is the one truth about a dataset's metadata: data changed on disk is
noticed by :meth:`DatasetRegistry.refresh` (its identity: size, mtime, inode) and read
again, so the protocol's health and the data API never disagree about its shape.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta
from cellucid_desktop.data.identity import clean_name, is_valid_id, slugify_id
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.source import DatasetSource

log = logging.getLogger(__name__)

# The endings a dataset's name loses when it is made from its file name.
_NAME_ENDINGS = (".zarr.zip", ".h5ad", ".h5mu", ".loom", ".zarr", ".zip")


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its source is private (no response names where it is)."""

    id: str
    name: str
    source: DatasetSource
    meta: AnnDataMeta
    identity: str | None = None  # the data version ``meta`` was read from (None: remote)

    @property
    def route_name(self) -> str:
        """The store's name under `/_cellucid/anndata/`: the id and the format's ending
        (a remote source, whose store routes are forwarded, keeps `.h5ad`)."""
        published = self.source.publication()
        return f"{self.id}{published.ending if published else '.h5ad'}"


def read_meta(source: DatasetSource) -> AnnDataMeta:
    """Open, describe and close: the check every dataset gets when it is registered."""
    reader = DatasetReader(source, source.identity())
    try:
        return reader.meta
    finally:
        reader.close()


def _stem(name: str) -> str:
    lower = name.lower()
    ending = next((e for e in _NAME_ENDINGS if lower.endswith(e)), "")
    return name[: len(name) - len(ending)] if ending else name


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
            name: str | None = None, modality: str | None = None) -> Dataset:
        """Open a local file or store, read its metadata and publish it; raises
        DatasetError if unusable. ``modality`` picks a MuData modality (default: the
        expression one)."""
        source = open_local(path, modality)
        existing = self.find(source.location)
        if existing is not None:
            return existing
        identity = source.identity()
        meta = read_meta(source)
        assert source.local_path is not None
        stem = _stem(source.local_path.name)
        base_id = dataset_id or meta.cellucid_id or stem
        if source.modality and not dataset_id:
            base_id = f"{base_id}-{source.modality}"
        base_id = base_id if is_valid_id(base_id) else slugify_id(base_id)
        default_name = meta.cellucid_name or stem
        if source.modality and not name:
            default_name = f"{default_name} ({source.modality})"
        display = clean_name(name or default_name, base_id)
        return self.publish(base_id, display, source, meta, identity)

    def refresh(self, dataset: Dataset) -> Dataset:
        """The entry for the data as it is on disk now: the same one while it is
        unchanged, else its metadata read again under the same id and name. Raises
        DatasetError if the data is gone or no longer usable.

        May block (``stat``): never on the server's I/O thread. While one thread
        checks a dataset (a slow disk), others get its entry as last read at once.
        """
        if dataset.identity is None or dataset.source.local_path is None:
            return dataset  # a remote source: its server checks it
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
        identity = dataset.source.identity()
        if identity == dataset.identity:
            return dataset
        unusable = self._unusable.get(dataset.id)
        if unusable is not None and unusable[0] == identity:
            raise DatasetError(unusable[1])
        # HDF5 shares one open state per file: handles still open on the old version
        # would feed its stale structure to the new read. Readers close them first.
        self._release(dataset)
        try:
            source = open_local(dataset.source.local_path, dataset.source.modality)
            meta = read_meta(source)
        except DatasetError as exc:
            self._unusable[dataset.id] = (identity, str(exc))
            log.warning("Dataset %s changed on disk and can no longer be read: %s",
                        dataset.id, exc)
            raise
        self._unusable.pop(dataset.id, None)
        fresh = replace(dataset, source=source, meta=meta, identity=source.identity())
        with self._lock:
            current = self._by_id.get(dataset.id)
            if current is not None and current.source.location == dataset.source.location:
                self._by_id[dataset.id] = fresh
        log.info("Dataset %s changed on disk; read again: %d cells, %d genes", dataset.id,
                 meta.n_cells, meta.n_genes)
        return fresh

    def public_message(self, text: str) -> str:
        """``text`` with every registered local path and file name replaced by its
        dataset id: answers never name a local path (the log may)."""
        for dataset in self.all():
            local = dataset.source.local_path
            if local is None:
                continue
            label = f"the file of dataset {dataset.id!r}"
            for name in (str(local), local.name):
                text = text.replace(name, label)
        return text[:1].upper() + text[1:]

    def publish(self, base_id: str, name: str, source: DatasetSource,
                meta: AnnDataMeta, identity: str | None = None) -> Dataset:
        """Register already-read metadata under ``base_id`` made unique (``-2``, ``-3``...).

        A location already registered (another thread opened the same file meanwhile)
        returns that entry, so one dataset never gets two ids.
        """
        with self._lock:
            existing = next((d for d in self._by_id.values()
                             if d.source.location == source.location), None)
            if existing is not None:
                return existing
            unique, n = base_id, 1
            while unique in self._by_id:
                n += 1
                unique = f"{base_id[:170]}-{n}"
            entry = Dataset(unique, name, source, meta, identity)
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
        """Call ``hook(dataset)`` after a dataset is removed, and before its data, changed
        on disk, is read again (readers close the file they hold)."""
        with self._lock:
            self._remove_hooks.append(hook)

    def get(self, dataset_id: str) -> Dataset | None:
        with self._lock:
            return self._by_id.get(dataset_id)

    def find(self, location: str) -> Dataset | None:
        """The dataset opened from ``location`` (DatasetSource.location), if any."""
        with self._lock:
            return next((d for d in self._by_id.values() if d.source.location == location),
                        None)

    def by_route(self, route: str) -> tuple[Dataset, str | None] | None:
        """The dataset a store route names, with the key a folder route adds:
        ``<id>.h5ad`` -> (dataset, None); ``<id>.zarr/X/data/0`` -> (dataset, "X/data/0")."""
        with self._lock:
            datasets = list(self._by_id.values())
        for dataset in datasets:
            name = dataset.route_name
            published = dataset.source.publication()
            if published is None:
                continue  # a remote dataset: its store routes are the remote's
            if published.layout == "folder":
                if route.startswith(name + "/"):
                    return dataset, route[len(name) + 1:]
            elif route == name:
                return dataset, None
        return None

    def all(self) -> list[Dataset]:
        """Datasets in the order they were opened."""
        with self._lock:
            return list(self._by_id.values())
