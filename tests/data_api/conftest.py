"""Fixtures of the data API tests: test files, a real server, and a small HTTP client."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anndata as ad
import pytest

from cellucid_desktop.server.registry import Dataset, DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.data_api.files import write_anndata, write_legacy_06, write_legacy_07


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)


class Api:
    """A running server with one registry, and GETs on its data API."""

    def __init__(self, registry: DatasetRegistry) -> None:
        self.registry = registry
        self.server = ServerThread(registry).start()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.get_url(f"/api/v1{path}", headers)

    def get_url(self, url: str, headers: dict[str, str] | None = None) -> Answer:
        """GET any path of the server (the protocol and store routes too)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            conn.request("GET", url, headers={
                "Authorization": f"Bearer {self.server.token}", **(headers or {})})
            response = conn.getresponse()
            body = response.read()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def start_api() -> Iterator[Callable[[DatasetRegistry], Api]]:
    """Start servers on port 0; every one is stopped after the test."""
    started: list[Api] = []

    def start(registry: DatasetRegistry) -> Api:
        api = Api(registry)
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


@pytest.fixture(scope="session")
def ad_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_anndata(tmp_path_factory.mktemp("ad") / "written-by-anndata.h5ad")


@pytest.fixture(scope="session")
def adata(ad_path: Path) -> ad.AnnData:
    """The same file as anndata reads it: the reference for every value."""
    return ad.read_h5ad(ad_path)


@pytest.fixture(scope="session")
def legacy_07(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("l07") / "legacy07.h5ad"
    return path, write_legacy_07(path)


@pytest.fixture(scope="session")
def legacy_06(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("l06") / "legacy06.h5ad"
    return path, write_legacy_06(path)


@pytest.fixture(scope="module")
def ad_api(ad_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Dataset]]:
    """One server for a whole module of read-only checks on the anndata-written file.

    Module-scoped, so it gets its own cache folder (the per-test one is gone by the
    time later tests run) and is stopped once at the end.
    """
    cache = tmp_path_factory.mktemp("ad-api-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        registry = DatasetRegistry()
        dataset = registry.add(ad_path, dataset_id="ad-test")
        api = Api(registry)
        try:
            yield api, dataset
        finally:
            api.stop()


def q(name: str) -> str:
    """Percent-encode a path segment the way the viewer does (``/`` too)."""
    return quote(name, safe="")
