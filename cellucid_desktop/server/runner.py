"""Run the WSGI app with waitress in a background thread: start, port, clean stop."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable

from flask import Flask
from waitress import wasyncore

from cellucid_desktop import __version__
from cellucid_desktop.server.access import NEW_TOKEN, TokenChoice, resolve_token, url_with_token
from cellucid_desktop.server.app import create_app
from cellucid_desktop.server.http_server import make_server
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.security import WSGIApp

log = logging.getLogger(__name__)
# waitress warns "Task queue depth is N" whenever requests wait for a worker: normal
# under load, not a fault (hundreds of lines on a busy terminal). Its real warnings
# (e.g. the connection limit, an app error) come from other loggers.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

# Eight concurrent range readers (a browser opens six connections per origin, the
# desktop app several windows) each get a worker.
DEFAULT_THREADS = 12
OUTBUF_HIGH_WATERMARK = 4 << 20
CONNECTION_LIMIT = 200


def ipv4_address(host: str) -> str:
    """An IP literal as is; a name resolved to its IPv4 address, as cellucid binds it.

    waitress would bind every address a name resolves to (``localhost`` is both
    127.0.0.1 and ::1), each on its own port when asked for port 0.
    """
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (OSError, IndexError):
        raise OSError(errno.EADDRNOTAVAIL,
                      f"{host} is not an address this machine can serve from") from None


class PortInUseError(OSError):
    """The requested port is taken; the message says what to do."""


class ServerThread:
    """waitress serving the guarded app on one socket, in a daemon thread.

    ``port=0`` asks the OS for any free port; ``port`` is the bound one after start().
    ``socket_path`` serves on a Unix socket (mode 0600; its folder must be private:
    server/sockets.py) instead of a port. ``token``: every route but health needs it
    (server/access.py); a new random one unless given, None for none at all (the
    ``--no-token`` parity mode). ``self_guarded`` and ``front``: see create_app.
    """

    def __init__(self, registry: DatasetRegistry, *, host: str = "127.0.0.1", port: int = 0,
                 allowed_hosts: Iterable[str] = (),
                 blueprints: Iterable[Callable[[Flask], None]] = (),
                 threads: int = DEFAULT_THREADS, ui: str = "builtin",
                 token: TokenChoice = NEW_TOKEN, socket_path: str | None = None,
                 self_guarded: Iterable[str] = (),
                 front: Callable[[WSGIApp], WSGIApp] | None = None) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self.port = 0
        self.socket_path = socket_path
        self.token = resolve_token(token)
        self.app, self.store = create_app(
            registry, bind_host=host, port=lambda: None if socket_path else self.port,
            allowed_hosts=allowed_hosts, blueprints=blueprints, ui=ui, token=self.token,
            self_guarded=self_guarded, front=front)
        self._threads = threads
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The origin a browser on this machine opens (a wildcard bind means loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def url_with_token(self, path: str = "/") -> str:
        """``url`` + ``path`` with the token a first page load needs (sets the cookie)."""
        return url_with_token(f"{self.url}{path}", self.token)

    def start(self) -> ServerThread:
        """Bind and start serving; raises PortInUseError or OSError with a clear message."""
        where = {"unix_socket": self.socket_path, "unix_socket_perms": "600"} \
            if self.socket_path else {"host": ipv4_address(self.host), "port": self.requested_port}
        try:
            self._server = make_server(
                self.app, self.store.prepare_inline, **where, threads=self._threads,
                ident=f"cellucid-desktop/{__version__}", clear_untrusted_proxy_headers=True,
                # idle keep-alive connections are closed after a minute, and the ones
                # idle the longest as soon as the limit is reached (http_server.py)
                channel_timeout=60, cleanup_interval=10, connection_limit=CONNECTION_LIMIT,
                # a worker streaming a big body waits once 4 MiB are queued; queued
                # bytes stay in memory (waitress's default spills past 1 MiB to disk)
                outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
                outbuf_overflow=2 * OUTBUF_HIGH_WATERMARK,
            )
        except OSError as exc:
            if self.socket_path:
                raise OSError(exc.errno, f"Cannot listen on {self.socket_path}: "
                              f"{exc.strerror}") from None
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    exc.errno,
                    f"Port {self.requested_port} is already in use on {self.host}; "
                    "try --port 9000 or --port 0 (any free port)",
                ) from None
            if exc.errno == errno.EACCES:
                raise PortInUseError(
                    exc.errno, f"Not allowed to use port {self.requested_port} on {self.host}; "
                    "try a port above 1024 or --port 0") from None
            raise OSError(exc.errno, f"Cannot listen on {self.host}:{self.requested_port}: "
                          f"{exc.strerror}") from None
        if not self.socket_path:
            self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="cellucid-server",
                                        daemon=True)
        self._thread.start()
        log.info("Server listening on %s", self.socket_path or self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers first, then close every connection from the server's own loop.

        Workers finishing a request wake the loop through its trigger pipe, so they
        must be gone before the loop closes that pipe (else: EBADF in a worker).
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.task_dispatcher.shutdown(timeout=timeout)
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:  # the loop already ended and closed its trigger
            wasyncore.close_all(server._map)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.socket_path:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        log.info("Server stopped")

    def __enter__(self) -> ServerThread:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
