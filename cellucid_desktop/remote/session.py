"""One remote connection end to end: tunnel (or an already forwarded port), probe, and
a local proxy when the window cannot load the remote directly; out comes a viewer URL.

The connect dialog and ``cellucid-desktop connect`` both drive this class, so they
behave the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.ports import choose_local_port, is_free, who_holds
from cellucid_desktop.remote.probe import DESKTOP, ProbeResult, probe
from cellucid_desktop.http_client import Client, Endpoint
from cellucid_desktop.remote.proxy import CELLUCID_PREFIXES, EVERYTHING, LocalProxy
from cellucid_desktop.remote.ssh_command import TunnelSpec
from cellucid_desktop.remote.tunnel import Tunnel, TunnelState, TunnelStatus
from cellucid_desktop.server.access import url_with_token

if TYPE_CHECKING:
    from cellucid_desktop.server.data_api import DataService
    from cellucid_desktop.server.webapp_cache import WebAppCache

log = logging.getLogger(__name__)

# How many local ports to try when the one chosen is taken before ssh binds it (other
# programs, other tunnels of this app, pick ports at the same time).
PORT_ATTEMPTS = 5


class RemoteError(Exception):
    """Connecting failed; ``str()`` is one sentence for the user."""


class TokenNeeded(RemoteError):
    """The remote is our server and wants its access token (none, or a wrong one, was
    given): ask the user for it, or for the Viewer URL the server printed."""


@dataclass(frozen=True)
class RemoteView:
    """What the window layer opens: ``url``; ``direct`` False = through the local proxy."""

    url: str
    probe: ProbeResult
    direct: bool


class RemoteSession:
    """``open()`` returns a RemoteView or raises RemoteError; ``close()`` ends it all.

    Give ``spec`` to run ssh, or ``port`` for a port that is already forwarded.
    ``viewer`` chooses the UI the proxy serves for a remote without one (Settings'
    "Open datasets in"): the built-in viewer, or the cached official web app.
    ``on_status`` receives the tunnel's states (connecting, connected, reconnecting,
    failed, stopped). ``token`` is the remote's access token (our server has one;
    `cellucid serve` has none and ignores it). ``masters`` is the app's pool of
    signed-in masters the tunnel rides (prompts reach its broker's front end); None =
    a private one that asks nobody (key or agent sign-in only).
    """

    def __init__(self, spec: TunnelSpec | None = None, *, port: int | None = None,
                 remote_port: int | None = None, masters: MasterPool | None = None,
                 on_status: Callable[[TunnelStatus], None] | None = None,
                 ready_timeout: float = 60.0, viewer: str = "builtin",
                 token: str | None = None) -> None:
        if (spec is None) == (port is None):
            raise ValueError("give either an SSH spec or an already forwarded port")
        self.spec = spec.validated() if spec is not None else None
        self.remote_port = self.spec.remote_port if self.spec else remote_port
        self.on_status = on_status
        self.ready_timeout = ready_timeout
        self.viewer = viewer  # for a remote without UI: "builtin", or "webapp" if cached
        self.local_port = port
        self.token = token
        self.masters = masters
        self.tunnel: Tunnel | None = None
        self.proxy: LocalProxy | None = None
        self.data_service: DataService | None = None
        self.data_upstream: Client | None = None  # connections the data API reads over
        self.view: RemoteView | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def open(self) -> RemoteView:
        """Connect; on any failure everything started so far is stopped again."""
        with self._lock:
            try:
                return self._open()
            except BaseException:
                self.close()
                raise

    def _open(self) -> RemoteView:
        if self._closed.is_set():
            raise RemoteError("Disconnected.")
        if self.spec is not None:
            self._start_tunnel()
        assert self.local_port is not None
        result = probe(self.local_port, remote_port=self.remote_port, timeout=5,
                       token=self.token)
        if result.needs_token:
            raise TokenNeeded(result.message)
        if not result.is_cellucid:
            raise RemoteError(result.message)
        self.view = self._view(result)
        if self._closed.is_set():  # Disconnect pressed while connecting
            raise RemoteError("Disconnected.")
        log.info("remote viewer: %s (%s)", self.view.url, result.message)
        return self.view

    def close(self) -> None:
        """Stop the proxy and the tunnel (safe to call twice, and while ``open`` runs)."""
        self._closed.set()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.data_service is not None:
            self.data_service.close()  # h5py files first, then the RangeFiles under them
            self.data_service = None
        if self.data_upstream is not None:
            self.data_upstream.close()
            self.data_upstream = None
        if self.tunnel is not None:
            self.tunnel.stop()

    def _start_tunnel(self) -> None:
        assert self.spec is not None
        requested = self.spec.local_port
        if requested is not None and not is_free(requested):
            holder = who_holds(requested)
            raise RemoteError(f"The local port {requested} is already in use"
                              f"{' by ' + holder if holder else ''}; choose another local "
                              "port or leave it empty.")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.local_port = choose_local_port(self.spec.remote_port, requested)
            self.tunnel = Tunnel(self.spec, self.local_port, masters=self.masters,
                                 on_status=self.on_status, ready_timeout=self.ready_timeout)
            status = self.tunnel.start().wait_connected(self.ready_timeout + 30)
            if self._closed.is_set():
                raise RemoteError("Disconnected.")
            if status.state == TunnelState.CONNECTED:
                return
            # A port we chose was free when chosen, but another program may bind it
            # before ssh does (the tunnel never came up, so no URL names it yet): choose
            # again. A port the user asked for is theirs to change.
            if (requested is not None or attempt == PORT_ATTEMPTS or status.problem is None
                    or status.problem.kind != "local-port-busy"):
                raise RemoteError(status.message)
            log.info("local port %d was taken before the tunnel bound it; choosing another",
                     self.local_port)
            self.tunnel.stop()

    def _view(self, result: ProbeResult) -> RemoteView:
        if not result.needs_proxy:
            url = f"http://127.0.0.1:{result.port}{result.viewer_path}"
            return RemoteView(url_with_token(url, result.token), result, True)
        if result.has_ui or result.kind == DESKTOP:
            # Only the Host check is in the way: forward everything, UI included.
            self.proxy = LocalProxy(result.port, result.host_port, prefixes=EVERYTHING,
                                    upstream_token=result.token)
            path = result.viewer_path
        elif self.viewer == "webapp" and (cache := self._webapp_cache()) is not None:
            from cellucid_desktop.server.webapp_assets import webapp_blueprint

            # The official app reads the remote store itself, through the forwarded routes.
            self.proxy = LocalProxy(result.port, result.host_port, prefixes=CELLUCID_PREFIXES,
                                    blueprints=[webapp_blueprint(cache)], ui="webapp",
                                    upstream_token=result.token)
            path = "/?anndata=true"
        else:
            self.proxy, path = self._builtin_viewer_proxy(result)
        self.proxy.start()
        return RemoteView(self.proxy.view_url(path), result, False)

    @staticmethod
    def _webapp_cache() -> WebAppCache | None:
        """The web-app cache if it holds a build (fetching one is the user's choice)."""
        from cellucid_desktop.server.webapp_cache import WebAppCache

        cache = WebAppCache()
        return cache if cache.current() is not None else None

    def _builtin_viewer_proxy(self, result: ProbeResult) -> tuple[LocalProxy, str]:
        """The remote has no UI: the built-in viewer is served locally, its data API
        reading the remote store through HTTP Range requests (remote_data.py)."""
        from cellucid_desktop.data.errors import DatasetError
        from cellucid_desktop.remote.remote_data import open_remote_datasets, remote_data_api

        self.data_upstream = Client(Endpoint(port=result.port, token=result.token)
                                    .naming(result.host_port), timeout=120.0, maxsize=8)
        try:
            registry, service = open_remote_datasets(
                f"http://127.0.0.1:{result.port}", f"127.0.0.1:{result.host_port}",
                self.data_upstream, result.datasets)
        except (DatasetError, OSError) as exc:
            raise RemoteError(f"The remote dataset could not be read ({exc}).") from None
        if not registry.all():
            raise RemoteError("The remote server has no viewer UI and its dataset is in a "
                              "format the built-in viewer does not read (.h5ad, .h5mu, .loom "
                              "or Zarr); restart it without --no-web-ui.")
        self.data_service = service
        proxy = LocalProxy(result.port, result.host_port, prefixes=CELLUCID_PREFIXES,
                           blueprints=[remote_data_api(service)], registry=registry,
                           upstream_token=result.token)
        return proxy, f"/?dataset={registry.all()[0].id}"
