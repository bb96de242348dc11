"""Our server alone: store edge cases cellucid cannot be started on, and the guard on
every route (including routes other layers add)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
from pathlib import Path

import pytest
from flask import Flask

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.server.reference import raw_request


@pytest.fixture()
def served_copy(small_h5ad: Path, tmp_path: Path):
    """A private copy of the small dataset, served; tests may change the file."""
    path = tmp_path / "copy.h5ad"
    shutil.copy(small_h5ad, path)
    registry = DatasetRegistry()
    registry.add(path, dataset_id="copy")
    with ServerThread(registry, token=None) as server:  # store rules; tokens: test_access
        yield server, path


STORE = "/_cellucid/anndata/copy.h5ad"


def test_large_body_arrives_whole_through_sendfile(served_copy) -> None:
    server, path = served_copy
    with path.open("ab") as fh:  # well past any socket buffer, so sends are partial
        fh.write(os.urandom(24 << 20))
    answer = raw_request(server.port, "GET", STORE)
    assert answer.status == 200 and answer.body == path.read_bytes()


def test_many_ranges_on_one_kept_alive_connection(served_copy) -> None:
    server, path = served_copy
    data = path.read_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for start in range(0, len(data) - 70_000, len(data) // 40):
            conn.request("GET", STORE, headers={"Range": f"bytes={start}-{start + 65_535}"})
            response = conn.getresponse()
            assert response.status == 206
            assert response.read() == data[start:start + 65_536]
    finally:
        conn.close()


def test_rewritten_file_gets_a_new_etag_and_stale_if_range_gets_everything(served_copy) -> None:
    server, path = served_copy
    old_tag = raw_request(server.port, "HEAD", STORE).header("etag")
    path.write_bytes(path.read_bytes()[:-1000])
    fresh = raw_request(server.port, "HEAD", STORE)
    assert fresh.header("etag") != old_tag
    answer = raw_request(server.port, "GET", STORE, [("Range", "bytes=0-9"), ("If-Range", old_tag)])
    assert answer.status == 200 and answer.body == path.read_bytes()
    stale = raw_request(server.port, "GET", STORE, [("If-None-Match", old_tag)])
    assert stale.status == 200


def test_emptied_file_answers_empty_and_refuses_every_range(served_copy) -> None:
    server, path = served_copy
    path.write_bytes(b"")
    whole = raw_request(server.port, "GET", STORE)
    assert (whole.status, whole.header("content-length"), whole.body) == (200, "0", b"")
    for value in ("bytes=0-0", "bytes=-1", "bytes=0-"):
        refused = raw_request(server.port, "GET", STORE, [("Range", value)])
        assert (refused.status, refused.header("content-range")) == (416, "bytes */0")


def test_deleted_file_is_no_longer_served(served_copy) -> None:
    server, path = served_copy
    path.unlink()
    answer = raw_request(server.port, "GET", STORE)
    assert answer.status == 404 and str(path.parent).encode() not in answer.body


@pytest.mark.parametrize("route", [
    "/_cellucid/anndata/copy.h5ad/../../../../etc/passwd", "/_cellucid/anndata/..%2F..%2Fetc%2Fpasswd",
    "/_cellucid/anndata/%2e%2e%2f%2e%2e%2fcopy.h5ad", "/_cellucid/anndata//{parent}/copy.h5ad",
    "/_cellucid/anndata/{parent}/copy.h5ad", "/{parent}/copy.h5ad", "/_cellucid/anndata/link.h5ad",
    "/_cellucid/anndata/copy.h5ad%00", "/_cellucid/anndata/copy.H5AD", "/_cellucid/anndata/",
    "/{parent}/", "/_cellucid/anndata/%2Fetc%2Fpasswd", "/_cellucid/anndata/\\etc\\passwd",
])
def test_no_path_outside_a_registered_dataset_is_served(served_copy, route: str) -> None:
    server, path = served_copy
    (path.parent / "link.h5ad").symlink_to("/etc/passwd")
    answer = raw_request(server.port, "GET", route.format(parent=str(path.parent).lstrip("/")))
    assert answer.status == 404
    assert b"root:" not in answer.body and b"HDF" not in answer.body
    assert answer.header("content-type") == "text/plain"  # never a directory listing


def test_foreign_host_is_refused_on_routes_other_layers_add(small_h5ad: Path) -> None:
    def extra_routes(app: Flask) -> None:
        app.add_url_rule("/extra-route", "extra", lambda: "secret")

    registry = DatasetRegistry()
    registry.add(small_h5ad)
    with ServerThread(registry, blueprints=[extra_routes], token=None) as server:
        assert raw_request(server.port, "GET", "/extra-route").body == b"secret"
        for host in ("evil.example:{port}", "attacker.localhost:{port}", "127.0.0.1:1"):
            refused = raw_request(server.port, "GET", "/extra-route", host=host)
            assert refused.status == 421 and b"secret" not in refused.body


def test_explicit_non_loopback_bind_skips_the_host_check_like_cellucid(small_h5ad: Path) -> None:
    registry = DatasetRegistry()
    registry.add(small_h5ad)
    with ServerThread(registry, host="0.0.0.0", token=None) as server:
        answer = raw_request(server.port, "GET", "/_cellucid/info", host="node42.cluster:{port}")
        assert answer.status == 200 and json.loads(answer.body)["host"] == "0.0.0.0"
    with ServerThread(registry, host="0.0.0.0", allowed_hosts=["node42.cluster"],
                      token=None) as server:
        assert raw_request(server.port, "GET", "/_cellucid/info", host="node42.cluster").status == 200
        assert raw_request(server.port, "GET", "/_cellucid/info", host="other.cluster:{port}").status == 421


@pytest.mark.parametrize("entry", ["*.example.org", "http://x.org", "x.org:80", "[::1]", "", "ex ample"])
def test_malformed_allowed_host_is_refused_at_start(small_h5ad: Path, entry: str) -> None:
    with pytest.raises(ValueError):
        ServerThread(DatasetRegistry(), allowed_hosts=[entry])
