"""The access token: one WSGI layer that lets a request through only if it carries
the server's token (docs/security.md).

127.0.0.1 is private on a laptop, but on a login node, a lab server or a shared
workstation every logged-in user can reach it. So every server we start has a random
token (or one read from a file the user names) and every route needs it, except
``/_cellucid/health``, which names no data, so probes and load balancers still work.

A request proves the token in one of three ways:

* ``?token=<token>`` in the URL. On a page load (a navigation) the answer is a redirect
  to the same address without the token, setting an HttpOnly, SameSite=Strict cookie,
  so the address bar and the history never keep the token (a link followed from
  another site gets a page that moves on by itself instead: browsers hold back a Strict
  cookie on a redirect that ends a cross-site chain). Other requests are simply served
  (``curl 'http://127.0.0.1:8765/_cellucid/datasets?token=...'`` works).
* the cookie, named after the port the browser used (``cellucid-token-8765``): a
  browser keeps one cookie jar for every port of 127.0.0.1, so two servers must not
  share a cookie name.
* ``Authorization: Bearer <token>``, for scripts and our own clients.

Tokens are compared in constant time. The token is taken out of the query string
before the request reaches the routes (nothing downstream, e.g. the local proxy,
forwards it). A request authenticated only by the cookie that changes something (any
method but GET/HEAD) must also carry our own ``Origin``: every port of 127.0.0.1 is
the same *site* to a browser, so SameSite alone does not stop a page on another local
port from posting with our cookie. Without the token: 401 (for a browser page, a small
form asking for it).

Layers that add routes which check their own credentials (the desktop's control
routes) name their path prefixes in ``self_guarded``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from werkzeug.http import parse_cookie

from cellucid_desktop.server.security import WSGIApp, parse_host_header

TOKEN_PARAM = "token"
COOKIE_PREFIX = "cellucid-token-"
OPEN_PATHS = frozenset({"/_cellucid/health"})
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9._~-]{16,256}")


class _Generate(enum.Enum):
    NEW = "a new random token"


NEW_TOKEN: Literal[_Generate.NEW] = _Generate.NEW
TokenChoice = str | None | Literal[_Generate.NEW]
"""A server's token: a given one, a new random one (NEW_TOKEN), or None (no token)."""


def new_token() -> str:
    """256 random bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


def resolve_token(choice: TokenChoice) -> str | None:
    return new_token() if choice is NEW_TOKEN else check_token(choice)


def check_token(token: str | None) -> str | None:
    """A usable token (16-256 URL-safe characters), or ValueError with a sentence."""
    if token is None or _TOKEN_TEXT.fullmatch(token):
        return token
    raise ValueError("an access token is 16 to 256 characters from A-Z a-z 0-9 . _ ~ -")


def read_token_file(path: str) -> str:
    """The token in ``path`` (``-``: the first line of standard input).

    A token file others can read is refused: it would hand them the data (make it
    0600). ValueError with a sentence for the user.
    """
    if path == "-":
        text = sys.stdin.readline()
    else:
        file = Path(path).expanduser()
        try:
            status = file.stat()
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the token file {path}: "
                             f"{exc.strerror or exc}") from None
        if os.name == "posix" and status.st_mode & 0o077:
            raise ValueError(f"the token file {path} can be read by other users "
                             f"(mode {stat.S_IMODE(status.st_mode):o}); run: chmod 600 {path}")
    token = text.strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    try:
        return check_token(token)  # type: ignore[return-value]
    except ValueError as exc:
        raise ValueError(f"the token in {path} is not usable: {exc}") from None


def token_from_text(text: str) -> str | None:
    """The token in what a user pasted: the token itself, or a Viewer URL carrying
    ``token=``; None for an empty text. ValueError if it holds no usable token."""
    text = text.strip()
    if not text:
        return None
    if "token=" in text:
        tokens, _ = _split_query(urlsplit(text).query or text.partition("?")[2])
        text = tokens[0] if tokens else ""
    try:
        return check_token(text)
    except ValueError:
        raise ValueError("That is not an access token: paste the Viewer URL the server "
                         "printed (…?token=…), or just the part after token=") from None


def url_with_token(url: str, token: str | None) -> str:
    """``url`` with ``token=`` added to its query (unchanged when there is no token)."""
    if token is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}{TOKEN_PARAM}={token}"


def split_token(url: str) -> tuple[str, str | None]:
    """``url`` without its ``token=``, and that token (None without one): what a script
    sends as ``Authorization: Bearer`` rather than in the address."""
    base, _, query = url.partition("?")
    tokens, others = _split_query(query)
    return (f"{base}?{'&'.join(others)}" if others else base), (tokens[0] if tokens else None)


def cookie_name(environ: dict[str, Any]) -> str:
    """This server's cookie, named after the port in ``Host`` (what the browser used)."""
    parsed = parse_host_header(environ.get("HTTP_HOST", ""))
    port = parsed[1] if parsed is not None and parsed[1] is not None else 80
    return f"{COOKIE_PREFIX}{port}"


def _split_query(query: str) -> tuple[list[str], list[str]]:
    """(token values, the other ``name=value`` pairs as sent)."""
    tokens, others = [], []
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if unquote(name) == TOKEN_PARAM:
            tokens.append(unquote(value))
        elif pair:
            others.append(pair)
    return tokens, others


def _is_navigation(environ: dict[str, Any]) -> bool:
    mode = environ.get("HTTP_SEC_FETCH_MODE")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in environ.get("HTTP_ACCEPT", "")


