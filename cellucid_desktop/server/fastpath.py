"""waitress's fast path for store reads: zero-copy bodies, answered on the I/O thread.

A viewer reads a store with thousands of small Range requests. Two costs made waitress
slower than `cellucid serve` (a thread per connection calling ``sendfile``) on them:

* **Copies.** waitress sends a ``wsgi.file_wrapper`` body by reading each chunk into
  Python and writing it out. Here the file-wrapper buffer (waitress recognises it with
  ``isinstance``) hands the channel a :class:`FileSlice`, and the channel (the server's
  ``channel_class``) passes it to ``os.sendfile``.
* **Thread hand-offs.** Every request goes from the I/O thread to a worker and back,
  two context switches and two GIL hand-offs, which cost more than the request.
  :class:`InlineStoreReads` answers a lone Range/HEAD request on the store on the I/O
  thread itself: it is an ``open``, an ``fstat`` and a non-blocking ``sendfile``.

Nothing else in waitress changes: partial sends, back-pressure and closing stay its own.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel

# The WSGI environ key the runner sets when its channels understand FileSlice.
ENVIRON_KEY = "cellucid_desktop.sendfile"
_DISCONNECTED = frozenset({errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                           errno.ECONNABORTED, errno.EPIPE, errno.EBADF})


@dataclass(frozen=True)
class FileSlice:
    """Bytes ``offset .. offset+count`` of an open file, to be sent by the kernel."""

    fd: int
    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


class SendfileBuffer(ReadOnlyFileBasedBuffer):
    """A file-wrapper body whose chunks are FileSlices rather than bytes read into memory."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        super().__init__(file)
        self.length = length

    def prepare(self, size: int | None = None) -> int:
        return super().prepare(self.length if size is None else min(size, self.length))

    def get(self, numbytes: int = -1, skip: bool = False) -> FileSlice | bytes:
        if skip:  # never asked for by waitress's flush loop; keep the base meaning
            return super().get(numbytes, skip)
        if numbytes == -1 or numbytes > self.remain:
            numbytes = self.remain
        return FileSlice(self.file.fileno(), self.file.tell(), numbytes)


class SendfileChannel(HTTPChannel):
    """waitress's HTTP channel, sending FileSlices with ``os.sendfile``, and running the
    store read InlineStoreReads picked once the request is parsed (waitress hands it
    over while holding the channel's request lock, which serving needs)."""

    receiving = False
    inline_pending = False

    def received(self, data: bytes) -> Any:
        self.receiving = True
        try:
            result = super().received(data)
        finally:
            self.receiving = False
        if self.inline_pending:
            self.inline_pending = False
            self.server.task_dispatcher.run_marked(self)
        return result

    def send(self, data: Any, do_close: bool = True) -> int:
        if not isinstance(data, FileSlice):
            return super().send(data, do_close)
        if not data.count:
            return 0
        try:
            return os.sendfile(self.socket.fileno(), data.fd, data.offset, data.count)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in _DISCONNECTED:
                if do_close:
                    self.handle_close()
                return 0
            raise


class InlineStoreReads:
    """waitress's task dispatcher, except that store reads run on the calling I/O thread.

    Only a channel with exactly one parsed request and nothing left to send is run
    inline, and only for ``HEAD`` or a ``GET`` with a ``Range`` under
    ``/_cellucid/anndata/``. Such a task never waits for the I/O thread (waitress waits
    only when earlier output is over its high-water mark), so it cannot block it; its
    body is sent without blocking, and whatever the socket does not take at once is
    sent later by the I/O loop as usual. Everything else goes to the worker pool.
    """

    def __init__(self, workers: Any, prefix: str) -> None:
        self.workers = workers
        self.prefix = prefix

    def add_task(self, channel: Any) -> None:
        if self._is_store_read(channel):
            channel.inline_pending = True  # served by the channel when parsing ends
        else:
            self.workers.add_task(channel)

    def run_marked(self, channel: Any) -> None:
        """Serve a marked channel now, unless more requests arrived in the same read
        (serving one of several may wait for the I/O thread: a worker's job then)."""
        if len(channel.requests) == 1 and not channel.total_outbufs_len:
            channel.service()
        else:
            self.workers.add_task(channel)

    def _is_store_read(self, channel: Any) -> bool:
        if not getattr(channel, "receiving", False):  # handed over by a worker
            return False
        requests = channel.requests
        if len(requests) != 1 or channel.total_outbufs_len:
            return False
        request = requests[0]
        return (not request.error and request.path.startswith(self.prefix)
                and (request.command == "HEAD"
                     or (request.command == "GET" and "RANGE" in request.headers)))

    def set_thread_count(self, count: int) -> None:
        self.workers.set_thread_count(count)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        return self.workers.shutdown(cancel_pending, timeout)


def mark_environ(app: Any) -> Any:
    """Wrap a WSGI app so its requests know the channel accepts SendfileBuffer bodies."""

    def marked(environ: dict[str, Any], start_response: Any) -> Any:
        environ[ENVIRON_KEY] = True
        return app(environ, start_response)

    return marked
