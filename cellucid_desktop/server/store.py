"""Raw store bytes with cellucid 0.9.5's HTTP semantics: one Range, strong ETag, 304.

A file store (``.h5ad``, ``.h5mu``, ``.loom``, a zipped Zarr store) is one route; a Zarr
store folder is one route per key (``<id>.zarr/X/data/0``), an absent key a 404 (a Zarr
reader's "not written"), and consolidated metadata the store lacks is answered from
memory (DatasetSource.store_key).

The store route is the hot path (a viewer reads a store with thousands of requests),
so it is answered by a lean WSGI app in front of Flask: no routing table, no request
object. Each file store stays open (:class:`StoreFiles`): it is opened
and re-validated (``stat``) on worker threads only, because on a cold disk or a hung
network file system those calls block. A Range whose version was validated in the
last FRESH_SECONDS and whose bytes are already in memory is answered on waitress's I/O
thread without any blocking call (:meth:`StoreRoutes.prepare_inline`, see
server/fastpath.py); everything else is read by a worker.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from flask import Response

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.reader import stat_identity
from cellucid_desktop.fileio import INLINE_BYTES, ChangeWatch, PageCacheView, PositionalFile
from cellucid_desktop.server.fastpath import ENVIRON_KEY as INLINE_KEY
from cellucid_desktop.server.fastpath import SendfileBody
from cellucid_desktop.server.registry import Dataset, DatasetRegistry

log = logging.getLogger(__name__)

ANNDATA_PREFIX = "_cellucid/anndata/"
_ROUTE_PREFIX = "/" + ANNDATA_PREFIX
_RANGE = re.compile(r"bytes=(\d{0,20})-(\d{0,20})")
_BLOCK = 1 << 20
RANGE_REFUSAL = "Requested byte range is not satisfiable"
# How long a validated file version is trusted without a new stat where no change
# watch sees writes (another machine writing to a network file system; macOS,
# Windows): such a change is noticed within this time (cellucid stats every request).
FRESH_SECONDS = 0.25
# The I/O thread sends bodies with os.sendfile, where the OS has it.
_SENDFILE = hasattr(os, "sendfile")
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put in a file's place must not hang open
_BINARY = getattr(os, "O_BINARY", 0)

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


def _text(start_response: StartResponse, code: int, message: str, head: bool) -> list[bytes]:
    body = message.encode("utf-8")
    start_response(_status(code), [("Content-Type", "text/plain"),
                                   ("Content-Length", str(len(body)))])
    return [] if head else [body]


@dataclass(frozen=True)
class StoreVersion:
    """One open version of a store file, as validated at ``checked`` (monotonic)."""

    file: PositionalFile
    size: int
    etag: str
    identity: str
    checked: float
    cache: PageCacheView | None  # None where the OS cannot tell what is in memory


def _open_version(path: os.PathLike[str] | str, cached: bool = True) -> StoreVersion:
    """Open a store file for reading; OSError if it is gone or not a regular file.
    ``cached``: also map it to ask which bytes are in memory (for the I/O thread)."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY)
    try:
        status = os.fstat(fd)
        if not stat_module.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        handle = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    cache = PageCacheView.create(fd, status.st_size) if _SENDFILE and cached else None
    return StoreVersion(PositionalFile(handle), status.st_size, file_etag(status),
                        stat_identity(status), time.monotonic(), cache)


class StoreFiles:
    """The open file of every registered dataset, re-validated on each worker request.

    :meth:`current` may block (``stat``, ``open``): workers only. :meth:`fresh` never
    waits on a disk, for the I/O thread. A replaced version's file is closed by the
    garbage collector once the last response reading it is done.
    """

    def __init__(self, registry: DatasetRegistry) -> None:
        self.registry = registry
        self._versions: dict[str, StoreVersion] = {}
        self._lock = threading.Lock()
        self._watch: ChangeWatch | None = None  # made with the first open file
        self._generation = 0  # counts the changes seen, so no stale check is stored
        registry.on_remove(self.forget)

    def fresh(self, dataset_id: str) -> StoreVersion | None:
        """The version validated within FRESH_SECONDS and not changed since as far as
        the change watch knows, else None."""
        if self._watch is not None and self._watch.changed():
            self._generation += 1
            self._versions = {}  # a worker validates each file again before reuse
            return None
        version = self._versions.get(dataset_id)
        if version is None or time.monotonic() - version.checked > FRESH_SECONDS:
            return None
        return version

    def current(self, dataset: Dataset) -> StoreVersion:
        """The file as it is now: the open one if unchanged, else opened again."""
        generation = self._generation
        path = dataset.source.store_file()
        identity = stat_identity(os.stat(path))
        cached = self._versions.get(dataset.id)
        if cached is not None and cached.identity == identity:
            version = replace(cached, checked=time.monotonic())
        else:
            with self._lock:
                if self._watch is None:
                    self._watch = ChangeWatch.create()
            if self._watch is not None:
                self._watch.watch(path)  # before opening: no change slips by
            version = _open_version(path)
        with self._lock:
            # not removed meanwhile, and no change seen since the stat
            current = self.registry.get(dataset.id)
            if current is not None and current.source.location == dataset.source.location \
                    and generation == self._generation:
                self._versions[dataset.id] = version
        return version

    def forget(self, dataset: Dataset) -> None:
        with self._lock:
            self._versions.pop(dataset.id, None)


@dataclass(frozen=True)
class StoreAnswer:
    """What to answer: status, headers, and which bytes of the file (or a text body)."""

    status: int
    headers: list[tuple[str, str]]
    start: int = 0
    length: int = 0  # file bytes in the body (0 for HEAD, 304, 416)
    text: bytes = b""


