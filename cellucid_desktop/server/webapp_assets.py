"""Serve the cached Cellucid web app on its own origin, next to our protocol routes.

The official app is built to live at an origin's root (``/`` is its index.html, its
files under ``/assets/...``) and to read ``/_cellucid/datasets`` and the store from
that same origin. Our main origin's ``/`` is the built-in viewer, so the web app gets
a second loopback server (its own port, hence its own origin) over the same dataset
registry, created with ``ui="webapp"`` so the built-in viewer is not registered there.

Only paths the active build's inventory declares are served, with the inventory's
content type, and each file's SHA-256 is checked again whenever the file on disk
changes (once per file version), so nothing but verified bytes ever reaches the
page. The inventory and ``state.json`` are never served.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from flask import Blueprint, Flask, Response

from cellucid_desktop.data.reader import stat_identity
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from cellucid_desktop.server.store import text_response
from cellucid_desktop.server.webapp_cache import STATE_NAME, Build, WebAppCache
from cellucid_desktop.server.webapp_download import check_asset_bytes
from cellucid_desktop.server.webapp_inventory import INVENTORY_NAME
from cellucid_desktop.webapp_source import WebAppError

log = logging.getLogger(__name__)

UNAVAILABLE = "Cellucid viewer UI unavailable"
UNDECLARED = "Web asset is not declared by the active build"
_UNREAD = object()  # state.json not read yet, or to be read again


class VerifiedAssets:
    """Reads assets of the cache's active build, hashing each file once per version."""

    def __init__(self, cache: WebAppCache) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._build: Build | None = None
        self._state_version: object = _UNREAD
        self._verified: dict[str, str] = {}  # asset path -> file version hashed

    def build(self) -> Build | None:
        """The active build, re-read only when ``state.json`` changes."""
        version = _file_version(self.cache.root / STATE_NAME)
        with self._lock:
            if version != self._state_version:
                self._build = self.cache.current() if version is not None else None
                self._state_version = version
                self._verified = {}
            return self._build

    def read(self, path: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of a declared asset; None if undeclared or no build.

        Raises WebAppError if the file on disk no longer matches the inventory.
        """
        for _attempt in range(2):  # a swap may remove the old generation mid-read
            build = self.build()
            asset = build.inventory.by_path.get(path) if build is not None else None
            if asset is None:
                return None
            try:
                with (build.directory / asset.path).open("rb") as handle:
                    stat = os.fstat(handle.fileno())
                    data = handle.read()
            except FileNotFoundError:
                with self._lock:
                    self._state_version = _UNREAD
                continue
            version = stat_identity(stat)
            if self._verified.get(path) != version:
                check_asset_bytes(asset, data)
                with self._lock:
                    self._verified[path] = version
            return data, asset.content_type
        return None


def webapp_blueprint(cache: WebAppCache) -> Callable[[Flask], None]:
    """Routes serving the cached web app at ``/``, for ``create_app(blueprints=...)``."""
    assets = VerifiedAssets(cache)

    def register(app: Flask) -> None:
        bp = Blueprint("cellucid_webapp", __name__)

        @bp.get("/")
        def index() -> Response:
            return asset("index.html")

        @bp.get("/<path:path>")
        def asset(path: str) -> Response:
            if path == INVENTORY_NAME:
                return text_response(404, UNDECLARED)
            try:
                found = assets.read(path)
            except WebAppError as exc:
                log.error("Refused to serve a cached web app file: %s", exc)
                return text_response(503, "The cached Cellucid web app is damaged; fetch it "
                                          "again (cellucid-desktop webapp fetch)")
            if found is None:
                if path == "index.html":
                    return text_response(503, UNAVAILABLE)
                if path == "assets" or path.startswith("assets/"):
                    return text_response(404, UNDECLARED)
                return text_response(404, f"Not found: {path}")
            data, content_type = found
            return Response(data, status=200, content_type=content_type)

        app.register_blueprint(bp)

    return register


def start_webapp_server(registry: DatasetRegistry, cache: WebAppCache, *,
                        dataset_id: str | None = None, host: str = "127.0.0.1",
                        port: int = 0) -> ServerThread:
    """A started server for the web app: its assets at ``/`` plus the protocol routes.

    With ``dataset_id`` the origin publishes only that dataset, which is what
    `cellucid serve` always does (one entry in ``/_cellucid/datasets``); the web app has
    no documented way to pick one of several. Raises WebAppError if nothing is cached.
    """
    if cache.current() is None:
        raise WebAppError("The Cellucid web app is not downloaded yet; fetch it first "
                          "(it needs an internet connection once).")
    if dataset_id is not None:
        registry = single_dataset_registry(registry, dataset_id)
    return ServerThread(registry, host=host, port=port, ui="webapp",
                        blueprints=[webapp_blueprint(cache)]).start()


def single_dataset_registry(registry: DatasetRegistry, dataset_id: str) -> DatasetRegistry:
    """A registry holding one dataset of ``registry`` under the same id and name."""
    dataset = registry.get(dataset_id)
    if dataset is None:
        raise KeyError(dataset_id)
    view = DatasetRegistry()
    view.publish(dataset.id, dataset.name, dataset.source, dataset.meta)
    return view


def webapp_viewer_url(server: ServerThread) -> str:
    """The URL to open: ``<base>/?anndata=true``, as `cellucid serve` prints it, with the
    server's access token (the first load turns it into a cookie)."""
    return server.url_with_token("/?anndata=true")


def _file_version(path: os.PathLike[str]) -> str | None:
    try:
        return stat_identity(os.stat(path))
    except OSError:
        return None
