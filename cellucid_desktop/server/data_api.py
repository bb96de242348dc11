"""The built-in viewer's data API under ``/api/v1``: datasets, embeddings, obs, genes.

JSON for descriptions, little-endian binary for per-cell arrays. docs/data-api.md is
the contract. Immutable payloads carry a strong ETag made of the file's identity and
the item, so a viewer revalidates with a 304 instead of a download. Category codes and
sparse gene vectors are gzipped when the client accepts it (they shrink 3-30x, which
matters through an SSH tunnel); embeddings and continuous values barely compress and
are sent raw.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections import OrderedDict

import numpy as np
from flask import Blueprint, Flask, Response, current_app, request

from cellucid_desktop.data.annotations import (AnnotationStore, SavedColumn,
                                               annotation_locations)
from cellucid_desktop.data.embeddings import UnknownEmbedding
from cellucid_desktop.data.errors import DatasetError, SourceUnreachable
from cellucid_desktop.data.gene_index import GeneIndexManager
from cellucid_desktop.data.genes import (GeneNames, Source, UnknownGene, UnknownSource,
                                         expression_sources, find_source, read_gene)
from cellucid_desktop.data.memory import limit_arenas
from cellucid_desktop.data.obs import ObsColumn, UnknownColumn
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.selections import BadSelection
from cellucid_desktop.server.context import server_context
from cellucid_desktop.server.registry import Dataset, DatasetRegistry
from cellucid_desktop.server.store import not_modified

bp = Blueprint("cellucid_data_api", __name__, url_prefix="/api/v1")

EXPOSED = ("Content-Encoding, Content-Length, Content-Disposition, ETag, X-Dims, X-Gene-Index, "
           "X-Min, X-Max, X-Genes-Used, X-Genes-Missing, X-Control-Genes, Server-Timing")
GZIP_CACHE_BYTES = 16 << 20
OBS_CACHE_BYTES = 16 << 20  # decoded obs columns: a viewer asks for meta, then values
SPARSE_ENOUGH_TO_GZIP = 0.25  # fraction of non-zero cells below which a gene is gzipped


class BoundedCache:
    """A thread-safe LRU map holding at most ``max_bytes`` of values."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value: object, size: int) -> None:
        if size > self.max_bytes // 4:
            return  # one huge item would push out everything else
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._items.popitem(last=False)[1][1]


