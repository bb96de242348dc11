"""Fixtures of the web-app tests: a local build source, a cache on it, a dataset."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from cellucid_desktop.server.webapp_cache import WebAppCache
from tests.webapp.source import BuildSource, make_build


@pytest.fixture
def source() -> Iterator[BuildSource]:
    """A source publishing the good build ``build-1``."""
    server = BuildSource(make_build("build-1", marker="one")).start()
    yield server
    server.stop()


@pytest.fixture
def cache(source: BuildSource, tmp_path: Path) -> WebAppCache:
    return WebAppCache(tmp_path / "webapp", source_url=source.url, timeout=10)


@pytest.fixture
def registry(small_h5ad: Path) -> DatasetRegistry:
    registry = DatasetRegistry()
    registry.add(small_h5ad)
    return registry


def http_get(server: ServerThread, path: str, headers: dict[str, str] | None = None,
             method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request to a server of ours with the Host it expects and its access token;
    (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    auth = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    try:
        conn.request(method, path, headers={**auth, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
