"""A good build is downloaded, verified, cached and served from its own origin; every
kind of bad build is refused and the previously cached build keeps being served."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.webapp_assets import start_webapp_server, webapp_viewer_url
from cellucid_desktop.server.webapp_cache import WebAppCache
from cellucid_desktop.webapp_source import WebAppError
from tests.helpers import free_port
from tests.webapp.conftest import http_get
from tests.webapp.source import (BuildSource, Reply, inventory_of, make_build, publish,
                                 set_inventory)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of a generation with its SHA-256, to prove it did not change."""
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_good_build_is_cached_and_served_with_inventory_content_types(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry) -> None:
    build = cache.fetch()
    assert build.build_id == "build-1"
    assert build.directory.parent == cache.root
    server = start_webapp_server(registry, cache)
    try:
        assert webapp_viewer_url(server) == f"{server.url}/?anndata=true&token={server.token}"
        for path, published in [("/", "index.html"), ("/index.html", "index.html"),
                                ("/assets/app.js", "assets/app.js"),
                                ("/assets/app.css", "assets/app.css")]:
            status, headers, body = http_get(server, path)
            assert status == 200, path
            assert body == source.routes[published].body
            assert headers["Content-Type"] == source.routes[published].content_type
        status, headers, body = http_get(server, "/?anndata=true")
        assert (status, body) == (200, source.routes["index.html"].body)
        status, _, body = http_get(server, "/assets/app.js", method="HEAD")
        assert (status, body) == (200, b"")
        for hidden in ("/cellucid-web-assets.json", "/assets/other.js", "/state.json",
                       "/../state.json", "/" + build.directory.name + "/index.html"):
            assert http_get(server, hidden)[0] == 404, hidden
        status, _, body = http_get(server, "/_cellucid/health")
        assert status == 200 and b'"status": "ok"' in body
    finally:
        server.stop()


def _wrong_hash(routes: dict[str, Reply]) -> None:
    body = routes["assets/app.js"].body
    routes["assets/app.js"].body = body[:-2] + b"X\n"  # same size, other bytes


def _wrong_size(routes: dict[str, Reply]) -> None:
    routes["assets/app.js"].content_length = len(routes["assets/app.js"].body) + 5


def _truncated(routes: dict[str, Reply]) -> None:
    routes["assets/app.js"].send_bytes = 40


def _wrong_content_type(routes: dict[str, Reply]) -> None:
    routes["assets/app.js"].content_type = "text/html; charset=utf-8"


def _wrong_inventory_content_type(routes: dict[str, Reply]) -> None:
    routes["cellucid-web-assets.json"].content_type = "application/json"


def _no_build_meta(routes: dict[str, Reply]) -> None:
    routes.clear()
    routes.update(make_build("build-2", index_build_id=None))


def _other_build_id(routes: dict[str, Reply]) -> None:
    routes.clear()
    routes.update(make_build("build-2", index_build_id="build-3"))


def _path_traversal(routes: dict[str, Reply]) -> None:
    document = inventory_of(routes)
    document["assets"].insert(0, {"path": "../x", "sha256": "0" * 64, "bytes": 1,
                                  "content_type": "text/plain"})
    set_inventory(routes, document)
    routes["../x"] = Reply(b"x", "text/plain")


def _undeclared_extra_bytes_in_inventory(routes: dict[str, Reply]) -> None:
    document = inventory_of(routes)
    document["assets"][0]["bytes"] += 1  # the inventory lies about a size
    set_inventory(routes, document)