class DataService:
    """One reader per open dataset (reopened when its data changes) and the gene index."""

    def __init__(self, registry: DatasetRegistry, index: GeneIndexManager | None = None) -> None:
        self.registry = registry
        self.index = index or GeneIndexManager()
        self._lock = threading.Lock()
        self._readers: dict[str, tuple[str, DatasetReader]] = {}
        self._names: dict[tuple[int, str], GeneNames] = {}
        self._gzip = BoundedCache(GZIP_CACHE_BYTES)
        self.obs_columns = BoundedCache(OBS_CACHE_BYTES)
        self._annotations: dict[str, tuple[DatasetReader, AnnotationStore]] = {}
        registry.on_remove(self.forget)
        limit_arenas()  # per-request vectors of MBs must not bloat one arena per thread

    def reader(self, dataset: Dataset) -> DatasetReader:
        """The dataset's reader, replaced when its data changed (the registry tells: one
        truth for this API and the protocol's health)."""
        dataset = self.registry.refresh(dataset)  # DatasetError when the data is gone
        identity = dataset.identity or dataset.source.identity()
        location = dataset.source.location
        with self._lock:
            current = self._readers.get(dataset.id)
            if current is not None and current[0] == location \
                    and current[1].identity == identity:
                return current[1]
            reader = DatasetReader(dataset.source, identity)
            self._readers[dataset.id] = (location, reader)
        if current is not None:
            self._close(current[1])
        return reader

    def gene_names(self, reader: DatasetReader, source: Source) -> GeneNames:
        key = (id(reader), source.id)
        with self._lock:
            names = self._names.get(key)
        if names is None:
            names = GeneNames.read(reader, source)
            with self._lock:
                self._names[key] = names
        return names

    def annotations(self, dataset: Dataset, reader: DatasetReader) -> AnnotationStore:
        """The dataset's saved selections (a store per data version)."""
        n_cells = reader.meta.n_cells
        with self._lock:
            current = self._annotations.get(dataset.id)
            if current is None or current[0] is not reader:
                store = AnnotationStore(annotation_locations(dataset.source), n_cells,
                                        reader.obs_names)
                current = self._annotations[dataset.id] = (reader, store)
            return current[1]

    def gzipped(self, etag: str, body: bytes) -> bytes:
        """gzip at level 1 (fast), remembered by ETag within a bounded cache."""
        packed = self._gzip.get(etag)
        if packed is None:
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)
            packed = packer.compress(body) + packer.flush()
            self._gzip.put(etag, packed, len(packed))
        return packed  # type: ignore[return-value]

    def forget(self, dataset: Dataset) -> None:
        """Registry hook: a removed dataset's file is closed and its build cancelled."""
        with self._lock:
            current = self._readers.pop(dataset.id, None)
            self._annotations.pop(dataset.id, None)
        if current is not None:
            self._close(current[1])

    def close(self) -> None:
        """Close every reader (their builds cancelled), then the sources' transports."""
        with self._lock:
            readers, self._readers = [r for _, r in self._readers.values()], {}
        for reader in readers:
            self._close(reader)
        for dataset in self.registry.all():
            dataset.source.close()

    def _close(self, reader: DatasetReader) -> None:
        self.index.forget(reader)
        with self._lock:
            for key in [k for k in self._names if k[0] == id(reader)]:
                del self._names[key]
        reader.close()


def register(app: Flask) -> None:
    """Mount the API on an app (called from create_flask_app)."""
    app.extensions["cellucid_data"] = DataService(app.extensions["cellucid"].registry)
    app.register_blueprint(bp)


def data_service() -> DataService:
    return current_app.extensions["cellucid_data"]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_response(document: dict, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, content_type="application/json",
                    headers={"Access-Control-Expose-Headers": EXPOSED})


def _api_error(err: ApiError) -> Response:
    return json_response({"error": str(err)}, err.status)


def _dataset_error(err: DatasetError) -> Response:
    status = 400 if isinstance(err, BadSelection) else 404 if isinstance(
        err, (UnknownColumn, UnknownEmbedding, UnknownGene, UnknownSource)) else 422
    if status == 422:
        current_app.logger.warning("Data API %s: %s", request.path, err)
    return json_response({"error": server_context().registry.public_message(str(err))},
                         status)


def _unreachable(err: SourceUnreachable) -> Response:
    """A remote dataset's tunnel is down: a gateway failure to retry, not a bad file."""
    current_app.logger.warning("Data API request failed: %s: %s", request.path, err)
    return json_response({"error": str(err)}, 502)


def _unexpected(err: Exception) -> Response:
    current_app.logger.exception("Data API request failed: %s", request.path)
    return json_response({"error": f"Reading the dataset failed ({type(err).__name__}); "
                                   "see the log for details"}, 500)


def add_error_handlers(blueprint: Blueprint) -> None:
    """JSON errors (``{"error": sentence}``) for a blueprint of the API, never HTML."""
    blueprint.register_error_handler(ApiError, _api_error)
    blueprint.register_error_handler(DatasetError, _dataset_error)
    blueprint.register_error_handler(SourceUnreachable, _unreachable)
    blueprint.register_error_handler(Exception, _unexpected)


add_error_handlers(bp)


def find_dataset(dataset_id: str) -> tuple[Dataset, DatasetReader]:
    dataset = server_context().registry.get(dataset_id)
    if dataset is None:
        raise ApiError(404, f"No dataset with id {dataset_id!r} is open")
    return dataset, data_service().reader(dataset)


def payload_etag(reader: DatasetReader, *item: str) -> str:
    digest = hashlib.sha256("\0".join(item).encode()).hexdigest()[:16]
    return f'"{reader.identity}-{digest}"'


