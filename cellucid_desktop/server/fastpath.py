"""waitress's fast path for store reads: answered on the I/O thread when nothing blocks.

A viewer reads a store with thousands of small Range requests. Handing each one from
waitress's I/O thread to a worker and back costs two context switches and two GIL
hand-offs, more than the request itself (a worker-only store route measured 0.59-0.71x
`cellucid serve`, docs/benchmarks.md). So :class:`InlineStoreReads` (waitress's task
dispatcher) asks the store, still on the I/O thread, to prepare the answer with no
blocking call: an already validated open file and bytes already in the page cache
(server/store.py). If it can, the request is served right there, its body sent from
the page cache to the socket with ``os.sendfile`` (no copy); if not (a file not
validated lately, bytes on a cold disk or a hung network file system, a big body, an
OS without ``sendfile``/``mincore``, any other route), it goes to a worker, so one
slow disk never stalls the others.

Only waitress's own extension points are used: the channel's ``task_class`` (to pass
the prepared answer into the WSGI environ), the server's ``channel_class`` (to run the
marked request once parsing ends) and its ``task_dispatcher``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.task import WSGITask

log = logging.getLogger(__name__)

# The WSGI environ key holding the answer prepared on the I/O thread.
ENVIRON_KEY = "cellucid_desktop.inline"
_DISCONNECTED = frozenset({errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                           errno.ECONNABORTED, errno.EPIPE, errno.EBADF})
_MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux: more data follows, do not push yet

Prepare = Callable[[str, str, Mapping[str, str]], Any]


@dataclass(frozen=True)
class FileSlice:
    """Bytes ``offset .. offset+count`` of an open file, to be sent by the kernel."""

    fd: int
    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


class SendfileBody(ReadOnlyFileBasedBuffer):
    """A body of file bytes already in the page cache, sent by the I/O thread with
    ``os.sendfile`` (zero-copy). waitress recognises the file-wrapper buffer type and
    queues it as is; its chunks are FileSlices, which :class:`StoreChannel` sends.
    ``file`` is held so its descriptor stays open until the body is sent."""

    def __init__(self, file: Any, offset: int, length: int) -> None:  # noqa: D107
        self.file = file
        self.offset = offset
        self.remain = length

    def prepare(self, size: int | None = None) -> int:
        if size is not None:
            self.remain = min(size, self.remain)
        return self.remain

    def get(self, numbytes: int = -1, skip: bool = False) -> FileSlice:
        if numbytes == -1 or numbytes > self.remain:
            numbytes = self.remain
        chunk = FileSlice(self.file.fileno(), self.offset, numbytes)
        if skip:
            self.skip(numbytes)
        return chunk

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:
        self.offset += numbytes
        self.remain -= numbytes

    def close(self) -> None:
        self.remain = 0


class StoreTask(WSGITask):
    """waitress's WSGI task, putting the request's prepared answer into the environ."""

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        prepared = getattr(self.request, "cellucid_inline", None)
        if prepared is not None:
            environ[ENVIRON_KEY] = prepared
            self.channel.head_before_file = bool(_MSG_MORE and prepared.sends_file)
        return environ


class StoreChannel(HTTPChannel):
    """waitress's HTTP channel, sending FileSlices with ``os.sendfile``, and running the
    store read InlineStoreReads picked once the request is parsed (waitress hands it
    over while holding the channel's request lock, which serving needs)."""

    task_class = StoreTask
    receiving = False
    inline_pending = False
    head_before_file = False  # the next send is the head of a sendfile body

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
            if self.head_before_file:
                # the head of a file body (waitress sends it at once, alone): let the
                # kernel put it in one segment with the body's first bytes
                self.head_before_file = False
                return self._guarded(self.socket.send, do_close, data, _MSG_MORE) or 0
            return super().send(data, do_close)
        sent = self._guarded(os.sendfile, do_close, self.socket.fileno(), data.fd, data.offset,
                             data.count)
        if sent is None:
            return 0
        if sent == 0 and data.count:
            # the file ended before the promised length: it got shorter while being
            # sent. The answer cannot be finished; close, as cellucid does (a retry
            # would find the same end of file again and again: a spinning core).
            log.warning("A store file got shorter while it was being sent; the "
                        "connection is closed")
            self.handle_close()
        return sent

    def _guarded(self, call: Callable[..., int], do_close: bool, *args: Any) -> int | None:
        """A send call as waitress makes it; None when nothing could be sent because the
        socket is full or the client went away (then closed, if ``do_close``)."""
        try:
            return call(*args)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in _DISCONNECTED:
                if do_close:
                    self.handle_close()
                return None
            raise


class InlineStoreReads:
    """waitress's task dispatcher, except that store reads run on the calling I/O thread
    when ``prepare`` has answered them without blocking.

    Only a channel with exactly one parsed request and nothing left to send is run
    inline. Such a task never waits for the I/O thread (waitress waits only when earlier
    output is over its high-water mark), and its body is in memory already, so it
    cannot block it. Everything else goes to the worker pool.
    """

    def __init__(self, workers: Any, prepare: Prepare) -> None:
        self.workers = workers
        self.prepare = prepare

    def add_task(self, channel: Any) -> None:
        if self._prepared(channel):
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

    def _prepared(self, channel: Any) -> bool:
        if not getattr(channel, "receiving", False):  # handed over by a worker
            return False
        requests = channel.requests
        if len(requests) != 1 or channel.total_outbufs_len:
            return False
        request = requests[0]
        if request.error:
            return False
        prepared = self.prepare(request.command, request.path, request.headers)
        if prepared is None:
            return False
        request.cellucid_inline = prepared
        return True

    def set_thread_count(self, count: int) -> None:
        self.workers.set_thread_count(count)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        return self.workers.shutdown(cancel_pending, timeout)
