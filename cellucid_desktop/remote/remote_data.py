"""The built-in viewer's data API for a remote that offers only its raw store.

cellucid 0.9.5 serves the store's bytes and nothing computed. The local proxy then
answers ``/api/v1`` itself, reading the remote store as a DatasetSource: an HDF5 file
(``.h5ad``, ``.h5mu``, ``.loom``) with h5py through RangeFile (HTTP Range requests), a
zipped Zarr store the same way through zipfile, and a Zarr store folder key by key
(remote/store_keys.py). Embeddings and obs columns cost about their own size; a gene
from a CSC or dense matrix costs its column's bytes (its chunks, for Zarr), but from a
CSR matrix the first genes need the whole ``indices`` and ``data`` arrays once (a
RangeFile keeps what it read in a temp file, and the local gene index is built from
it, after which every gene is a local slice). Each data API answer carries
``X-Remote-Bytes``: the bytes its own reads fetched from the remote (remote/traffic.py;
a gene-index build in the background is charged to no request).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from flask import Flask, Response, request

from cellucid_desktop import paths
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.formats import describe, open_layout
from cellucid_desktop.data.hdf5_file import open_hdf5
from cellucid_desktop.data.layout import Layout
from cellucid_desktop.data.source import DatasetSource
from cellucid_desktop.http_client import Client
from cellucid_desktop.remote.range_file import RangeFile
from cellucid_desktop.remote.store_keys import RemoteKeys
from cellucid_desktop.remote.traffic import close_account, open_account
from cellucid_desktop.server.data_api import EXPOSED, DataService
from cellucid_desktop.server.registry import DatasetRegistry, read_meta

COST_HEADER = "X-Remote-Bytes"
HDF5_KINDS = frozenset({"h5ad", "h5mu", "loom"})
ZARR_KINDS = frozenset({"zarr", "mudata-zarr"})
LABEL = "The remote dataset"


class RemoteSource(DatasetSource):
    """One remote store (or one modality of it), opened through a shared transport:
    ``opener()`` returns (open container, close); ``version`` names the remote version."""

    def __init__(self, kind: str, location: str, version: str,
                 opener: Callable[[], tuple[Any, Callable[[], None]]],
                 modality: str | None, close: Callable[[], None],
                 file: RangeFile | None = None) -> None:
        self.kind = kind
        self.label = LABEL
        self._opener = opener
        self._close = close
        self._version = version
        self._file = file  # the remote file of a single-file store, for copies
        root, release = opener()
        try:
            container = describe(root, kind, modality, LABEL)
        finally:
            release()
        self.modalities, self.modality = container.modalities, container.modality
        self.location = f"{location}#{self.modality}" if self.modality else location
        self._identity = "remote-" + hashlib.sha256(
            f"{location}\0{version}\0{self.modality or ''}".encode()).hexdigest()[:24]

    def identity(self) -> str:
        return self._identity

    def annotation_key(self) -> str:
        """The remote file's path and version, not the tunnel's local port (which a
        new connection may change): saved selections are found again next time."""
        return f"{urlsplit(self.location).path}#{self.modality or ''}\0{self._version}"

    def raw_file(self) -> tuple[BinaryIO, int] | None:
        if self._file is None:
            return None
        return io.BufferedReader(_RemoteBytes(self._file), 1 << 20), self._file.size

    def open(self) -> Layout:
        root, release = self._opener()
        return open_layout(root, self.kind, self.modality, LABEL, release)

    def close(self) -> None:
        self._close()

    def sibling(self, modality: str) -> RemoteSource:
        """The same store's ``modality``, over the same transport."""
        location = self.location.rsplit("#", 1)[0]
        return RemoteSource(self.kind, location, self._version, self._opener, modality,
                            self._close, self._file)


class _RemoteBytes(io.RawIOBase):
    """A remote file read from its start through the source's RangeFile (blocks already
    fetched are not fetched again), without moving the position h5py reads at."""

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


