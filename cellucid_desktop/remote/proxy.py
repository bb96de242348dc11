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

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from flask import Flask

from cellucid_desktop.http_client import READ_ERRORS, Client, Endpoint, Response
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
    # every 127.0.0.1 port shares one cookie jar in a browser: a remote's cookie would
    # land on the proxy's origin and on every other local server
    "set-cookie",
})
CHUNK = 256 * 1024


class UpstreamLost(ConnectionError):
    """The tunnel dropped in the middle of an answer of unknown length."""


def _target(environ: dict[str, Any]) -> str:
    """The request path as the client sent it, with the query the layers above left
    (the access-token layer takes ``token=`` out).

    The path comes from waitress's ``REQUEST_URI`` (the raw request target): PATH_INFO
    is already percent-decoded, and quoting it again cannot tell ``%2541`` (a literal
    ``%41``) from ``%41`` (an ``A``). Other WSGI servers: PATH_INFO, quoted so ``%``
    stays a literal ``%``.
    """
    raw_target = environ.get("REQUEST_URI", "")
    if raw_target.startswith("/"):
        path = raw_target.partition("?")[0]
    else:
        path = quote(environ.get("PATH_INFO", "/").encode("latin-1"),
                     safe="/:@!$&'()*+,;=-._~")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


class Forwarder:
    """WSGI middleware: GET/HEAD/POST under ``prefixes`` go to the remote, the rest to
    ``app``.

    It sits inside the Host guard and the access-token check, and before the store
    routes, so the remote's ``/_cellucid/anndata/...`` is not answered from the (empty)
    local registry.
    """

    def __init__(self, app: WSGIApp, upstream: Client, prefixes: Iterable[str]) -> None:
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
            resp = self.upstream.request(method, _target(environ), headers=headers, body=body,
                                         stream=True)
        except OSError as exc:
            log.warning("proxy: remote did not answer: %s", exc)
            text = (b"The remote Cellucid server did not answer through the tunnel; "
                    b"check that the tunnel and the server are running")
            start_response("502 Bad Gateway", [("Content-Type", "text/plain"),
                                               ("Content-Length", str(len(text)))])
            return [text]
        start_response(f"{resp.status} {resp.reason}",
                       [(name, value) for name, value in resp.headers.items()
                        if name.lower() not in DROPPED_RESPONSE_HEADERS])
        return _stream(resp)


def _stream(resp: Response) -> Iterator[bytes]:
    """The body, chunk by chunk. If the tunnel drops midway the client must see a broken
    answer, not a short one taken for whole: with a Content-Length, ending early makes
    waitress close the connection; without one, only an exception stops waitress from
    ending the chunked body normally. The connection goes back to the pool only after a
    whole body."""
    finished = False
    try:
        while chunk := resp.read(CHUNK, decode_content=False):
            yield chunk
        finished = True
    except READ_ERRORS as exc:
        log.warning("proxy: the remote stopped answering mid-body: %s", exc)
        if resp.headers.get("Content-Length") is None:
            raise UpstreamLost(str(exc)) from None
    finally:
        resp.release_conn() if finished else resp.close()


def _json_error(start_response: Callable[..., Any], status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class LocalProxy:
    """One proxy per connection: ``start()``, ``url``, ``view_url(path)``, ``stop()``.

    ``prefixes`` are forwarded (``EVERYTHING`` when the remote serves its own UI and only
    the Host check is in the way); ``blueprints`` add what is served locally, e.g. the
    built-in viewer and a data API over a ``registry`` of remote files, or the cached
    official web app (``ui="webapp"``). The proxy has its own access token (other users
    of this computer reach 127.0.0.1 too); ``upstream_token`` is the remote's, sent
    upstream as ``Authorization: Bearer`` and never shown to the page.
    """

    def __init__(self, upstream_port: int, host_port: int, *,
                 upstream_token: str | None = None,
                 prefixes: Iterable[str] = CELLUCID_PREFIXES,
                 blueprints: Iterable[Callable[[Flask], None]] = (),
                 registry: DatasetRegistry | None = None, ui: str = "builtin") -> None:
        self.upstream = Client(Endpoint(port=upstream_port, token=upstream_token)
                               .naming(host_port), timeout=120.0, maxsize=8)
        forward = tuple(prefixes)
        self.server = ServerThread(registry or DatasetRegistry(), blueprints=blueprints, ui=ui,
                                   front=lambda app: Forwarder(app, self.upstream, forward))

    @property
    def url(self) -> str:
        return self.server.url

    def view_url(self, path: str) -> str:
        """The address a window opens first (it carries the proxy's token)."""
        return self.server.url_with_token(path)

    def start(self) -> LocalProxy:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.upstream.close()
