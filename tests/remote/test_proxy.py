"""The per-connection local proxy against an upstream that records what reaches it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cellucid_desktop.remote.proxy import EVERYTHING, LocalProxy
from tests.server.reference import raw_request


class Upstream(BaseHTTPRequestHandler):
    """Answers every GET with a cookie and the raw request target it received."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Upstream.seen.append((self.path, dict(self.headers)))
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Set-Cookie", "session=upstream; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def proxy() -> Iterator[LocalProxy]:
    Upstream.seen = []
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = upstream.server_address[1]
    local = LocalProxy(port, port, prefixes=EVERYTHING,
                       upstream_token="the-remote-token-0123456789").start()
    yield local
    local.stop()
    upstream.shutdown()
    upstream.server_close()


def auth(proxy: LocalProxy) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {proxy.server.token}")]


def test_the_proxy_wants_its_own_token(proxy: LocalProxy) -> None:
    assert raw_request(proxy.server.port, "GET", "/_cellucid/datasets").status == 401
    assert Upstream.seen == []  # refused before anything went upstream
    assert raw_request(proxy.server.port, "GET", "/_cellucid/datasets", auth(proxy)).status == 200
    assert proxy.view_url("/?dataset=x") == \
        f"{proxy.url}/?dataset=x&token={proxy.server.token}"


def test_upstream_cookies_never_reach_the_browser(proxy: LocalProxy) -> None:
    answer = raw_request(proxy.server.port, "GET", "/anything", auth(proxy))
    assert answer.status == 200 and answer.header("set-cookie") is None


def test_the_remote_gets_its_token_and_never_the_proxys(proxy: LocalProxy) -> None:
    raw_request(proxy.server.port, "GET", f"/a?token={proxy.server.token}&x=1", [
        ("Cookie", f"cellucid-token-{proxy.server.port}={proxy.server.token}")])
    path, headers = Upstream.seen[-1]
    assert path == "/a?x=1"
    assert headers.get("Authorization") == "Bearer the-remote-token-0123456789"
    assert "Cookie" not in headers and proxy.server.token not in str(headers)


@pytest.mark.parametrize("target", ["/a%2541", "/a%41", "/a%2Fb", "/a%20b?q=%25x", "/%E2%82%AC"])
def test_paths_reach_the_remote_exactly_as_sent(proxy: LocalProxy, target: str) -> None:
    """%25 is a literal '%': forwarding must not decode it once more (/a%2541 is not /aA)."""
    answer = raw_request(proxy.server.port, "GET", target, auth(proxy))
    assert answer.status == 200 and answer.body.decode() == target