def plan_answer(method: str, header: Callable[[str], str | None], size: int,
                etag: str) -> StoreAnswer:
    """The answer to GET/HEAD of one version of the store's bytes, honouring Range,
    If-Range and If-None-Match. ``header`` looks a request header up by its CGI name
    ("RANGE")."""
    head = method == "HEAD"
    if not_modified(header("IF_NONE_MATCH"), etag):
        return StoreAnswer(304, [("ETag", etag)])
    try:
        interval = requested_interval(header("RANGE"), header("IF_RANGE"), size, etag)
    except ValueError:
        body = RANGE_REFUSAL.encode()
        return StoreAnswer(416, [("Content-Type", "text/plain"),
                                 ("Content-Length", str(len(body))),
                                 ("Content-Range", f"bytes */{size}"),
                                 ("Accept-Ranges", "bytes")], text=b"" if head else body)
    start, end = interval if interval is not None else (0, size - 1)
    length = 0 if size == 0 else end - start + 1
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(length)),
               ("Accept-Ranges", "bytes"), ("ETag", etag)]
    if interval is not None:
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    return StoreAnswer(206 if interval is not None else 200, headers, start,
                       0 if head else length)


@dataclass(frozen=True)
class InlineAnswer:
    """An answer prepared on the I/O thread, for a version whose bytes are in memory."""

    answer: StoreAnswer
    version: StoreVersion

    @property
    def sends_file(self) -> bool:
        """Whether the body is file bytes (sent with sendfile after the head)."""
        return bool(self.answer.length)


def _read_chunks(file: PositionalFile, start: int, length: int,
                 dataset_id: str) -> Iterator[bytes]:
    """The body, read by the worker in blocks; it ends early if the file got shorter,
    and waitress then closes the connection (the client sees a short body)."""
    offset, end = start, start + length
    while offset < end:
        chunk = file.read(min(_BLOCK, end - offset), offset)
        if not chunk:
            log.warning("Dataset %s got shorter while it was being sent; the connection "
                        "is closed", dataset_id)
            return
        offset += len(chunk)
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
        self.files = StoreFiles(registry)

    def prepare_inline(self, method: str, path: str,
                       headers: Mapping[str, str]) -> InlineAnswer | None:
        """The answer to a store read, if it can be given with no blocking call (a
        validated open file, bytes already in memory); None sends it to a worker."""
        if method not in ("GET", "HEAD") or not path.startswith(_ROUTE_PREFIX):
            return None
        found = self.registry.by_route(path[len(_ROUTE_PREFIX):])
        if found is None or found[1] is not None:  # folder keys: small files, on workers
            return None
        version = self.files.fresh(found[0].id)
        if version is None:
            return None
        answer = plan_answer(method, headers.get, version.size, version.etag)
        if answer.length and (version.cache is None or answer.length > INLINE_BYTES
                              or not version.cache.resident(answer.start, answer.length)):
            return None
        return InlineAnswer(answer, version)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if not path.startswith(_ROUTE_PREFIX) or method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        head = method == "HEAD"
        inline = environ.get(INLINE_KEY)
        if inline is not None:  # prepared on the I/O thread: nothing left that blocks
            answer = inline.answer
            start_response(_status(answer.status), answer.headers)
            if answer.length:
                return SendfileBody(inline.version.file, answer.start, answer.length)
            return [answer.text] if answer.text else []
        route = path[len(_ROUTE_PREFIX):]
        found = self.registry.by_route(route)
        # PATH_INFO is the percent-decoded path as latin-1 (PEP 3333)
        shown = route.encode("latin-1").decode("utf-8", "replace")
        if found is None:
            return _text(start_response, 404, f"Not found: {ANNDATA_PREFIX}{shown}", head)
        dataset, key = found
        header = lambda name: environ.get("HTTP_" + name)  # noqa: E731
        if key is None:
            try:
                version = self.files.current(dataset)
            except OSError as exc:
                log.warning("Dataset %s cannot be served: %s", dataset.id, exc)
                return _text(start_response, 404,
                             f"Dataset {dataset.id} is no longer readable on the server", head)
            return self._send(start_response, plan_answer(method, header, version.size,
                                                          version.etag), version.file, dataset.id)
        plain = canonical_key(key)
        if plain is None:
            return _text(start_response, 404, f"Not found: {ANNDATA_PREFIX}{shown}", head)
        try:
            stored = dataset.source.store_key(plain)
        except DatasetError as exc:  # its metadata became unreadable since it was opened
            return _text(start_response, 500, self.registry.public_message(str(exc)), head)
        if stored is None:
            return _text(start_response, 404,
                         f"No key {plain.encode('latin-1').decode('utf-8', 'replace')!r} "
                         "in the store", head)
        if stored.data is not None:
            answer = plan_answer(method, header, len(stored.data), stored.etag)
            start_response(_status(answer.status), answer.headers)
            return [answer.text or stored.data[answer.start:answer.start + answer.length]]
        try:  # a key's file: small, opened by this worker for this answer
            version = _open_version(stored.path, cached=False)
        except OSError:
            return _text(start_response, 404, f"Not found: {ANNDATA_PREFIX}{shown}", head)
        return self._send(start_response, plan_answer(method, header, version.size,
                                                      version.etag), version.file, dataset.id)

    @staticmethod
    def _send(start_response: StartResponse, answer: StoreAnswer, file: PositionalFile,
              dataset_id: str) -> Iterable[bytes]:
        start_response(_status(answer.status), answer.headers)
        if answer.text:
            return [answer.text]
        return _read_chunks(file, answer.start, answer.length, dataset_id) \
            if answer.length else []
