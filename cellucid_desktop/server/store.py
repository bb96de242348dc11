"""Raw store bytes with cellucid 0.9.5's HTTP semantics: one Range, strong ETag, 304.

The body is handed to waitress as a file wrapper positioned at the range start, so a
range of any size is streamed from the page cache without being read into memory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from flask import Response, request

_RANGE = re.compile(r"bytes=(\d{0,20})-(\d{0,20})")
_BLOCK = 1 << 18


def file_etag(status: os.stat_result) -> str:
    """Strong validator of one file version: size, mtime (ns) and inode, in hex."""
    return f'"{status.st_size:x}-{status.st_mtime_ns:x}-{status.st_ino:x}"'


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


def text_response(status: int, message: str, **headers: str) -> Response:
    """A short ``text/plain`` answer, the shape cellucid uses for every error."""
    return Response(message, status=status, content_type="text/plain", headers=headers)


def _not_modified(etag: str) -> bool:
    condition = request.headers.get("If-None-Match")
    if condition is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in condition.split(",")}
    return etag in tags or "*" in tags


def _requested_interval(size: int, etag: str) -> tuple[int, int] | None:
    """The interval to send, None for the whole file; ValueError for a 416."""
    values = request.headers.getlist("Range")
    if not values:
        return None
    if len(values) > 1:  # (waitress folds repeats into one value, which fails to parse)
        raise ValueError("several ranges")
    condition = request.headers.get("If-Range")
    if condition is not None and condition.strip() != etag:
        return None
    return parse_range(values[0], size)


def send_store_file(path: Path) -> Response:
    """Answer GET/HEAD for one store file, honouring Range, If-Range and If-None-Match."""
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the response
    except OSError:
        return text_response(404, f"{path.name} is no longer readable")
    status = os.fstat(handle.fileno())
    size, etag = status.st_size, file_etag(status)
    if _not_modified(etag):
        handle.close()
        return Response(status=304, headers={"ETag": etag})
    try:
        interval = _requested_interval(size, etag)
    except ValueError:
        handle.close()
        return text_response(416, "Requested byte range is not satisfiable",
                             **{"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    start, end = interval if interval is not None else (0, size - 1)
    length = 0 if size == 0 else end - start + 1
    headers = {"Content-Length": str(length), "Accept-Ranges": "bytes", "ETag": etag}
    if interval is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or length == 0:
        handle.close()
        body: object = b""
    else:
        handle.seek(start)
        wrapper = request.environ.get("wsgi.file_wrapper")
        body = wrapper(handle, _BLOCK) if wrapper else _read_chunks(handle, length)
    return Response(body, status=206 if interval is not None else 200,
                    content_type="application/octet-stream", headers=headers,
                    direct_passthrough=True)


def _read_chunks(handle, length: int):
    """Fallback body iterator for WSGI servers without a file wrapper (test client)."""
    with handle:
        while length > 0:
            chunk = handle.read(min(_BLOCK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
