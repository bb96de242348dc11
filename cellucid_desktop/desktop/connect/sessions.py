"""The live remote sessions, whichever way they started, and their viewer windows.

Tunnels to a server someone else started (``connections.RemoteConnections``) and servers
this app started for a remote file (``files.RemoteFiles``) are listed, polled, shown and
disconnected alike: the dialog polls ``status(id)``, home lists ``sessions()``, a
session's window closing disconnects it, and Quit stops them all (each one's ``close`` is
adopted by ``Servers``). Remote viewer windows get no JS bridge: they show content from
another machine.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.ipc import REMOTE, remote_key
from cellucid_desktop.remote.opening import Phase, RemoteOpen
from cellucid_desktop.remote.session import RemoteError, RemoteSession, RemoteView

if TYPE_CHECKING:
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.desktop.servers import Servers
    from cellucid_desktop.desktop.windows import Windows

log = logging.getLogger(__name__)


@dataclass
class Live:
    """One session as the dialog sees it."""

    id: str
    name: str
    session: RemoteSession | None = None  # a tunnel to a server someone else started
    opening: RemoteOpen | None = None  # or a server this app started
    state: str = "connecting"
    message: str = ""
    url: str | None = None
    announce: bool = False  # started outside the dialog (tray): a failure goes to home
    needs_token: bool = False  # failed because the remote wants its (right) access token
    detail: dict[str, Any] = field(default_factory=dict)  # OpenStatus.detail

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state,
                "message": self.message, "url": self.url, "needs_token": self.needs_token,
                "detail": self.detail}


class Sessions:
    """Every live session; ``changed()`` runs when the tray menu's windows changed."""

    def __init__(self, windows: Windows, servers: Servers, notices: Notices, *,
                 changed: Callable[[], None]) -> None:
        self._windows = windows
        self._servers = servers
        self._notices = notices
        self._changed = changed
        self._live: dict[str, Live] = {}
        self._ended: dict[str, Live] = {}  # disconnected: their last word, for status()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        windows.on_close(self._window_closed)

    def new(self, name: str, *, announce: bool = False) -> Live:
        """A session with a fresh id, not yet listed (see :meth:`add`)."""
        return Live(str(next(self._ids)), name, announce=announce)

    def add(self, live: Live, close: Callable[[], Any], work: Callable[[Live], None]) -> None:
        """List ``live``, let Quit ``close`` it, and run ``work(live)`` (connecting, then
        :meth:`show` or :meth:`failed`) in a thread of its own."""
        with self._lock:
            self._live[live.id] = live
        self._servers.adopt(remote_key(live.id), close)
        threading.Thread(target=work, args=(live,), daemon=True,
                         name=f"remote-{live.id}").start()

    def status(self, live_id: str) -> dict[str, Any]:
        """A session's state; after Disconnect, how it ended (e.g. the server kept)."""
        with self._lock:
            live = self._live.get(str(live_id)) or self._ended.get(str(live_id))
        return live.as_dict() if live else {"id": live_id, "state": "stopped", "message": ""}

    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [live.as_dict() for live in self._live.values()]

    def disconnect(self, live_id: str) -> None:
        with self._lock:
            live = self._live.pop(str(live_id), None)
            if live is None:
                return
            self._ended[live.id] = live  # status() keeps answering while it stops
        self._servers.stop(remote_key(live.id))  # a launched server says how it ended
        if live.state not in (Phase.STOPPED.value, Phase.FAILED.value,
                              Phase.SERVER_STOPPED.value):
            live.state, live.message = Phase.STOPPED.value, "Disconnected."
        self._windows.close(remote_key(live.id))
        self._changed()

    def tray_windows(self) -> list[list[str]]:
        """[window key, label] of each connected remote, for the tray's Windows menu."""
        with self._lock:
            return [[remote_key(live.id), f"{live.name} (remote)"]
                    for live in self._live.values() if live.url]

    def attempt(self, live: Live, open_view: Callable[[], RemoteView],
                on_error: Callable[[RemoteError], None]) -> RemoteView | None:
        """``open_view()``'s view; None once its failure is shown (one sentence)."""
        try:
            return open_view()
        except RemoteError as exc:
            on_error(exc)
            self.failed(live, str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, logged in full
            log.exception("Connecting to %s failed", live.name)
            self.failed(live, f"Connecting failed ({exc}); see the log.")
        return None

    def failed(self, live: Live, message: str) -> None:
        live.state, live.message = "failed", message
        self._servers.stop(remote_key(live.id))  # closed already; nothing left to own
        if live.announce:
            self._notices.announce(f"{live.name}: {message}", "error")

    def show(self, live: Live) -> None:
        """The session's viewer window, once it connected."""
        self._windows.open_viewer(remote_key(live.id), f"{live.name} — Cellucid (remote)",
                                  live.url)
        self._changed()

    def _window_closed(self, key: str) -> None:
        if key.startswith(REMOTE):
            self.disconnect(key.removeprefix(REMOTE))
