"""The access token on a real server: what needs it, the three ways to give it, the
cookie's shape, and what the routes behind the layer see."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from cellucid_desktop.server.access import (NEEDS_TOKEN, WRONG_TOKEN, read_token_file,
                                            split_token, token_from_text)
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.server.reference import raw_request

STORE = "/_cellucid/anndata/acc.h5ad"
NAVIGATE = [("Sec-Fetch-Mode", "navigate"), ("Accept", "text/html")]
DATA_ROUTES = ["/", "/?dataset=acc", "/viewer/viewer.css", "/_cellucid/info",
               "/_cellucid/datasets", "/_cellucid/protocol", STORE,
               "/api/v1/datasets", "/api/v1/datasets/acc", "/nothing-here"]


def _echo_routes(app: Flask) -> None:
    """A route that reports what reached it (the query string the app sees)."""

    @app.route("/echo", methods=["GET", "POST"])
    def echo():  # noqa: ANN202
        return jsonify(query=request.query_string.decode(), method=request.method)


@pytest.fixture(scope="module")
def server(small_h5ad: Path):
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id="acc", name="Access test")
    with ServerThread(registry, blueprints=[_echo_routes]) as running:
        yield running


def bearer(server: ServerThread) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {server.token}")]


@pytest.mark.parametrize("path", DATA_ROUTES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_route_but_health_needs_the_token(server: ServerThread, path: str,
                                                method: str) -> None:
    refused = raw_request(server.port, method, path)
    assert refused.status == 401 and refused.header("www-authenticate")
    if method == "GET":
        assert refused.body.decode() == NEEDS_TOKEN
    assert raw_request(server.port, method, path, bearer(server)).status in (200, 404)


def test_health_stays_open_and_names_no_dataset(server: ServerThread) -> None:
    health = raw_request(server.port, "GET", "/_cellucid/health")
    assert health.status == 200 and b"acc" not in health.body and b"Access" not in health.body


@pytest.mark.parametrize("given", [
    [("Authorization", "Bearer not-the-token-at-all-0000")],
    [("Authorization", "Basic dXNlcjpwYXNz")],
    [("Cookie", "cellucid-token-{port}=not-the-token-at-all-0000")],
])
def test_a_wrong_token_is_refused_with_its_own_sentence(server: ServerThread, given) -> None:
    answer = raw_request(server.port, "GET", "/_cellucid/datasets", given)
    assert answer.status == 401
    if given[0][0] == "Cookie" or given[0][1].startswith("Bearer"):
        assert answer.body.decode() == WRONG_TOKEN


def test_a_page_load_with_the_token_sets_the_cookie_and_drops_it_from_the_address(
        server: ServerThread) -> None:
    answer = raw_request(server.port, "GET", f"/?dataset=acc&token={server.token}&color=b",
                         NAVIGATE)
    assert answer.status == 302 and answer.header("location") == "/?dataset=acc&color=b"
    cookie = answer.header("set-cookie")
    assert cookie == (f"cellucid-token-{server.port}={server.token}; Path=/; HttpOnly; "
                      "SameSite=Strict")
    kept = [("Cookie", f"cellucid-token-{server.port}={server.token}")]
    page = raw_request(server.port, "GET", "/?dataset=acc&color=b", [*NAVIGATE, *kept])
    assert page.status == 200 and b"<html" in page.body.lower()
    assert raw_request(server.port, "GET", "/_cellucid/datasets", kept).status == 200


def test_the_cookie_is_named_after_the_port_the_browser_used(server: ServerThread) -> None:
    """Every port of 127.0.0.1 shares one cookie jar: another server's cookie (even with
    our value) does not count, so two servers never clobber each other."""
    other_port = [("Cookie", f"cellucid-token-{server.port + 1}={server.token}")]
    assert raw_request(server.port, "GET", "/_cellucid/datasets", other_port).status == 401


def test_a_script_may_put_the_token_in_the_url_and_the_routes_never_see_it(
        server: ServerThread) -> None:
    answer = raw_request(server.port, "GET", f"/echo?a=1&token={server.token}&b=2")
    assert answer.status == 200 and b'"query":"a=1&b=2"' in answer.body.replace(b" ", b"")
    store = raw_request(server.port, "GET", f"{STORE}?token={server.token}",
                        [("Range", "bytes=0-7")])
    assert store.status == 206 and store.body == b"\x89HDF\r\n\x1a\n"


def test_a_page_without_the_token_gets_a_form_that_keeps_its_address(
        server: ServerThread) -> None:
    answer = raw_request(server.port, "GET", "/?dataset=acc&color=cell%20type", NAVIGATE)
    assert answer.status == 401 and answer.header("content-type").startswith("text/html")
    assert b'name="token"' in answer.body
    assert b'<input type="hidden" name="dataset" value="acc">' in answer.body
    assert b'<input type="hidden" name="color" value="cell type">' in answer.body


def test_a_cookie_alone_cannot_change_anything_from_another_origin(
        server: ServerThread) -> None:
    """Every 127.0.0.1 port is the same site: SameSite does not stop a page on another
    local port from posting with our cookie; the Origin check does."""
    cookie = ("Cookie", f"cellucid-token-{server.port}={server.token}")
    for origin in ([], [("Origin", "http://127.0.0.1:1")], [("Origin", "null")]):
        answer = raw_request(server.port, "POST", "/echo", [cookie, *origin], b"{}")
        assert answer.status == 403, origin
    own = raw_request(server.port, "POST", "/echo",
                      [cookie, ("Origin", f"http://127.0.0.1:{server.port}")], b"{}")
    assert own.status == 200
    scripted = raw_request(server.port, "POST", "/echo", bearer(server), b"{}")
    assert scripted.status == 200


def test_a_refused_preflight_never_allows_the_authorization_header(server: ServerThread) -> None:
    answer = raw_request(server.port, "OPTIONS", "/_cellucid/datasets", [
        ("Origin", "http://127.0.0.1:1"), ("Access-Control-Request-Headers", "authorization")])
    assert "authorization" not in (answer.header("access-control-allow-headers") or "").lower()
    assert answer.header("access-control-allow-credentials") is None


def test_no_token_means_no_layer_at_all(small_h5ad: Path) -> None:
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id="acc")
    with ServerThread(registry, token=None) as open_server:
        assert open_server.token is None
        assert raw_request(open_server.port, "GET", "/_cellucid/datasets").status == 200
        assert open_server.url_with_token("/x") == f"{open_server.url}/x"


def test_every_server_gets_its_own_random_token(small_h5ad: Path) -> None:
    tokens = {ServerThread(DatasetRegistry()).token for _ in range(5)}
    assert len(tokens) == 5 and all(len(t) >= 40 for t in tokens)


# --- the token as users hand it over --------------------------------------------------

def test_a_token_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abcdefghijklmnopqrstuvwxyz012345\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_token_file(str(path))
    path.chmod(0o600)
    assert read_token_file(str(path)) == "abcdefghijklmnopqrstuvwxyz012345"


@pytest.mark.parametrize("content, problem", [
    ("", "is empty"), ("short", "not usable"), ("has spaces in the middle ok", "not usable"),
    ("x" * 300, "not usable")])
def test_unusable_token_files_are_refused_with_a_sentence(tmp_path: Path, content: str,
                                                          problem: str) -> None:
    path = tmp_path / "token"
    path.touch(mode=0o600)
    path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        read_token_file(str(path))


def test_a_missing_token_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the token file"):
        read_token_file(str(tmp_path / "nope"))


@pytest.mark.parametrize("pasted", [
    "http://127.0.0.1:8765/?dataset=x&token=abcdefghijklmnop1234",
    "  abcdefghijklmnop1234\n", "?token=abcdefghijklmnop1234"])
def test_a_pasted_viewer_url_or_token_gives_the_token(pasted: str) -> None:
    assert token_from_text(pasted) == "abcdefghijklmnop1234"


def test_pasted_text_without_a_token_is_refused() -> None:
    assert token_from_text("  ") is None
    with pytest.raises(ValueError, match="Viewer URL"):
        token_from_text("http://127.0.0.1:8765/?dataset=x")


def test_cookie_values_never_hold_anything_but_the_token_alphabet() -> None:
    token = ServerThread(DatasetRegistry()).token
    assert token and all(c.isalnum() or c in "-_" for c in token)


def test_a_link_from_another_site_gets_a_page_that_moves_on_with_the_cookie(
        server: ServerThread) -> None:
    answer = raw_request(server.port, "GET", f"/?dataset=acc&token={server.token}",
                         [*NAVIGATE, ("Sec-Fetch-Site", "cross-site")])
    assert answer.status == 200 and answer.header("set-cookie").startswith(
        f"cellucid-token-{server.port}={server.token}; ")
    assert b'location.replace("/?dataset=acc")' in answer.body
    assert server.token.encode() not in answer.body
    assert "script-src 'sha256-" in answer.header("content-security-policy")


def test_split_token_keeps_the_rest_of_the_query_and_returns_the_token() -> None:
    assert split_token("http://127.0.0.1:5/?dataset=a&token=abc&color=x") == \
        ("http://127.0.0.1:5/?dataset=a&color=x", "abc")
    assert split_token("http://127.0.0.1:5/?token=abc") == ("http://127.0.0.1:5/", "abc")
    assert split_token("http://127.0.0.1:5/?dataset=a") == ("http://127.0.0.1:5/?dataset=a", None)
