"""The one owner of every server the app runs (JupyterLab Desktop's model: one owner for
all servers, so Quit has one place to stop them).

* the app's own server (pages, control routes, local datasets);
* the web app's origins, one per ``webapp:`` window;
* remote connections (a tunnel or a launched remote server, and their local proxy),
  one per ``remote:`` connection.

Everything but the app's server is owned by a window key and stopped when that window
closes (``Windows.on_close`` calls :meth:`stop`), by Disconnect, or at Quit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cellucid_desktop.server.runner import PortInUseError, ServerThread

if TYPE_CHECKING:
    from flask import Flask

    from cellucid_desktop.server.registry import DatasetRegistry
    from cellucid_desktop.server.webapp_cache import WebAppCache

log = logging.getLogger(__name__)


STOP_WAIT = 15.0  # seconds Quit waits for stops under way (a remote server's over ssh)
Stop = Callable[[], None]  # ends one server or connection (ServerThread.stop, session.close)


class Servers:
    def __init__(self, registry: DatasetRegistry) -> None:
        self.registry = registry
        self.app: ServerThread | None = None
        self._owned: dict[str, Stop] = {}
        self._stopping = 0  # stops running now (a window closing, Disconnect)
        self._lock = threading.Lock()
        self._stopped = threading.Condition(self._lock)

    # ----- the app's own server ---------------------------------------------------------

    def start_app(self, port: int, blueprints: list[Callable[[Flask], None]],
                  self_guarded: tuple[str, ...]) -> str | None:
        """Bind ``port``, or any free one if it is busy; the sentence saying so then."""
        options = {"blueprints": blueprints, "self_guarded": self_guarded}
        try:
            self.app = ServerThread(self.registry, port=port, **options).start()
            return None
        except PortInUseError:
            self.app = ServerThread(self.registry, port=0, **options).start()
        return (f"Port {port} is in use, so Cellucid Desktop uses port {self.app.port} "
                "this time; choose another port in Settings.")

    def page_url(self, path: str) -> str:
        """An address on the app's server, with its access token (for our own windows)."""
        assert self.app is not None, "the app's server starts first"
        return self.app.url_with_token(path)

    # ----- servers owned by a window key ------------------------------------------------

    def start_webapp(self, key: str, dataset_id: str, cache: WebAppCache) -> str:
        """Serve the cached web app for one dataset on an origin of its own, owned by
        ``key``; its URL. Raises WebAppError."""
        from cellucid_desktop.server.webapp_assets import (start_webapp_server,
                                                           webapp_viewer_url)

        webapp = start_webapp_server(self.registry, cache, dataset_id=dataset_id)
        self.adopt(key, webapp.stop)
        return webapp_viewer_url(webapp)

    def adopt(self, key: str, stop: Stop) -> None:
        """Own, under ``key``, what ``stop`` ends; whatever ``key`` owned before is
        stopped."""
        with self._lock:
            previous, self._owned[key] = self._owned.get(key), stop
        if previous is not None and previous != stop:
            previous()

    def owns(self, key: str) -> bool:
        with self._lock:
            return key in self._owned

    def stop(self, key: str) -> None:
        """Stop what ``key`` owns (nothing if it owns nothing)."""
        with self._lock:
            owned = self._owned.pop(key, None)
            if owned is None:
                return
            self._stopping += 1
        try:
            owned()
        except Exception:  # noqa: BLE001 - the others must still stop
            log.exception("Stopping %s failed", key)
        finally:
            with self._stopped:
                self._stopping -= 1
                self._stopped.notify_all()

    def stop_all(self) -> None:
        """Quit: every owned server and connection, then the app's own server. Stops
        already under way (Quit closes the windows first, whose servers then stop) are
        waited for, so what runs after (ending the SSH masters) cannot cut them short."""
        with self._lock:
            keys = list(self._owned)
        for key in keys:
            self.stop(key)
        with self._stopped:
            if not self._stopped.wait_for(lambda: self._stopping == 0, STOP_WAIT):
                log.warning("%d server(s) still stopping after %.0f s", self._stopping,
                            STOP_WAIT)
        if self.app is not None:
            self.app.stop()