def _file_opener(file: RangeFile, kind: str) -> Callable[[], tuple[Any, Callable[[], None]]]:
    if kind in HDF5_KINDS:
        def open_h5() -> tuple[Any, Callable[[], None]]:
            h5 = open_hdf5(file, "The remote file")
            return h5, h5.close
        return open_h5

    def open_zip() -> tuple[Any, Callable[[], None]]:
        from cellucid_desktop.data.zarr_store import ZipReader, open_group

        reader = ZipReader(file, "The remote zipped store")
        try:
            return open_group(reader.store("remote zip"), LABEL, reader.root or ""), reader.close
        except BaseException:
            reader.close()
            raise
    return open_zip


def _keys_opener(keys: RemoteKeys) -> Callable[[], tuple[Any, Callable[[], None]]]:
    def open_folder() -> tuple[Any, Callable[[], None]]:
        from cellucid_desktop.data.zarr_store import KeyStore, open_group

        return open_group(KeyStore(keys.read, "remote store"), LABEL), lambda: None
    return open_folder


def open_remote_source(base_url: str, host: str, upstream: Client,
                       file: dict) -> RemoteSource:
    """The source for one ``/_cellucid/datasets`` store entry (``file`` is its
    ``anndata.file``); RemoteFileError or DatasetError when it cannot be read."""
    kind, layout, url = file.get("kind"), file.get("layout"), str(file.get("url") or "")
    modality = ((file.get("defaults") or {}).get("modality")
                if isinstance(file.get("defaults"), dict) else None)
    if layout == "folder" and kind in ZARR_KINDS:
        keys = RemoteKeys(upstream, url)
        root_doc = keys.read("zarr.json") or keys.read(".zmetadata") or b""
        version = hashlib.sha256(root_doc).hexdigest()
        return RemoteSource(kind, f"{base_url}/{url}", version, _keys_opener(keys), modality,
                            lambda: None)
    if layout in ("file", "zip") and (kind in HDF5_KINDS or kind in ZARR_KINDS):
        remote = RangeFile(f"{base_url}/{url}", host=host, token=upstream.endpoint.token,
                           spill_dir=paths.cache_dir())
        try:
            return RemoteSource(kind, f"{base_url}/{url}", remote.etag or "",
                                _file_opener(remote, kind), modality, remote.close,
                                remote if layout == "file" else None)
        except BaseException:
            remote.close()
            raise
    raise DatasetError(f"The remote dataset is a {kind or 'unknown'} {layout or ''} store, "
                       "which the built-in viewer cannot read")


def remote_data_api(service: DataService) -> Callable[[Flask], None]:
    """Install ``service`` as the app's data service, and report each answer's cost."""

    def register(app: Flask) -> None:
        app.extensions["cellucid_data"] = service

        @app.before_request
        def _count_start() -> None:
            request.environ["cellucid.remote_account"] = open_account()

        @app.after_request
        def _report_cost(response: Response) -> Response:
            account, _ = request.environ["cellucid.remote_account"]
            if request.path.startswith("/api/v1/"):
                response.headers[COST_HEADER] = str(account[0])
                response.headers["Access-Control-Expose-Headers"] = f"{EXPOSED}, {COST_HEADER}"
            return response

        @app.teardown_request
        def _count_end(_exc: BaseException | None) -> None:
            opened = request.environ.pop("cellucid.remote_account", None)
            if opened is not None:
                close_account(opened[1])

    return register


def open_remote_datasets(base_url: str, host: str, upstream: Client, datasets: list[dict],
                         ) -> tuple[DatasetRegistry, DataService]:
    """A registry + data service over the remote's ``/_cellucid/datasets`` entries: each
    store the built-in viewer reads, and for MuData each of its modalities."""
    registry = DatasetRegistry()
    for entry in datasets:
        file = dict((entry.get("anndata") or {}).get("file") or {})
        file["defaults"] = (entry.get("anndata") or {}).get("defaults") or {}
        try:
            source = open_remote_source(base_url, host, upstream, file)
        except DatasetError:
            continue
        dataset_id, name = str(entry["id"]), str(entry.get("name") or entry["id"])
        sources = [source] + [source.sibling(m) for m in source.modalities
                              if m != source.modality]
        for modality_source in sources:
            suffix = f" ({modality_source.modality})" if modality_source is not source else ""
            base_id = dataset_id if modality_source is source \
                else f"{dataset_id}-{modality_source.modality}"
            registry.publish(base_id, name + suffix, modality_source, read_meta(modality_source))
    return registry, DataService(registry)

