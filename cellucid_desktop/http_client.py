"""The app's one HTTP client: every request Cellucid Desktop sends goes through here.

The probe, the tunnel's readiness check, the local proxy, RangeFile, the single-instance
hand-off and the web-app download all use it: an :class:`Endpoint` says *where* a server
is (127.0.0.1:port or a Unix socket), which ``Host`` it expects and which access token to
send (``Authorization: Bearer``), and :class:`Client` talks to it, so a transport, a token
or a timeout is set in one place.

Built on urllib3 (pooled, thread-safe keep-alive connections over the standard
library's ``http.client``). httpx was measured too: on the same loopback server it
took 1.5-3x longer per 1-16 MiB body, which RangeFile and the proxy feel
(docs/benchmarks.md, section ``http-client``). Bodies are never decoded here: what a
server sends (gzip included) is what the caller gets, byte for byte.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError as _Urllib3Error

from cellucid_desktop.hosts import is_loopback_name

__all__ = ["Client", "Endpoint", "InternetClient", "READ_ERRORS", "Reply", "RequestError",
           "Response"]

Response = urllib3.BaseHTTPResponse
DEFAULT_TIMEOUT = 10.0


class RequestError(ConnectionError):
    """No HTTP answer and no OSError to tell why (e.g. the answer was not HTTP).

    Every failure to get an answer raises an OSError: the socket's own when there is
    one (ConnectionRefusedError, TimeoutError, ConnectionResetError, ...), so callers
    can tell "nothing listens" from "closed without answering", else this."""


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens and how to address it.

    ``port``: TCP on 127.0.0.1; or ``socket_path``: a Unix socket. ``host_header`` is the
    ``Host`` to send (default ``127.0.0.1:<port>``; a remote behind a remapping tunnel
    wants its own port there). ``token`` is sent as ``Authorization: Bearer``.
    """

    port: int | None = None
    socket_path: str | None = None
    host_header: str | None = None
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.port is None) == (self.socket_path is None):
            raise ValueError("an Endpoint is a port or a socket path")

    @property
    def host(self) -> str:
        if self.host_header:
            return self.host_header
        return f"127.0.0.1:{self.port}" if self.port is not None else "localhost"

    def naming(self, host_port: int) -> Endpoint:
        """The same endpoint, naming ``127.0.0.1:host_port`` in ``Host``."""
        return replace(self, host_header=f"127.0.0.1:{host_port}")

    def describe(self) -> str:
        return f"local port {self.port}" if self.port is not None else \
            f"socket {self.socket_path}"


@dataclass
class Reply:
    """A whole answer: status, lower-case headers, body, HTTP version (10 or 11)."""

    status: int
    headers: dict[str, str]
    body: bytes
    version: int = 11
    reason: str = ""

    def json(self) -> Any | None:
        """The body as a JSON object, or None if it is not one."""
        if "json" not in self.headers.get("content-type", ""):
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class _UnixConnection(HTTPConnection):
    """urllib3's connection, dialling a Unix socket instead of host:port."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout if isinstance(self.timeout, (int, float)) else None)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _UnixConnection


class Client:
    """Keep-alive connections to one Endpoint (thread-safe; ``maxsize`` kept idle).

    ``request`` returns a :class:`Reply` (whole body, up to ``limit`` bytes) or, with
    ``stream=True``, urllib3's response to read in chunks and ``release_conn()``.
    No answer raises an OSError (the socket's own, else :class:`RequestError`). A kept-
    alive connection the server closed is noticed before reuse, and a GET/HEAD that
    loses its connection mid-answer is sent once more; redirects are returned, never
    followed.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = DEFAULT_TIMEOUT,
                 maxsize: int = 4) -> None:
        self.endpoint = endpoint
        retries = urllib3.Retry(total=1, connect=0, read=1, redirect=False, status=0,
                                other=0, raise_on_redirect=False, raise_on_status=False)
        common = {"maxsize": maxsize, "block": False, "retries": retries,
                  "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
        if endpoint.socket_path is not None:
            self._pool: urllib3.HTTPConnectionPool = _UnixPool(
                "localhost", socket_path=endpoint.socket_path, **common)
        else:
            self._pool = urllib3.HTTPConnectionPool("127.0.0.1", endpoint.port, **common)
        self._headers = {"Host": endpoint.host}
        if endpoint.token:
            self._headers["Authorization"] = f"Bearer {endpoint.token}"

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | None = None, timeout: float | None = None,
                stream: bool = False, limit: int | None = None) -> Any:
        """Send one request (``path`` as sent: already quoted, with its query)."""
        sent = {**self._headers, **(headers or {})}
        try:
            response = self._pool.urlopen(
                method, path, body=body, headers=sent, redirect=False,
                assert_same_host=False, preload_content=False, decode_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout)
                if timeout is not None else urllib3.util.Timeout.DEFAULT_TIMEOUT)
        except (_Urllib3Error, OSError) as exc:
            raise _as_oserror(exc) from exc
        if stream:
            return response
        try:
            data = b"" if method == "HEAD" else response.read(limit, decode_content=False)
        except (_Urllib3Error, OSError) as exc:
            response.close()
            raise _as_oserror(exc) from exc
        if limit is not None:
            response.close()  # the rest of a long body is not wanted: drop the connection
        else:
            response.release_conn()
        return Reply(response.status, {k.lower(): v for k, v in response.headers.items()},
                     data, response.version, response.reason or "")

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post_json(self, path: str, payload: dict[str, Any], *,
                  headers: dict[str, str] | None = None, timeout: float | None = None,
                  ) -> Reply:
        return self.request("POST", path, body=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json", **(headers or {})},
                            timeout=timeout)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InternetClient:
    """GET over the internet (the web-app download): the environment's proxy settings
    apply (``https_proxy``, ``no_proxy``; never for loopback), bodies are streamed,
    and redirects are returned for the caller to check, never followed."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout),
                         "retries": urllib3.Retry(total=0, redirect=False,
                                                  raise_on_redirect=False,
                                                  raise_on_status=False)}
        self._pools: dict[str | None, urllib3.PoolManager] = {}

    def get(self, url: str, headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        proxy = None if is_loopback_name(host) or urllib.request.proxy_bypass(host) \
            else urllib.request.getproxies().get(parts.scheme)
        pool = self._pools.get(proxy)
        if pool is None:
            pool = self._pools[proxy] = urllib3.ProxyManager(proxy, **self._options) \
                if proxy else urllib3.PoolManager(**self._options)
        try:
            # a short body is for the caller to word (it counts the bytes itself)
            return pool.request("GET", url, headers=headers, preload_content=False,
                                decode_content=False, redirect=False,
                                enforce_content_length=False)
        except (_Urllib3Error, OSError) as exc:
            raise _as_oserror(exc) from exc

    def close(self) -> None:
        for pool in self._pools.values():
            pool.clear()


READ_ERRORS = (_Urllib3Error, OSError, http.client.HTTPException)
"""What reading a streamed body can raise when the connection breaks off."""


def _as_oserror(exc: BaseException) -> OSError:
    """The socket error under urllib3's wrappers, else a RequestError naming the cause."""
    seen = exc
    for _depth in range(8):
        if isinstance(seen, OSError) and not isinstance(seen, _Urllib3Error):
            return seen
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        inner = inner or seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    if isinstance(seen, http.client.HTTPException):
        return RequestError(f"not an HTTP answer ({type(seen).__name__})")
    return RequestError(str(seen) or type(seen).__name__)
