"""A remote file read through HTTP Range requests, as a seekable read-only file object.

``h5py.File(RangeFile(url), "r")`` then reads a remote ``.h5ad`` (a cellucid 0.9.5 raw
store) the way it reads a local one, fetching only the blocks HDF5 touches. Blocks are
cached in memory (LRU, bounded) or, with ``spill_dir``, in an unlinked sparse temp file
there, so each remote byte crosses the tunnel at most once (scanning a CSR matrix
gene after gene would otherwise re-download it). Runs of missing blocks are fetched
in one request over one keep-alive connection. The first answer's ETag is remembered and sent as ``If-Range``,
so a file replaced on the server is noticed instead of mixing two versions.
"""

from __future__ import annotations

import collections
import io
import os
import re
import tempfile
import threading
from urllib.parse import urlsplit

from cellucid_desktop.data.errors import SourceUnreachable, TransportError
from cellucid_desktop.fileio import PositionalFile
from cellucid_desktop.http_client import Client, Endpoint
from cellucid_desktop.remote.traffic import charge

BLOCK_SIZE = 1 << 20
MAX_BLOCKS = 64  # 64 MiB of in-memory cache per open file
MAX_RUN = 16  # blocks per request: bounds the memory one fetch needs
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class RemoteFileError(TransportError):
    """The remote file cannot be read (gone, changed, or no Range support)."""


class RemoteUnreachable(RemoteFileError, SourceUnreachable):
    """No answer from the remote server (the tunnel is down or reconnecting): the data
    API answers 502, and the same read succeeds once the tunnel is back."""


class RangeFile(io.RawIOBase):
    """Read-only, seekable view of ``url`` (``http://127.0.0.1:port/path``).

    ``host`` overrides the Host header (a remote behind a remapping tunnel expects its
    own port there); ``token`` is the remote's access token. ``bytes_fetched`` and
    ``requests`` count the traffic; each fetch is also charged to the request it serves
    (remote/traffic.py).
    """

    def __init__(self, url: str, *, host: str | None = None, token: str | None = None,
                 block_size: int = BLOCK_SIZE, max_blocks: int = MAX_BLOCKS,
                 timeout: float = 60.0,
                 spill_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1":
            raise ValueError(f"RangeFile needs an http://127.0.0.1:PORT/ URL, not {url!r}")
        self._path = parts.path or "/"
        self._client = Client(Endpoint(port=parts.port or 80, host_header=host or parts.netloc,
                                       token=token), timeout=timeout, maxsize=1)
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._spill = (PositionalFile(tempfile.TemporaryFile(buffering=0, dir=spill_dir))
                       if spill_dir is not None else None)
        self._spilled: set[int] = set()
        self._lock = threading.Lock()
        self.etag: str | None = None
        self._pos = 0
        self.bytes_fetched = 0
        self.requests = 0
        self.size = self._fetch_size()

    # -- io.RawIOBase ----------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._pos + len(view), self.size)
        if end <= self._pos:
            return 0
        data = self.pread(self._pos, end - self._pos)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        with self._lock:
            self._client.close()
            self._blocks.clear()
            if self._spill is not None:
                self._spill.close()
        super().close()

    # -- reading -----------------------------------------------------------------------

    def pread(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the file)."""
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        first, last = offset // self.block_size, (end - 1) // self.block_size
        with self._lock:
            self._load(first, last)
            if self._spill is not None:
                return self._spill.read(end - offset, offset)
            chunks = [self._blocks[i] for i in range(first, last + 1)]
            for i in range(first, last + 1):
                self._blocks.move_to_end(i)
            self._evict()
        joined = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        start = offset - first * self.block_size
        return joined[start:start + (end - offset)]

    def _cached(self, index: int) -> bool:
        return index in (self._spilled if self._spill is not None else self._blocks)

    def _load(self, first: int, last: int) -> None:
        index = first
        while index <= last:
            if self._cached(index):
                index += 1
                continue
            run_end = index
            while run_end + 1 <= min(last, index + MAX_RUN - 1) \
                    and not self._cached(run_end + 1):
                run_end += 1
            start = index * self.block_size
            stop = min((run_end + 1) * self.block_size, self.size)
            data = self._get_range(start, stop - 1)
            if self._spill is not None:
                self._spill.write(data, start)
                self._spilled.update(range(index, run_end + 1))
            else:
                for i in range(index, run_end + 1):
                    lo = (i - index) * self.block_size
                    self._blocks[i] = data[lo:lo + self.block_size]
            index = run_end + 1

    def _evict(self) -> None:
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)

    def _fetch_size(self) -> int:
        status, headers, _ = self._request({"Range": "bytes=0-0"})
        match = _CONTENT_RANGE.match(headers.get("content-range", ""))
        if status != 206 or not match:
            raise RemoteFileError(f"{self._path} does not support byte ranges (HTTP {status})")
        self.etag = headers.get("etag")
        return int(match.group(3))

    def _get_range(self, first: int, last: int) -> bytes:
        headers = {"Range": f"bytes={first}-{last}"}
        if self.etag:
            headers["If-Range"] = self.etag
        status, answer, body = self._request(headers)
        if status == 200:
            raise RemoteFileError("the remote file changed while it was open; reopen it")
        if status != 206 or len(body) != last - first + 1:
            raise RemoteFileError(f"reading bytes {first}-{last} of {self._path} failed "
                                  f"(HTTP {status})")
        return body

    def _request(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One GET on the kept-alive connection (the client reconnects if it was closed)."""
        try:
            reply = self._client.get(self._path, headers=headers)
        except OSError as exc:
            raise RemoteUnreachable(
                f"The remote server did not answer through the tunnel ({exc}); it is "
                "probably reconnecting, try again in a moment") from None
        self.requests += 1
        self.bytes_fetched += len(reply.body)
        charge(len(reply.body))
        return reply.status, reply.headers, reply.body
