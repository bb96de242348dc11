"""The built-in viewer's data API for a remote that offers only its raw store.

cellucid 0.9.5 serves the ``.h5ad`` bytes and nothing computed. The local proxy then
answers ``/api/v1`` itself by opening the remote file with h5py through RangeFile:
embeddings and obs columns cost about their own size; a gene from a CSC matrix costs
one contiguous range, but from a CSR matrix the first genes need the whole ``indices``
and ``data`` arrays once (the RangeFile keeps what it read in a temp file, and the
local gene index is built from it, after which every gene is a local slice). Each data API answer carries ``X-Remote-Bytes``: the bytes its
own request thread read from the remote (a gene-index build in the background is not
charged to it), so the cost is visible.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from flask import Flask, Response, request

from cellucid_desktop import paths
from cellucid_desktop.data.annotations import keyed_path
from cellucid_desktop.data.h5ad import open_h5ad, read_metadata
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.remote.range_file import RangeFile
from cellucid_desktop.server.data_api import EXPOSED, DataService
from cellucid_desktop.server.registry import Dataset, DatasetRegistry

COST_HEADER = "X-Remote-Bytes"


class RemoteStore:
    """One remote ``.h5ad``: where it is, and the open RangeFile behind its reader."""

    def __init__(self, url: str, host: str) -> None:
        self.file = RangeFile(url, host=host, spill_dir=paths.cache_dir())
        # The ETag names the file version (size, mtime, inode on cellucid's side).
        self.identity = "remote-" + hashlib.sha256(
            f"{url}\0{self.file.etag}".encode()).hexdigest()[:24]
        # Saved selections are keyed by the file on the remote, not by the local port of
        # this connection's tunnel, so they are found again on the next connection.
        self.annotation_key = f"remote\0{urlsplit(url).path}\0{self.file.etag}"

    def open(self):  # noqa: ANN201 - h5py.File
        return open_h5ad(self.file)


class _RemoteBytes(io.RawIOBase):
    """The remote file read from its start, through the store's RangeFile (so blocks
    already fetched are not fetched again), without moving the position h5py uses."""

    def __init__(self, file: RangeFile) -> None:
        super().__init__()
        self._file = file
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        data = self._file.pread(self._pos, len(buffer))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


class RemoteRegistry(DatasetRegistry):
    """A registry whose datasets live on a remote server, not on a local path."""

    def add_remote(self, store: RemoteStore, dataset_id: str, name: str) -> Dataset:
        with store.open() as h5:
            meta = read_metadata(h5)
        # ``path`` is a label only: no local file exists, and the store routes of this
        # origin are forwarded to the remote before they could look it up.
        return self.publish(dataset_id, name, Path(f"remote:{dataset_id}"), meta)


class RemoteDataService(DataService):
    """DataService whose readers read remote stores through RangeFile."""

    def __init__(self, registry: DatasetRegistry, stores: dict[str, RemoteStore]) -> None:
        super().__init__(registry)
        self.stores = stores
        self._remote_readers: dict[str, DatasetReader] = {}
        self._remote_lock = threading.Lock()

    def reader(self, dataset: Dataset) -> DatasetReader:
        store = self.stores[dataset.id]
        with self._remote_lock:
            reader = self._remote_readers.get(dataset.id)
            if reader is None:
                reader = DatasetReader(store.open, identity=store.identity)
                self._remote_readers[dataset.id] = reader
            return reader

    def annotation_locations(self, dataset: Dataset, reader: DatasetReader) -> list[Path]:
        """Saved selections of a remote dataset live in the app's data folder."""
        return [keyed_path(self.stores[dataset.id].annotation_key)]

    def open_bytes(self, dataset: Dataset, reader: DatasetReader,
                   ) -> tuple[BinaryIO, int, Path | None]:
        file = self.stores[dataset.id].file
        return io.BufferedReader(_RemoteBytes(file), 1 << 20), file.size, None

    def close(self) -> None:
        """Close the h5py files, then the remote files they read."""
        with self._remote_lock:
            readers, self._remote_readers = list(self._remote_readers.values()), {}
        for reader in readers:
            self._close(reader)  # cancels its gene-index build, then closes the h5py file
        for store in self.stores.values():
            store.file.close()

    def bytes_read(self) -> int:
        """Bytes the calling thread has read from the remotes so far."""
        return sum(store.file.thread_bytes() for store in self.stores.values())


def remote_data_api(service: RemoteDataService) -> Callable[[Flask], None]:
    """Install ``service`` as the app's data service, and report each answer's cost."""

    def register(app: Flask) -> None:
        app.extensions["cellucid_data"] = service
        local = threading.local()

        @app.before_request
        def _count_start() -> None:
            local.start = service.bytes_read()

        @app.after_request
        def _report_cost(response: Response) -> Response:
            if request.path.startswith("/api/v1/"):
                response.headers[COST_HEADER] = str(service.bytes_read() - local.start)
                response.headers["Access-Control-Expose-Headers"] = f"{EXPOSED}, {COST_HEADER}"
            return response

    return register


def open_remote_datasets(base_url: str, host: str, datasets: list[dict],
                         ) -> tuple[RemoteRegistry, RemoteDataService]:
    """A registry + data service over the remote's ``/_cellucid/datasets`` entries
    (the ``file`` layout only: one ``.h5ad`` per dataset)."""
    registry = RemoteRegistry()
    stores = {}
    for entry in datasets:
        file = (entry.get("anndata") or {}).get("file") or {}
        if file.get("layout") != "file" or file.get("kind") != "h5ad":
            continue
        store = RemoteStore(f"{base_url}/{file['url']}", host)
        registry.add_remote(store, str(entry["id"]), str(entry.get("name") or entry["id"]))
        stores[str(entry["id"])] = store
    return registry, RemoteDataService(registry, stores)