Fault = Callable[[dict[str, Reply]], None]
# fault -> (how the source misbehaves, what the refusal must name)
FAULTS: dict[str, tuple[Fault, str]] = {
    "wrong hash": (_wrong_hash, "failed its SHA-256 check"),
    "content-length mismatch": (_wrong_size, "the inventory says"),
    "truncated download": (_truncated, "was 40 bytes"),
    "wrong asset content type": (_wrong_content_type, "was served as 'text/html"),
    "wrong inventory content type": (_wrong_inventory_content_type,
                                     "inventory was served as 'application/json'"),
    "missing build-id meta": (_no_build_meta, "exactly one <meta"),
    "mismatching build id": (_other_build_id, "names another build"),
    "path traversal in inventory": (_path_traversal, "unsafe asset path '../x'"),
    "inventory size differs from file": (_undeclared_extra_bytes_in_inventory,
                                         "the inventory says"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_bad_build_is_refused_and_the_cached_build_stays_served(
        fault: str, source: BuildSource, cache: WebAppCache,
        registry: DatasetRegistry) -> None:
    good = cache.fetch()
    before = snapshot(good.directory)
    server = start_webapp_server(registry, cache)
    try:
        first = {p: http_get(server, p)[2] for p in ("/", "/assets/app.js")}
        new = make_build("build-2", marker="two")
        break_build, reason = FAULTS[fault]
        break_build(new)
        source.routes = new
        with pytest.raises(WebAppError) as refused:
            cache.fetch()
        message = str(refused.value)
        assert reason in message and message.endswith("stays in use.")
        assert cache.status().state == "failed" and cache.status().message == message
        assert cache.current() == good
        assert snapshot(good.directory) == before
        assert sorted(p.name for p in cache.root.iterdir()) == \
            [".lock", good.directory.name, "state.json"]
        assert {p: http_get(server, p)[2] for p in ("/", "/assets/app.js")} == first
        assert not (cache.root.parent / "x").exists()
    finally:
        server.stop()


def test_offline_source_is_refused_and_the_cached_build_stays_served(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry) -> None:
    good = cache.fetch()
    before = snapshot(good.directory)
    source.stop()
    with pytest.raises(WebAppError, match="Could not reach the Cellucid web app"):
        cache.fetch()
    assert cache.current() == good and snapshot(good.directory) == before
    server = start_webapp_server(registry, cache)
    try:
        assert http_get(server, "/")[2] == source.routes["index.html"].body
    finally:
        server.stop()
    source.start()  # the fixture stops it again


def test_offline_with_nothing_cached_says_what_to_do(tmp_path: Path,
                                                     registry: DatasetRegistry) -> None:
    cache = WebAppCache(tmp_path / "webapp", source_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(WebAppError) as refused:
        cache.ensure()
    assert "check the internet connection" in str(refused.value)
    assert cache.current() is None
    with pytest.raises(WebAppError, match="not downloaded yet"):
        start_webapp_server(registry, cache)


def test_new_build_replaces_the_old_generation_and_reuses_unchanged_files(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry) -> None:
    old = cache.fetch()
    server = start_webapp_server(registry, cache)
    try:
        assert b"one" in http_get(server, "/")[2]
        source.routes = make_build("build-2", marker="two")
        source.requests.clear()
        new = cache.fetch()
        assert new.build_id == "build-2" and new.directory != old.directory
        assert not old.directory.exists()
        assert "assets/app.css" not in source.requests  # same SHA-256: copied locally
        assert b"two" in http_get(server, "/")[2]
        assert http_get(server, "/assets/app.js")[2] == source.routes["assets/app.js"].body
    finally:
        server.stop()


def test_unchanged_build_is_not_downloaded_again(source: BuildSource,
                                                 cache: WebAppCache) -> None:
    first = cache.fetch()
    source.requests.clear()
    second = cache.fetch()
    assert source.requests == ["cellucid-web-assets.json"]
    assert second.directory == first.directory and second.checked_at >= first.checked_at


def test_tampered_cache_file_is_not_served(source: BuildSource, cache: WebAppCache,
                                           registry: DatasetRegistry) -> None:
    build = cache.fetch()
    server = start_webapp_server(registry, cache)
    try:
        assert http_get(server, "/assets/app.js")[0] == 200
        target = build.directory / "assets" / "app.js"
        target.write_bytes(target.read_bytes().replace(b"fetch", b"FETCH"))
        status, _, body = http_get(server, "/assets/app.js")
        assert status == 503 and b"damaged" in body
        assert cache.cached_build() is None  # and ensure() would fetch it again
    finally:
        server.stop()


def test_webapp_origin_can_publish_a_single_dataset(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry,
        tmp_path: Path) -> None:
    from cellucid_desktop.data.synthetic import make_synthetic
    second = registry.add(make_synthetic(tmp_path / "b.h5ad", 200, 30, seed=3,
                                         dataset_id="second", name="Second"))
    cache.fetch()
    server = start_webapp_server(registry, cache, dataset_id=second.id)
    try:
        status, _, body = http_get(server, "/_cellucid/datasets")
        assert status == 200 and body.count(b'"id"') == 1 and b'"second"' in body
        status, headers, head = http_get(server, "/_cellucid/anndata/second.h5ad",
                                         {"Range": "bytes=0-7"})
        assert status == 206 and head == b"\x89HDF\r\n\x1a\n"
    finally:
        server.stop()


def test_inventory_declaring_an_empty_file_and_nested_folders_is_served(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry) -> None:
    files = {"index.html": (make_build("b")["index.html"].body,
                            "text/html; charset=utf-8"),
             "assets/fonts/empty.woff2": (b"", "font/woff2"),
             "favicon.ico": (b"\x00\x00\x01\x00", "image/x-icon")}
    source.routes = publish("b", files)
    cache.fetch()
    server = start_webapp_server(registry, cache)
    try:
        assert http_get(server, "/assets/fonts/empty.woff2")[:3:2] == (200, b"")
        status, headers, body = http_get(server, "/favicon.ico")
        assert (status, headers["Content-Type"], body) == (200, "image/x-icon",
                                                           b"\x00\x00\x01\x00")
    finally:
        server.stop()


@pytest.mark.parametrize("fault", [None, *FAULTS], ids=["good build", *FAULTS])
def test_cellucid_095_judges_the_test_builds_as_we_do(fault: str | None, source: BuildSource,
                                                      tmp_path: Path) -> None:
    """The reference: cellucid's own web cache accepts the good test build and refuses
    every faulty one, so the stand-in source publishes what www.cellucid.com does."""
    from cellucid.web_cache import ensure_web_ui_cached
    new = make_build("build-2", marker="two")
    if fault is not None:
        FAULTS[fault][0](new)
    source.routes = new
    ours = WebAppCache(tmp_path / "ours", source_url=source.url, timeout=10)
    if fault is None:
        summary = ensure_web_ui_cached(cache_dir=tmp_path / "theirs", source_url=source.url,
                                       show_progress=False, timeout=10)
        assert summary.build_id == ours.fetch().build_id == "build-2"
        return
    with pytest.raises(Exception):
        ensure_web_ui_cached(cache_dir=tmp_path / "theirs", source_url=source.url,
                             show_progress=False, timeout=10)
    with pytest.raises(WebAppError):
        ours.fetch()


def test_builtin_viewer_stays_on_the_main_origin_only(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry) -> None:
    from cellucid_desktop.server.runner import ServerThread
    cache.fetch()
    webapp = start_webapp_server(registry, cache)
    main = ServerThread(registry).start()
    try:
        builtin_page = http_get(main, "/")[2]
        assert http_get(main, "/viewer/viewer.css")[0] == 200
        assert http_get(webapp, "/viewer/viewer.css")[0] == 404
        assert http_get(webapp, "/")[2] == source.routes["index.html"].body != builtin_page
    finally:
        webapp.stop()
        main.stop()


def test_redirects_are_followed_only_to_https_or_loopback(source: BuildSource,
                                                          cache: WebAppCache) -> None:
    routes = make_build("moved")
    routes["v2/cellucid-web-assets.json"] = routes["cellucid-web-assets.json"]
    routes["cellucid-web-assets.json"] = Reply(b"", "text/plain",
                                               redirect=f"{source.url}/v2/cellucid-web-assets.json")
    source.routes = routes
    assert cache.fetch().build_id == "moved"
    routes["cellucid-web-assets.json"] = Reply(
        b"", "text/plain", redirect="http://example.invalid/cellucid-web-assets.json")
    with pytest.raises(WebAppError, match="redirected to http://example.invalid/.* not https"):
        cache.fetch()