def _gzip_etag(etag: str) -> str:
    return etag[:-1] + '-gz"'


def binary_response(body: bytes, etag: str, *, gzip: bool = False, started: float | None = None,
            **headers: str) -> Response:
    """An octet-stream answer, gzipped when asked and the client accepts it."""
    headers = {"ETag": etag, "Access-Control-Expose-Headers": EXPOSED, **headers}
    if gzip:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["ETag"] = _gzip_etag(etag)
            headers["Content-Encoding"] = "gzip"
            body = data_service().gzipped(headers["ETag"], body)
    if started is not None:
        headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.2f}"
    return Response(body, content_type="application/octet-stream", headers=headers)


def if_not_modified(etag: str) -> Response | None:
    """A 304 when If-None-Match names the payload (raw or gzipped form), else None."""
    condition = request.headers.get("If-None-Match")
    for candidate in (etag, _gzip_etag(etag)):
        if not_modified(condition, candidate):
            return Response(status=304, headers={"ETag": candidate})
    return None


def _index_status(reader: DatasetReader, sources: list[Source]) -> dict:
    """The gene index of the default source, as ``/gene-index`` and descriptions report it."""
    if not sources:
        return {"status": "none", "progress": 0.0,
                "message": "This dataset has no expression matrix"}
    return data_service().index.status(reader, sources[0])


def _describe(dataset: Dataset, reader: DatasetReader) -> dict:
    meta = reader.meta
    embeddings = reader.embeddings()
    sources = expression_sources(meta)
    return {
        "id": dataset.id, "name": dataset.name, "n_cells": meta.n_cells,
        "n_genes": meta.n_genes,
        "embeddings": [e.describe() for e in embeddings],
        "default_embedding": embeddings[0].key if embeddings else None,
        "obs": [{"key": c.name, "kind": c.kind,
                 "n_categories": 2 if c.kind == "boolean" else c.n_categories}
                for c in meta.obs_columns] + [
                {"key": c.key, "kind": "categorical", "n_categories": len(c.categories),
                 "annotation": True} for c in saved_columns(dataset, reader)],
        "expression_sources": [s.describe() for s in sources],
        "default_source": sources[0].id if sources else None,
        "gene_index": _index_status(reader, sources),
    }


@bp.get("/datasets")
def datasets() -> Response:
    documents = []
    for dataset in server_context().registry.all():
        try:
            documents.append(_describe(dataset, data_service().reader(dataset)))
        except DatasetError:
            continue  # a file gone or broken since it was opened is left out of the list
    return json_response({"datasets": documents})


@bp.get("/datasets/<dataset_id>")
def dataset(dataset_id: str) -> Response:
    return json_response(_describe(*find_dataset(dataset_id)))


@bp.get("/datasets/<dataset_id>/embeddings/<path:key>")
def embedding(dataset_id: str, key: str) -> Response:
    _, reader = find_dataset(dataset_id)
    found = reader.find_embedding(key)
    etag = payload_etag(reader, "embedding", key, str(found.dims))
    if (cached := if_not_modified(etag)) is not None:
        return cached
    values = reader.embedding(found)
    return binary_response(values.astype("<f4", copy=False).tobytes(), etag, **{"X-Dims": str(found.dims)})


def saved_columns(dataset: Dataset, reader: DatasetReader) -> list[SavedColumn]:
    """The dataset's saved selections not shadowed by a column of the data."""
    in_data = {c.name for c in reader.meta.obs_columns}
    return [c for c in data_service().annotations(dataset, reader).columns()
            if c.key not in in_data]


