"""Host and Origin rules, applied to every request before any route runs.

The rules are cellucid 0.9.5's, so a client written for `cellucid serve` sees the same
answers from us:

* **Host (DNS rebinding).** A page on any origin can re-point its own DNS name at
  127.0.0.1; the browser then treats our server as same-origin. Checking ``Host`` is the
  defence: it must be a loopback IP or ``localhost`` *on the bound port*, or a name the
  operator allowed (on any port). Everything else gets 421 before routing. The check is
  skipped only for a deliberate non-loopback IP bind without allowed hosts, as cellucid
  does (the CLI warns about such binds).
* **CORS.** ``Access-Control-Allow-Origin`` echoes only http(s) origins on
  ``localhost``/``127.0.0.1`` and https ``cellucid.com`` and its subdomains.
"""

from __future__ import annotations

import html
import http.server
import ipaddress
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from cellucid_desktop.hosts import is_loopback_name

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

CORS_HEADERS = [
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Range"),
    (
        "Access-Control-Expose-Headers",
        "Accept-Ranges, Content-Encoding, Content-Length, Content-Range, ETag",
    ),
]
# Methods routed to the app; OPTIONS is answered here, anything else gets 501.
ANSWERED_METHODS = frozenset({"GET", "HEAD", "POST"})
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _parse_port(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def parse_host_header(value: str) -> tuple[str, int | None] | None:
    """Split ``Host`` into (host, port); None for anything malformed."""
    if not value or not value.isascii() or "@" in value or "/" in value:
        return None
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in value):
        return None
    if value.startswith("["):
        close = value.find("]")
        host, rest = value[1:close], value[close + 1 :]
        if close < 0 or "%" in host:
            return None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        if "[" in value or "]" in value:
            return None
        host, sep, port_text = value.partition(":")
        if not host:
            return None
        if not sep:
            return host, None
    port = _parse_port(port_text)
    return (host, port) if port is not None else None


def normalize_host_name(host: str) -> str | None:
    """The comparison form of a host: compressed IP, or a lower-case LDH DNS name."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    lowered = host.lower()
    if not lowered or len(lowered) > 253:
        return None
    for label in lowered.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return None
        if not _LDH.issuperset(label):
            return None
    return lowered


def validate_allowed_host(entry: str) -> str:
    """Check an ``--allowed-host`` value: a bare DNS name or IP, nothing else."""
    text = entry.strip()
    if text.startswith("[") or "%" in text or text.endswith(".") or not text.isascii():
        raise ValueError(f"--allowed-host {entry!r}: give a bare host name or IP address")
    normalized = normalize_host_name(text)
    if normalized is None:
        raise ValueError(
            f"--allowed-host {entry!r}: give a bare host name or IP address "
            "(no scheme, port, path or wildcard; write non-ASCII names in Punycode)"
        )
    return normalized


def host_check_enforced(bind_host: str, allowed: frozenset[str]) -> bool:
    """cellucid's rule: enforced unless a non-loopback IP was bound with no allow-list."""
    if allowed:
        return True
    try:
        return ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        return True


def host_is_authorized(header_values: list[str], port: int | None, bind_host: str,
                       allowed: frozenset[str]) -> bool:
    """Whether a request's ``Host`` names this server (see the module docstring).

    ``port`` None: the server listens on a Unix socket, reached through forwards on any
    local port, so a loopback name on any port names it."""
    if not host_check_enforced(bind_host, allowed):
        return True
    if len(header_values) != 1:
        return False
    parsed = parse_host_header(header_values[0])
    if parsed is None:
        return False
    host, host_port = parsed
    if allowed and normalize_host_name(host) in allowed:
        return True
    return (port is None or (host_port or 80) == port) and is_loopback_name(host)


def allowed_origin(origin: str | None) -> str | None:
    """The Origin to echo in ``Access-Control-Allow-Origin``, or None."""
    if not origin:
        return None
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if host in ("localhost", "127.0.0.1"):
        return origin
    if parts.scheme == "https" and (host == "cellucid.com" or host.endswith(".cellucid.com")):
        return origin
    return None


class HostGuard:
    """WSGI middleware: 421 for foreign hosts, CORS and no-cache on every answer.

    ``port`` is a callable because a server bound to port 0 learns its port only
    after binding (it returns None for a Unix socket).
    """

    def __init__(self, app: WSGIApp, *, bind_host: str, port: Callable[[], int | None],
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.bind_host = bind_host
        self.port = port
        self.allowed = frozenset(validate_allowed_host(h) for h in allowed_hosts)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = allowed_origin(environ.get("HTTP_ORIGIN"))
        extra = list(CORS_HEADERS)
        if origin:
            extra[:0] = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        hosts = _host_values(environ)
        if not host_is_authorized(hosts, self.port(), self.bind_host, self.allowed):
            log.warning("Refused a request whose Host header does not name this server: %r", hosts)
            body = b"Host header does not name this server"
            start_response("421 Misdirected Request", [
                ("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                *extra, ("Cache-Control", "no-cache")])
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
        method = environ.get("REQUEST_METHOD", "")
        if method == "OPTIONS":
            start_response("204 No Content", [*extra, ("Cache-Control", "no-cache")])
            return []
        if method not in ANSWERED_METHODS:
            return _unsupported_method(method, extra, start_response)

        def guarded_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            added = [h for h in extra if h[0].lower() not in names]
            if "cache-control" not in names:
                added.append(("Cache-Control", "no-cache"))
            return start_response(standard_status(status), headers + added, exc_info)

        return self.app(environ, guarded_start)


def _unsupported_method(method: str, extra: list[tuple[str, str]],
                        start_response: Callable[..., Any]) -> list[bytes]:
    """501 with the standard library's HTML error page, as cellucid's base handler sends
    for a method it has no handler for (PUT, DELETE, ...)."""
    message = f"Unsupported method ({method!r})"
    body = (http.server.DEFAULT_ERROR_MESSAGE % {
        "code": 501, "message": html.escape(message, quote=False),
        "explain": http.server.BaseHTTPRequestHandler.responses[HTTPStatus.NOT_IMPLEMENTED][1],
    }).encode("utf-8", "replace")
    start_response(f"501 {message}", [
        ("Content-Type", http.server.DEFAULT_ERROR_CONTENT_TYPE),
        ("Content-Length", str(len(body))), *extra, ("Cache-Control", "no-cache")])
    return [body]


def standard_status(status: str) -> str:
    """The status line with the RFC reason phrase ("206 Partial Content"), as cellucid
    sends it; Werkzeug would write "206 PARTIAL CONTENT"."""
    code = status.partition(" ")[0]
    try:
        return f"{code} {HTTPStatus(int(code)).phrase}"
    except ValueError:
        return status


def _host_values(environ: dict[str, Any]) -> list[str]:
    """Every Host header the client sent (waitress folds repeats into one, comma-joined)."""
    value = environ.get("HTTP_HOST")
    if value is None:
        return []
    return [v.strip() for v in value.split(",")] if "," in value else [value]
