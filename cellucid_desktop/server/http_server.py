"""waitress's TCP and Unix-socket servers as we run them: the store fast path, and no lock-out by idle
connections.

waitress stops accepting once ``connection_limit`` connections are open and closes
idle ones only after ``channel_timeout``, so a few hundred idle keep-alive connections
(a browser's pool, a crashed client's leftovers, a port scanner) would keep every new
client waiting that long. When the limit is reached, :class:`CellucidServer` closes the
connections idle the longest instead (a closed idle keep-alive connection is normal
HTTP: clients open a new one). The loop uses ``poll`` where the OS has it, so
descriptors past 1024 work (``select`` cannot watch them).
"""

from __future__ import annotations

import logging
from typing import Any

from waitress.adjustments import Adjustments
from waitress.server import TcpWSGIServer, UnixWSGIServer
from waitress.task import ThreadedTaskDispatcher

from cellucid_desktop.server.fastpath import InlineStoreReads, Prepare, StoreChannel

log = logging.getLogger(__name__)

# Idle connections closed at once when the limit is reached: room for a burst.
EVICT_BATCH = 16


class EvictingServer:
    """Mixed into waitress's servers: our channel, evicting idle connections at the limit."""

    channel_class = StoreChannel
    adj: Adjustments
    active_channels: dict
    accepting: bool
    _map: dict

    def readable(self) -> bool:
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self.close_idle(len(self._map) - self.adj.connection_limit + EVICT_BATCH)
        return super().readable()

    def close_idle(self, count: int) -> int:
        """Close up to ``count`` connections with nothing in progress, idle the longest
        first (closed by the loop right after this pass); the number closed."""
        idle = [channel for channel in self.active_channels.values()
                if not (channel.requests or channel.request is not None
                        or channel.total_outbufs_len or channel.will_close
                        or channel.close_when_flushed)]
        idle.sort(key=lambda channel: channel.last_activity)
        for channel in idle[:count]:
            channel.will_close = True
        closed = min(count, len(idle))
        if closed:
            log.info("Connection limit reached: closed the %d connections idle the longest",
                     closed)
        return closed


class CellucidServer(EvictingServer, TcpWSGIServer):
    """A TCP port."""


class CellucidUnixServer(EvictingServer, UnixWSGIServer):
    """A Unix socket (``serve --socket``)."""


def make_server(app: Any, prepare: Prepare, **adjustments: Any) -> EvictingServer:
    """Bind a server (OSError if the address is taken) with waitress's ``adjustments``
    (``unix_socket`` chooses a socket over a port); store reads ``prepare`` answers are
    served on the I/O thread."""
    adj = Adjustments(asyncore_use_poll=True, **adjustments)
    workers = ThreadedTaskDispatcher()
    workers.set_thread_count(adj.threads)
    kind = CellucidUnixServer if adj.unix_socket else CellucidServer
    return kind(app, {}, dispatcher=InlineStoreReads(workers, prepare), adj=adj)