def obs_column(dataset: Dataset, reader: DatasetReader, key: str) -> tuple[ObsColumn, str]:
    """(column, ETag of its values): a column of the data, else a saved selection."""
    service = data_service()
    if key not in {c.name for c in reader.meta.obs_columns}:
        store = service.annotations(dataset, reader)
        saved = store.get(key)
        if saved is None:
            raise UnknownColumn(f"This dataset has no obs column named {key!r}")
        return saved.as_obs(), payload_etag(reader, "annotation", key, store.version)
    etag = payload_etag(reader, "obs", key)
    column = service.obs_columns.get(etag)
    if column is None:
        column = reader.obs_column(key)  # TooManyCategories: a 422 via _dataset_error
        if column.values.shape != (reader.meta.n_cells,):
            raise ApiError(422, f"The obs column {key!r} does not hold one value per cell, "
                                "so it cannot be coloured by")
        service.obs_columns.put(etag, column, column.values.nbytes)
    return column, etag


@bp.get("/datasets/<dataset_id>/obs/<path:rest>")
def obs(dataset_id: str, rest: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    in_data = {c.name for c in reader.meta.obs_columns}
    columns = in_data | {c.key for c in saved_columns(dataset, reader)}
    key, values = rest, False
    if rest.endswith("/values") and rest[: -len("/values")] in columns:
        key, values = rest[: -len("/values")], True
    if key not in columns:
        raise ApiError(404, f"This dataset has no obs column named {key!r}")
    column, etag = obs_column(dataset, reader, key)
    if values and (cached := if_not_modified(etag)) is not None:
        return cached
    if not values:
        saved = {} if key in in_data else {"annotation": True}
        return json_response({**column.describe(), **saved})
    body = column.values.astype("<u2" if column.values.dtype == np.uint16 else "<f4",
                                copy=False).tobytes()
    return binary_response(body, etag, gzip=column.values.dtype == np.uint16)


def _limit() -> int:
    try:
        return max(0, min(int(request.args.get("limit", 20)), 1000))
    except ValueError:
        raise ApiError(400, "limit must be a whole number, for example limit=20") from None


@bp.get("/datasets/<dataset_id>/genes")
def genes(dataset_id: str) -> Response:
    _, reader = find_dataset(dataset_id)
    source = find_source(reader.meta, request.args.get("source"))
    found, total = data_service().gene_names(reader, source).search(request.args.get("q", ""),
                                                                _limit())
    data_service().index.ensure(reader, source)  # a search means a gene is coming: start early
    return json_response({"genes": found, "total": total})


@bp.get("/datasets/<dataset_id>/genes/<path:name>")
def gene(dataset_id: str, name: str) -> Response:
    started = time.perf_counter()
    _, reader = find_dataset(dataset_id)
    source = find_source(reader.meta, request.args.get("source"))
    service = data_service()
    index = service.gene_names(reader, source).lookup(name)
    etag = payload_etag(reader, "gene", source.id, str(index))
    if (cached := if_not_modified(etag)) is not None:
        return cached
    built = service.index.open(reader, source) if source.layout == "csr" else None
    if built is not None:
        values, stored = built.column(index)
        low, high = finite_range(stored, stored.size < values.size)
    else:
        values = read_gene(reader, source, index)
        low, high = finite_range(values, False)
        service.index.ensure(reader, source)  # after the scan, so the two do not compete
    sparse = np.count_nonzero(values) < SPARSE_ENOUGH_TO_GZIP * values.size
    return binary_response(values.astype("<f4", copy=False).tobytes(), etag, gzip=sparse,
                   started=started, **{"X-Gene-Index": str(index), "X-Min": repr(low),
                                       "X-Max": repr(high)})


def finite_range(values: np.ndarray, has_zeros: bool) -> tuple[float, float]:
    """Finite min and max (0 counts when unstored cells exist)."""
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    return (min(low, 0.0), max(high, 0.0)) if has_zeros else (low, high)


@bp.get("/datasets/<dataset_id>/gene-index")
def gene_index(dataset_id: str) -> Response:
    _, reader = find_dataset(dataset_id)
    return json_response(_index_status(reader, expression_sources(reader.meta)))


@bp.get("/", defaults={"rest": ""})
@bp.get("/<path:rest>")
def unknown(rest: str) -> Response:
    raise ApiError(404, f"The data API has no route /api/v1/{rest}; see docs/data-api.md")