class TokenGuard:
    """WSGI middleware requiring the token (see the module docstring)."""

    def __init__(self, app: WSGIApp, token: str, *, self_guarded: Iterable[str] = ()) -> None:
        self.app = app
        self.token = check_token(token).encode()  # type: ignore[union-attr]
        self.self_guarded = tuple(self_guarded)

    def matches(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(
            supplied.encode("utf-8", "replace"), self.token)

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if (path in OPEN_PATHS and method in ("GET", "HEAD")) \
                or path.startswith(self.self_guarded):
            return self.app(environ, start_response)
        query_tokens, other_pairs = _split_query(environ.get("QUERY_STRING", ""))
        by_query = any(self.matches(t) for t in query_tokens)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        by_header = auth[:7].lower() == "bearer " and self.matches(auth[7:].strip())
        name = cookie_name(environ)
        cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(name)
        by_cookie = self.matches(cookie)
        if by_query and method in ("GET", "HEAD") and _is_navigation(environ):
            return self._set_cookie_and_redirect(environ, name, other_pairs, start_response)
        if not (by_query or by_header or by_cookie):
            given = bool(query_tokens) or auth[:7].lower() == "bearer " or cookie is not None
            return _unauthorized(environ, given, other_pairs, start_response)
        if not (by_query or by_header) and method not in ("GET", "HEAD") \
                and not _same_origin(environ):
            return _text(start_response, "403 Forbidden",
                         "Refused: a request that changes something must come from this "
                         "server's own pages", method)
        if query_tokens:  # nothing downstream sees (or forwards) the token
            _replace_query(environ, "&".join(other_pairs))
        return self.app(environ, start_response)

    def _set_cookie_and_redirect(self, environ: dict[str, Any], name: str,
                                 other_pairs: list[str],
                                 start_response: Callable[..., Any]) -> list[bytes]:
        raw_path = environ.get("REQUEST_URI", "").partition("?")[0] or \
            quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        if not raw_path.startswith("/") or raw_path.startswith("//"):
            raw_path = "/"  # never a redirect to another host
        location = raw_path + ("?" + "&".join(other_pairs) if other_pairs else "")
        cookie = (f"{name}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict")
        if environ.get("HTTP_SEC_FETCH_SITE") != "cross-site":
            start_response("302 Found", [("Location", location), ("Set-Cookie", cookie),
                                         ("Content-Length", "0"),
                                         ("Referrer-Policy", "no-referrer")])
            return []
        # Followed from another site: a browser does not send a SameSite=Strict cookie on
        # the redirect that ends such a chain, so the page moves on by itself instead (a
        # navigation our own page starts is same-site), replacing its history entry.
        script = f"location.replace({json.dumps(location)})".replace("<", "\\u003c")
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        body = (f"<!doctype html><meta charset=utf-8><title>Cellucid</title>"
                f"<script>{script}</script>").encode()
        start_response("200 OK", [
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
            ("Set-Cookie", cookie), ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", f"default-src 'none'; script-src 'sha256-{digest}'")])
        return [body]


def _replace_query(environ: dict[str, Any], query: str) -> None:
    environ["QUERY_STRING"] = query
    uri = environ.get("REQUEST_URI")
    if uri:
        environ["REQUEST_URI"] = uri.partition("?")[0] + (f"?{query}" if query else "")


def _same_origin(environ: dict[str, Any]) -> bool:
    origin = environ.get("HTTP_ORIGIN", "")
    return bool(origin) and origin.lower() == f"http://{environ.get('HTTP_HOST', '')}".lower()


NEEDS_TOKEN = ("This Cellucid server needs its access token: open the Viewer URL it "
               "printed when it started (it ends in ?token=...), or send "
               "'Authorization: Bearer <token>'.")
WRONG_TOKEN = ("The access token is not this server's (it changes every time the server "
               "starts): open the Viewer URL the server printed this time.")


def _unauthorized(environ: dict[str, Any], given: bool, other_pairs: list[str],
                  start_response: Callable[..., Any]) -> list[bytes]:
    message = WRONG_TOKEN if given else NEEDS_TOKEN
    method = environ.get("REQUEST_METHOD", "")
    if not (method == "GET" and _is_navigation(environ)):
        return _text(start_response, "401 Unauthorized", message, method,
                     [("WWW-Authenticate", 'Bearer realm="cellucid"')])
    kept = "".join(
        f'<input type="hidden" name="{html.escape(unquote_plus(n))}" '
        f'value="{html.escape(unquote_plus(v))}">'
        for n, _, v in (pair.partition("=") for pair in other_pairs))
    body = _LOGIN_PAGE.format(message=html.escape(message), kept=kept).encode()
    start_response("401 Unauthorized", [
        ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
        ("WWW-Authenticate", 'Bearer realm="cellucid"'),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                    "form-action 'self'")])
    return [body]


def _text(start_response: Callable[..., Any], status: str, message: str, method: str,
          extra: list[tuple[str, str]] = ()) -> list[bytes]:
    body = message.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body))), *extra])
    return [] if method == "HEAD" else [body]


# A browser that opens the server without the token gets this form; submitting it
# loads the same address with ?token=, which sets the cookie and redirects.
_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cellucid: access token</title>
<style>body{{font:15px system-ui,sans-serif;max-width:34em;margin:4em auto;color:#222}}
input{{font:inherit;padding:.3em;width:100%;box-sizing:border-box;margin:.6em 0}}</style>
</head><body><h1>Access token</h1><p>{message}</p>
<form method="get">{kept}<label>Token <input name="token" autocomplete="off" autofocus
required></label><button type="submit">Open</button></form></body></html>
"""
