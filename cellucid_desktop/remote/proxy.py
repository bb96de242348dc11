"""A local origin in front of one remote server, for when the window cannot load it
directly: cellucid 0.9.5 refuses a remapped local port (421), or it runs without a UI
(503 at ``/``).

The proxy is our own ``ServerThread`` on a free port with one extra layer: requests
whose path starts with a forwarded prefix go to the tunnel, naming the remote's port in
``Host``, with bodies streamed both ways and the caching/range headers passed through
(Range, If-Range, If-None-Match in; Content-Range, ETag, Accept-Ranges out), and the data
API's POSTs with their JSON bodies (the origin rule is checked here, since the remote
sees the proxy, not the page). Everything else is answered by the local app (the viewer
UI, or a local data API).
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
from http import HTTPStatus
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from flask import Flask

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from cellucid_desktop.server.same_origin import post_refusal
from cellucid_desktop.server.security import WSGIApp

log = logging.getLogger(__name__)

CELLUCID_PREFIXES = ("/_cellucid/",)
EVERYTHING = ("/",)

PASSED_REQUEST_HEADERS = ("Range", "If-Range", "If-None-Match", "If-Modified-Since",
                          "Accept", "Accept-Encoding", "Accept-Language", "User-Agent")
DROPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "transfer-encoding", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "upgrade", "server", "date",
    "access-control-allow-origin", "access-control-allow-methods",
    "access-control-allow-headers", "access-control-expose-headers", "vary",
})
CHUNK = 256 * 1024


class UpstreamLost(ConnectionError):
    """The tunnel dropped in the middle of an answer of unknown length."""


class Upstream:
    """Keep-alive connections to the tunnel's local end, reused across requests."""

    def __init__(self, port: int, host_port: int, timeout: float = 120.0) -> None:
        self.port = port
        self.host = f"127.0.0.1:{host_port}"
        self.timeout = timeout
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    def open(self, method: str, target: str, headers: dict[str, str], body: bytes | None = None,
             ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request; a reused connection the remote closed is retried on a new one."""
        for attempt in (1, 2):
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn, attempt = http.client.HTTPConnection("127.0.0.1", self.port,
                                                           timeout=self.timeout), 2
            try:
                conn.request(method, target, body=body, headers={**headers, "Host": self.host})
                return conn, conn.getresponse()
            except (OSError, http.client.HTTPException):
                conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def release(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        if resp.will_close or not resp.isclosed():
            conn.close()
        else:
            self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _target(environ: dict[str, Any]) -> str:
    """The request path and query as the client sent them (re-quoted WSGI PATH_INFO)."""
    raw = environ.get("PATH_INFO", "/").encode("latin-1")
    path = quote(raw, safe="/:@!$&'()*+,;=-._~%")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


class Forwarder:
    """WSGI middleware: GET/HEAD/POST under ``prefixes`` go to the remote, the rest to ``app``.

    It sits inside the Host guard and before the store routes, so the remote's
    ``/_cellucid/anndata/...`` is not answered from the (empty) local registry.
    """

    def __init__(self, app: WSGIApp, upstream: Upstream, prefixes: Iterable[str]) -> None:
        self.app = app
        self.upstream = upstream
        self.prefixes = tuple(prefixes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD", "POST") or not path.startswith(self.prefixes):
            return self.app(environ, start_response)
        headers = {}
        for name in PASSED_REQUEST_HEADERS:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            if value is not None:
                headers[name] = value
        body = None
        if method == "POST":  # the remote's data API writes (see server/same_origin.py)
            length = int(environ.get("CONTENT_LENGTH") or 0)
            refusal = post_refusal(method, environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST"),
                                   environ.get("CONTENT_TYPE", ""), length > 0)
            if refusal is not None:  # checked here: the remote sees no Origin of ours
                return _json_error(start_response, *refusal)
            body = environ["wsgi.input"].read(length) if length else b""
            if length:
                headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        try:
            conn, resp = self.upstream.open(method, _target(environ), headers, body)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("proxy: remote did not answer: %s", exc)
            text = (b"The remote Cellucid server did not answer through the tunnel; "
                    b"check that the tunnel and the server are running")
            start_response("502 Bad Gateway", [("Content-Type", "text/plain"),
                                               ("Content-Length", str(len(text)))])
            return [text]
        start_response(f"{resp.status} {resp.reason}",
                       [(name, value) for name, value in resp.getheaders()
                        if name.lower() not in DROPPED_RESPONSE_HEADERS])
        return self._stream(conn, resp)

    def _stream(self, conn: http.client.HTTPConnection,
                resp: http.client.HTTPResponse) -> Iterator[bytes]:
        """The body, chunk by chunk. If the tunnel drops midway the client must see a
        broken answer, not a short one taken for whole: with a Content-Length, ending
        early makes waitress close the connection; without one, only an exception stops
        waitress from ending the chunked body normally."""
        try:
            while chunk := resp.read(CHUNK):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            log.warning("proxy: the remote stopped answering mid-body: %s", exc)
            if resp.getheader("Content-Length") is None:
                raise UpstreamLost(str(exc)) from None
        finally:
            self.upstream.release(conn, resp)


def _json_error(start_response: Callable[..., Any], status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class LocalProxy:
    """One proxy per connection: ``start()``, ``url``, ``stop()``.

    ``prefixes`` are forwarded (``EVERYTHING`` when the remote serves its own UI and only
    the Host check is in the way); ``blueprints`` add what is served locally, e.g. the
    built-in viewer and a data API over a ``registry`` of remote files, or the cached
    official web app (``ui="webapp"``).
    """

    def __init__(self, upstream_port: int, host_port: int, *,
                 prefixes: Iterable[str] = CELLUCID_PREFIXES,
                 blueprints: Iterable[Callable[[Flask], None]] = (),
                 registry: DatasetRegistry | None = None, ui: str = "builtin") -> None:
        self.upstream = Upstream(upstream_port, host_port)
        self.server = ServerThread(registry or DatasetRegistry(), blueprints=blueprints, ui=ui)
        guard = self.server.app  # HostGuard -> store routes -> Flask; forward first
        guard.app = Forwarder(guard.app, self.upstream, prefixes)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> LocalProxy:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.upstream.close()
