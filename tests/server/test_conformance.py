"""Our server against the real `cellucid serve` 0.9.5: the same requests, the same answers.

Both servers serve the same file under the same id and name. Every request is sent raw
(``http.client`` with hand-made Host headers) to both, and the answers are compared:
status, reason, the headers a client acts on, JSON documents (version and port aside),
and body bytes. The deliberate differences are listed in docs/protocol.md and are not
requested here (``/`` and the viewer WebSocket).

Every case runs twice: ours as ``serve --no-token`` (the parity mode), and ours with
its access token, sent as ``Authorization: Bearer`` (cellucid's answers for a client
that carries the token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.reference import Pair, assert_same

DATASET_ID, DATASET_NAME = "conf-data", "Conformance data"
STORE = f"/_cellucid/anndata/{DATASET_ID}.h5ad"


@pytest.fixture(scope="module")
def conformance_file(small_h5ad: Path) -> Path:
    return small_h5ad


@pytest.fixture(scope="module", params=["no-token", "with-token"])
def pair(conformance_file: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    servers = Pair(conformance_file, DATASET_ID, DATASET_NAME,
                   token=request.param == "with-token")
    yield servers
    servers.stop()


@pytest.fixture(scope="module", params=["no-token", "with-token"])
def pair_allowing(conformance_file: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    servers = Pair(conformance_file, DATASET_ID, DATASET_NAME,
                   allowed_hosts=["example.org", "10.1.2.3"],
                   token=request.param == "with-token")
    yield servers
    servers.stop()


# --- identity routes ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("route", ["/_cellucid/health", "/_cellucid/info", "/_cellucid/datasets",
                                   "/_cellucid/protocol", "/_cellucid/health?cache=1",
                                   "/_cellucid/%64atasets"])
def test_identity_routes_answer_like_cellucid(pair: Pair, route: str, method: str) -> None:
    assert_same(*pair.both(method, route))


def test_info_names_our_own_port_and_bind_host(pair: Pair) -> None:
    _, ours = pair.both("GET", "/_cellucid/info")
    document = json.loads(ours.body)
    assert document["port"] == pair.ours.port and document["host"] == "127.0.0.1"


# --- store bytes ----------------------------------------------------------------------

RANGES = [
    "bytes=0-0", "bytes=0-99", "bytes=100-", "bytes=-100", "bytes=5-5", "bytes=0-999999999999",
    "bytes=-999999999999", "bytes=00-07", "bytes={last}-", "bytes={last}-{last}",
    # every one of these is refused with 416
    "bytes={size}-", "bytes=9-8", "bytes=-0", "bytes=-", "bytes=0-1,5-6", "bytes= 0-1",
    "items=0-1", "bytes=a-b", "bytes=0x10-", "bytes=123456789012345678901-",
    "BYTES=0-1", "",
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("shape", RANGES)
def test_range_requests_answer_like_cellucid(pair: Pair, conformance_file: Path, shape: str,
                                             method: str) -> None:
    size = conformance_file.stat().st_size
    value = shape.format(size=size, last=size - 1)
    theirs, ours = pair.both(method, STORE, [("Range", value)])
    assert_same(theirs, ours)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_whole_store_answers_like_cellucid(pair: Pair, conformance_file: Path, method: str) -> None:
    theirs, ours = pair.both(method, STORE)
    assert_same(theirs, ours)
    if method == "GET":
        assert ours.body == conformance_file.read_bytes()


def test_two_range_headers_are_refused_like_cellucid(pair: Pair) -> None:
    assert_same(*pair.both("GET", STORE, [("Range", "bytes=0-1"), ("Range", "bytes=2-3")]))


def test_gzip_is_never_applied_to_store_bytes(pair: Pair) -> None:
    theirs, ours = pair.both("GET", STORE, [("Range", "bytes=0-4095"),
                                            ("Accept-Encoding", "gzip, deflate")])
    assert_same(theirs, ours)
    assert ours.header("content-encoding") is None


def _etag(pair: Pair) -> str:
    theirs, ours = pair.both("HEAD", STORE)
    assert ours.header("etag") == theirs.header("etag")  # the same recipe on the same file
    return ours.header("etag")


@pytest.mark.parametrize("condition", ["{etag}", "W/{etag}", "*", '"other", {etag}', '"other"',
                                       "", " {etag} "])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_answers_like_cellucid(pair: Pair, condition: str, method: str) -> None:
    value = condition.replace("{etag}", _etag(pair))
    assert_same(*pair.both(method, STORE, [("If-None-Match", value), ("Range", "bytes=0-9")]))


@pytest.mark.parametrize("condition", ["{etag}", '"stale-tag"', "Thu, 01 Jan 1970 00:00:00 GMT",
                                       "W/{etag}"])
def test_if_range_answers_like_cellucid(pair: Pair, condition: str) -> None:
    value = condition.replace("{etag}", _etag(pair))
    theirs, ours = pair.both("GET", STORE, [("Range", "bytes=10-19"), ("If-Range", value)])
    assert_same(theirs, ours)


def test_store_route_names_the_id_never_the_local_file(pair: Pair, conformance_file: Path) -> None:
    _, ours = pair.both("GET", "/_cellucid/datasets")
    assert conformance_file.name.encode() not in ours.body
    assert str(conformance_file.parent).encode() not in ours.body
    assert_same(*pair.both("GET", f"/_cellucid/anndata/{conformance_file.name}"))


# --- paths that must never reach a file -------------------------------------------------

@pytest.mark.parametrize("path", [
    "/_cellucid/anndata/", "/_cellucid/anndata", f"/_cellucid/anndata/{DATASET_ID}",
    f"{STORE}/", f"{STORE}/X", f"/_cellucid/anndata/{DATASET_ID}.zarr/.zmetadata",
    "/_cellucid/anndata/../../../etc/passwd", "/_cellucid/anndata/%2e%2e/%2e%2e/etc/passwd",
    "/_cellucid/anndata/..%2f..%2fetc%2fpasswd", "/_cellucid/anndata/%2Fetc%2Fpasswd",
    "//etc/passwd", "/../../etc/passwd", "/_cellucid/anndata//etc/passwd",
    "/_cellucid/anndata/small.h5ad", f"/_cellucid/anndata/./{DATASET_ID}.h5ad",
    "/_cellucid/anndata/caf%C3%A9.h5ad", "/_cellucid/anndata/%FF.h5ad",
    "/etc/passwd", "/_cellucid/", "/_cellucid", "/_cellucid/events", "/_cellucid/session_bundle",
    "/points_3d.bin", f"/{DATASET_ID}/points_3d.bin", "/dataset_identity.json",
    "/obs_manifest.json", "/assets/index.js", "/favicon.ico", "/_cellucid/health/",
    "/_cellucid/HEALTH", "/%00", "/_cellucid/anndata/%00", "/caf%C3%A9",
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_and_traversal_paths_answer_like_cellucid(pair: Pair, path: str, method: str) -> None:
    assert_same(*pair.both(method, path))


def test_viewer_channel_without_upgrade_answers_426_like_cellucid(pair: Pair) -> None:
    theirs, ours = pair.both("GET", "/_cellucid/ws")
    assert (ours.status, ours.header("content-type")) == (theirs.status, theirs.header("content-type"))
    assert ours.status == 426


# --- methods, CORS --------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/_cellucid/health", STORE, "/nowhere", "/_cellucid/events"])
def test_post_is_refused_with_405_like_cellucid(pair: Pair, path: str) -> None:
    assert_same(*pair.both("POST", path, [("Content-Type", "application/json")], b'{"a": 1}'))


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"])
def test_other_methods_get_cellucid_501(pair: Pair, method: str) -> None:
    assert_same(*pair.both(method, "/_cellucid/health", [("Origin", "http://localhost:2")], b"x"))


@pytest.mark.parametrize("origin", [None, "http://localhost:3000", "http://127.0.0.1:9",
                                    "https://www.cellucid.com", "https://cellucid.com",
                                    "https://app.cellucid.com", "http://cellucid.com",
                                    "https://evil.example", "null", "file://", "http://localhost",
                                    "https://cellucid.com.evil.example"])
@pytest.mark.parametrize("path", ["/_cellucid/datasets", STORE])
def test_cors_preflight_answers_like_cellucid(pair: Pair, origin: str | None, path: str) -> None:
    headers = [("Access-Control-Request-Method", "GET"),
               ("Access-Control-Request-Headers", "range")]
    if origin is not None:
        headers.append(("Origin", origin))
    assert_same(*pair.both("OPTIONS", path, headers))


@pytest.mark.parametrize("origin", ["http://localhost:5173", "https://evil.example"])
@pytest.mark.parametrize("path", ["/_cellucid/health", STORE, "/nowhere"])
def test_cors_headers_on_reads_match_cellucid(pair: Pair, origin: str, path: str) -> None:
    assert_same(*pair.both("GET", path, [("Origin", origin), ("Range", "bytes=0-15")]))


# --- Host header (DNS rebinding defence) -------------------------------------------------

HOSTS = [
    "127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}",
    "127.0.0.2:{port}", "[0:0:0:0:0:0:0:1]:{port}",
    # refused with 421
    "127.0.0.1", "localhost", "[::1]", "127.0.0.1:0{port}", "127.0.0.1:1{port}",
    "foo.localhost:{port}", "evil.example:{port}", "example.org:{port}", "10.1.2.3:{port}",
    "user@127.0.0.1:{port}", "127.0.0.1:{port}/x", "[::1%1]:{port}", "[::1:{port}",
    "127.0.0.1:", "127.0.0.1:+{port}", "", "localhost.:{port}", "0.0.0.0:{port}",
]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_host_header_is_checked_like_cellucid(pair: Pair, host: str, method: str) -> None:
    assert_same(*pair.both(method, "/_cellucid/health", [("Origin", "http://localhost:1")],
                           host=host))


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("headers", [[], [("Range", "bytes=0-99")]], ids=["whole", "range"])
def test_host_is_checked_on_the_store_like_cellucid(pair: Pair, host: str, headers: list) -> None:
    theirs, ours = pair.both("GET", STORE, headers, host=host)
    assert_same(theirs, ours)


def test_missing_host_header_is_refused_like_cellucid(pair: Pair) -> None:
    theirs, ours = pair.both("GET", "/_cellucid/health", host=None)
    assert_same(theirs, ours)
    assert ours.status == 421


def test_two_host_headers_are_refused_like_cellucid(pair: Pair) -> None:
    theirs, ours = pair.both("GET", "/_cellucid/health", [("Host", "127.0.0.1:{port}")])
    assert_same(theirs, ours)
    assert ours.status == 421


@pytest.mark.parametrize("host", [
    "example.org", "example.org:1", "EXAMPLE.org:{port}", "10.1.2.3", "10.1.2.3:8080",
    "sub.example.org:{port}", "example.org.:{port}", "127.0.0.1:{port}", "localhost:1",
    "evil.example:{port}",
])
def test_allowed_hosts_are_accepted_on_any_port_like_cellucid(pair_allowing: Pair, host: str) -> None:
    assert_same(*pair_allowing.both("GET", "/_cellucid/health", host=host))
