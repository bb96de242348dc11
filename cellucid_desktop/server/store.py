"""Raw store bytes with cellucid 0.9.5's HTTP semantics: one Range, strong ETag, 304.

A file store (``.h5ad``, ``.h5mu``, ``.loom``, a zipped Zarr store) is one route; a Zarr
store folder is one route per key (``<id>.zarr/X/data/0``), an absent key a 404 (a Zarr
reader's "not written"), and consolidated metadata the store lacks is answered from
memory (DatasetSource.store_key). The store route is the hot path (a viewer reads a
store with thousands of requests), so it is answered by a lean WSGI app in front of
Flask: no routing table, no request object. Under our runner a file body goes from the
page cache to the socket with ``sendfile`` (server/fastpath.py); elsewhere it is the
WSGI file wrapper.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO

from flask import Response

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.reader import stat_identity
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.fastpath import ENVIRON_KEY as SENDFILE_KEY
from cellucid_desktop.server.fastpath import SendfileBuffer

ANNDATA_PREFIX = "_cellucid/anndata/"
_ROUTE_PREFIX = "/" + ANNDATA_PREFIX
_RANGE = re.compile(r"bytes=(\d{0,20})-(\d{0,20})")
_BLOCK = 1 << 20
RANGE_REFUSAL = "Requested byte range is not satisfiable"

StartResponse = Callable[..., Any]


def file_etag(status: os.stat_result) -> str:
    """Strong validator of one file version (its size, mtime and inode)."""
    return f'"{stat_identity(status)}"'


def parse_range(value: str, size: int) -> tuple[int, int]:
    """One inclusive interval from a ``Range`` value; ValueError means 416."""
    match = _RANGE.fullmatch(value)
    if match is None or not (match.group(1) or match.group(2)) or size == 0:
        raise ValueError(value)
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
        if start >= size or end < start:
            raise ValueError(value)
        return start, min(end, size - 1)
    suffix = int(match.group(2))
    if suffix <= 0:
        raise ValueError(value)
    return max(0, size - suffix), size - 1


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` names this version: a comma list, ``W/`` ignored, ``*`` matches."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


def requested_interval(range_value: str | None, if_range: str | None, size: int,
                       etag: str) -> tuple[int, int] | None:
    """The interval to send, None for the whole file; ValueError means 416.

    waitress folds repeated ``Range`` headers into one comma-joined value, which
    fails to parse, so several ranges and several headers are both refused.
    """
    if range_value is None:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # the client holds another version: send the whole current one
    return parse_range(range_value, size)


def canonical_key(text: str) -> str | None:
    """One plain relative store key, or None (absolute, ``..``, empty parts, NUL...)."""
    if not text or text.startswith("/") or "\\" in text or "\x00" in text:
        return None
    if any(part in ("", ".", "..") for part in text.split("/")):
        return None
    return text


def text_response(status: int, message: str, **headers: str) -> Response:
    """A short ``text/plain`` answer, the shape cellucid uses for every error."""
    return Response(message, status=status, content_type="text/plain", headers=headers)


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _text(start_response: StartResponse, code: int, message: str, head: bool,
          extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = message.encode("utf-8")
    start_response(_status(code), [("Content-Type", "text/plain"),
                                   ("Content-Length", str(len(body))), *extra])
    return [] if head else [body]


def _answer(environ: dict[str, Any], start_response: StartResponse, size: int,
            etag: str) -> tuple[int, int] | list[bytes] | None:
    """The conditional and range part every store answer shares: a finished answer
    (304, 416) as a body list, None for "headers sent, no body", or the (start, length)
    of the body to send after the headers this function has sent."""
    head = environ["REQUEST_METHOD"] == "HEAD"
    if not_modified(environ.get("HTTP_IF_NONE_MATCH"), etag):
        start_response(_status(304), [("ETag", etag)])
        return []
    try:
        interval = requested_interval(environ.get("HTTP_RANGE"), environ.get("HTTP_IF_RANGE"),
                                      size, etag)
    except ValueError:
        return _text(start_response, 416, RANGE_REFUSAL, head,
                     [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")])
    start, end = interval if interval is not None else (0, size - 1)
    length = 0 if size == 0 else end - start + 1
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(length)),
               ("Accept-Ranges", "bytes"), ("ETag", etag)]
    if interval is not None:
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    start_response(_status(206 if interval is not None else 200), headers)
    return None if head or length == 0 else (start, length)


def send_file(environ: dict[str, Any], start_response: StartResponse,
              path: Path) -> Iterable[bytes]:
    """Answer GET/HEAD for one store file, honouring Range, If-Range and If-None-Match."""
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the response
    except OSError:
        return _text(start_response, 404, f"{path.name} is no longer readable",
                     environ["REQUEST_METHOD"] == "HEAD")
    status = os.fstat(handle.fileno())
    body = _answer(environ, start_response, status.st_size, file_etag(status))
    if not isinstance(body, tuple):
        handle.close()
        return body or []
    start, length = body
    handle.seek(start)
    if environ.get(SENDFILE_KEY):
        return SendfileBuffer(handle, length)
    wrapper = environ.get("wsgi.file_wrapper")
    return wrapper(handle, _BLOCK) if wrapper else _read_chunks(handle, length)


def send_bytes(environ: dict[str, Any], start_response: StartResponse, data: bytes,
               etag: str) -> Iterable[bytes]:
    """Answer GET/HEAD for generated store bytes (consolidated metadata), like a file."""
    body = _answer(environ, start_response, len(data), etag)
    if not isinstance(body, tuple):
        return body or []
    start, length = body
    return [data[start:start + length]]


def _read_chunks(handle: BinaryIO, length: int) -> Iterator[bytes]:
    """Body iterator for WSGI servers without a file wrapper (test clients)."""
    with handle:
        while length > 0:
            chunk = handle.read(min(_BLOCK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


class StoreRoutes:
    """WSGI middleware answering GET/HEAD under `/_cellucid/anndata/` before Flask.

    Only a registered dataset's exact route name (``<id>.h5ad``, ``<id>.zarr.zip``...)
    or a key of its folder (``<id>.zarr/<key>``) reaches a file: the route is looked up
    in the registry and a key is checked by its source (plain relative key, inside the
    store), never joined to a folder as it was written, so no path a client writes can
    name another file. Everything else goes to ``app``.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], registry: DatasetRegistry) -> None:
        self.app = app
        self.registry = registry

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if not path.startswith(_ROUTE_PREFIX) or method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        head = method == "HEAD"
        route = path[len(_ROUTE_PREFIX):]
        found = self.registry.by_route(route)
        # PATH_INFO is the percent-decoded path as latin-1 (PEP 3333)
        shown = route.encode("latin-1").decode("utf-8", "replace")
        if found is None:
            return _text(start_response, 404, f"Not found: {ANNDATA_PREFIX}{shown}", head)
        dataset, key = found
        source = dataset.source
        if key is None:
            return send_file(environ, start_response, source.store_file())
        plain = canonical_key(key)
        if plain is None:
            return _text(start_response, 404, f"Not found: {ANNDATA_PREFIX}{shown}", head)
        try:
            answer = source.store_key(plain)
        except DatasetError as exc:  # its metadata became unreadable since it was opened
            return _text(start_response, 500, str(exc), head)
        if answer is None:
            return _text(start_response, 404,
                         f"No key {plain.encode('latin-1').decode('utf-8', 'replace')!r} "
                         "in the store", head)
        if answer.data is not None:
            return send_bytes(environ, start_response, answer.data, answer.etag)
        return send_file(environ, start_response, answer.path)
