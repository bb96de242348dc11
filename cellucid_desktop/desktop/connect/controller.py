"""Remote sessions started from the connect dialog, each shown in a native window.

The dialog polls ``status(id)``; a session's window closing disconnects it, and Quit
closes every session (so every ssh stops). Remote viewer windows get no JS bridge: they
show content from another machine. *Sign in* opens the app's master connection to the
form's host (``sign_in.SignIn``), its questions in the prompt window, before anything is
run there.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.ipc import REMOTE, remote_key

from cellucid_desktop.remote.connections import (Connection, ConnectionStore, SpecError,
                                                 form_from_spec, spec_from_form)
from cellucid_desktop.remote.ports import choose_local_port
from cellucid_desktop.remote.probe import find_servers
from cellucid_desktop.remote.session import RemoteError, RemoteSession, TokenNeeded
from cellucid_desktop.remote.ssh_command import display_command, server_command
from cellucid_desktop.remote.ssh_process import SshError
from cellucid_desktop.remote.tunnel import TunnelState, TunnelStatus
from cellucid_desktop.server.access import read_token_file, token_from_text

if TYPE_CHECKING:
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.desktop.servers import Servers
    from cellucid_desktop.desktop.windows import Windows
    from cellucid_desktop.remote.master import MasterPool

log = logging.getLogger(__name__)

TRAY_REMOTES = 8  # entries in the tray's Recent remotes menu


@dataclass
class Live:
    """One session as the dialog sees it."""

    id: str
    name: str
    session: RemoteSession
    state: str = "connecting"
    message: str = ""
    url: str | None = None
    announce: bool = False  # started outside the dialog (tray): a failure goes to home
    needs_token: bool = False  # failed because the remote wants its (right) access token

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state,
                "message": self.message, "url": self.url, "needs_token": self.needs_token}


def _entry(connection: Connection) -> dict[str, Any]:
    return {"name": connection.name, "describe": connection.describe,
            "form": connection.extra.get("form", {})}


def _without_secrets(form: dict[str, Any]) -> dict[str, Any]:
    """The form as saved: a pasted token is never written to disk (a token file's path
    is, like a key file's)."""
    return {k: v for k, v in form.items() if k != "token"}


def _token(form: dict[str, Any]) -> str | None:
    """The remote's access token: pasted (token or Viewer URL), else from the token
    file; ValueError with a sentence."""
    pasted = token_from_text(str(form.get("token") or ""))
    if pasted is not None:
        return pasted
    file = str(form.get("token_file") or "").strip()
    return read_token_file(file) if file else None


def _forwarded_port(form: dict[str, Any]) -> int:
    text = str(form.get("forwarded_port") or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SpecError(f"Local port must be a number between 1 and 65535, not {text!r}")
    return int(text)


def remembered(store: ConnectionStore) -> list[Connection]:
    """Saved and recent connections, one per remote, most recently used first (a saved
    one never used sorts after those that were), at most TRAY_REMOTES."""
    recent = store.recent()
    used = {c.describe: c.last_used for c in recent}
    saved = store.saved()
    names = {c.describe for c in saved}
    entries = saved + [c for c in recent if c.describe not in names]
    entries.sort(key=lambda c: used.get(c.describe, 0.0), reverse=True)
    return entries[:TRAY_REMOTES]


def tray_remotes(store: ConnectionStore) -> list[list[str]]:
    """[key, label] of :func:`remembered`, for the tray's Recent remotes menu."""
    return [[c.describe, c.name if c.name in c.describe else f"{c.name} — {c.describe}"]
            for c in remembered(store)]


class RemoteConnections:
    """The dialog's sessions. ``masters()`` is the app's MasterPool; ``viewer()`` the
    Settings' viewer for remotes without a UI; ``changed()`` runs when the tray menu's
    remotes or windows changed."""

    def __init__(self, windows: Windows, servers: Servers, notices: Notices, *,
                 masters: Callable[[], MasterPool], viewer: Callable[[], str],
                 changed: Callable[[], None]) -> None:
        self._windows = windows
        self._servers = servers
        self._notices = notices
        self._masters = masters
        self._viewer = viewer
        self._changed = changed
        self.store = ConnectionStore()
        self._live: dict[str, Live] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        windows.on_close(self._window_closed)

    # -- the dialog's calls ------------------------------------------------------------

    def preview(self, form: dict[str, Any]) -> dict[str, Any]:
        """The command lines for the current fields, or the first field error."""
        try:
            if form.get("mode") == "forwarded":
                port = _forwarded_port(form)
                return {"ok": True, "command": f"(already forwarded) http://127.0.0.1:{port}",
                        "server_command": ""}
            spec = spec_from_form(form)
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        local = choose_local_port(spec.remote_port, spec.local_port)
        program = "cellucid-desktop" if form.get("program") == "cellucid-desktop" \
            or spec.remote_socket else "cellucid"
        data = str(form.get("data_path") or "").strip() or "data.h5ad"
        return {"ok": True, "command": display_command(spec, local), "local_port": local,
                "server_command": server_command(data, spec.remote_port, program=program,
                                                 offline=bool(form.get("offline")),
                                                 socket=spec.remote_socket)}

    def sign_in(self, form: dict[str, Any]) -> dict[str, Any]:
        """Sign in to the form's SSH host (blocking: the bridge runs it in a thread of its
        own while the prompt window asks); ``{"ok", "message" | "error"}``. A host already
        signed in to answers at once, asking nothing."""
        if form.get("mode") == "forwarded":
            return {"ok": False, "error": "An already forwarded port needs no sign-in."}
        try:
            spec = spec_from_form(form)
            self._masters().get(spec.host)
        except (SpecError, SshError) as exc:
            return {"ok": False, "error": str(exc)}
        except RuntimeError as exc:  # the app is quitting
            return {"ok": False, "error": f"{exc}."}
        return {"ok": True, "message": f"Signed in to {spec.target}."}

    def start(self, form: dict[str, Any], announce: bool = False) -> dict[str, Any]:
        """Begin connecting in the background; the dialog polls ``status``. With
        ``announce`` (no dialog watching) a failure is shown on the home page."""
        viewer = self._viewer()
        try:
            token = _token(form)
            if form.get("mode") == "forwarded":
                port = _forwarded_port(form)
                remote = str(form.get("remote_port") or "").strip()
                session = RemoteSession(port=port,
                                        remote_port=int(remote) if remote.isdigit() else None,
                                        viewer=viewer, token=token)
                name = f"127.0.0.1:{port}"
            else:
                spec = spec_from_form(form)
                session = RemoteSession(spec, viewer=viewer, token=token)
                name = spec.target
        except ValueError as exc:  # SpecError, or an unusable token
            return {"ok": False, "error": str(exc)}
        live = Live(str(next(self._ids)), str(form.get("name") or "").strip() or name, session,
                    announce=announce)
        session.on_status = lambda status: self._on_status(live, status)
        with self._lock:
            self._live[live.id] = live
        self._servers.adopt(remote_key(live.id), session.close)  # Quit stops it
        threading.Thread(target=self._open, args=(live, form), daemon=True,
                         name=f"remote-{live.id}").start()
        return {"ok": True, "id": live.id}

    def status(self, live_id: str) -> dict[str, Any]:
        live = self._live.get(str(live_id))
        return live.as_dict() if live else {"id": live_id, "state": "stopped", "message": ""}

    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [live.as_dict() for live in self._live.values()]

    def disconnect(self, live_id: str) -> None:
        with self._lock:
            live = self._live.pop(str(live_id), None)
        if live is None:
            return
        self._servers.stop(remote_key(live.id))
        self._windows.close(remote_key(live.id))
        self._changed()

    def _window_closed(self, key: str) -> None:
        if key.startswith(REMOTE):
            self.disconnect(key.removeprefix(REMOTE))

    def save(self, name: str, form: dict[str, Any]) -> dict[str, Any]:
        try:
            kept = {"form": _without_secrets(form)}
            if form.get("mode") == "forwarded":
                connection = Connection(name, port=_forwarded_port(form), extra=kept)
            else:
                connection = Connection(name, spec_from_form(form), extra=kept)
            self.store.save(connection)
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        self._changed()
        return {"ok": True, "saved": self.saved()}

    def saved(self) -> list[dict[str, Any]]:
        return [_entry(c) for c in self.store.saved()]

    def recent(self) -> list[dict[str, Any]]:
        """Remotes that connected lately, newest first."""
        return [_entry(c) for c in self.store.recent()]

    def tray_windows(self) -> list[list[str]]:
        """[window key, label] of each connected remote, for the tray's Windows menu."""
        with self._lock:
            return [[remote_key(live.id), f"{live.name} (remote)"]
                    for live in self._live.values() if live.url]

    def tray_remotes(self) -> list[list[str]]:
        return tray_remotes(self.store)

    def start_remembered(self, describe: str) -> None:
        """The tray's choice: start it as the dialog starts a saved connection (its
        form through :meth:`start`); the window opens when it connects."""
        connection = next((c for c in remembered(self.store) if c.describe == describe),
                          None)
        if connection is None:
            self._notices.announce("That remote is no longer saved; connect to it again.",
                                   "warning")
            return
        form = dict(connection.extra.get("form") or (
            form_from_spec(connection.spec) if connection.spec else
            {"mode": "forwarded", "forwarded_port": str(connection.port)}))
        form["name"] = connection.name
        started = self.start(form, announce=True)
        if not started["ok"]:
            self._notices.announce(started["error"], "error")

    def delete(self, name: str) -> list[dict[str, Any]]:
        self.store.delete(name)
        self._changed()
        return self.saved()

    def find_forwarded(self) -> list[dict[str, Any]]:
        return [{"port": r.port, "message": r.message} for r in find_servers()]

    # -- background ----------------------------------------------------------------------

    def _on_status(self, live: Live, status: TunnelStatus) -> None:
        if live.state == "failed":  # final: the session's own "stopped" must not hide why
            return
        if status.state == TunnelState.CONNECTED and live.url is None:
            live.state, live.message = "connecting", "Tunnel up; checking the server..."
        else:
            live.state, live.message = status.state.value, status.message

    def _open(self, live: Live, form: dict[str, Any]) -> None:
        try:
            view = live.session.open()
        except RemoteError as exc:
            live.needs_token = isinstance(exc, TokenNeeded)
            self._failed(live, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, logged in full
            log.exception("Connecting failed")
            self._failed(live, f"Connecting failed ({exc}); see the log.")
            return
        live.url, live.state = view.url, "connected"
        live.message = view.probe.message + ("" if view.direct else " (through a local proxy)")
        spec = live.session.spec
        self.store.note_used(Connection(live.name, spec, None if spec else live.session.local_port,
                                        extra={"form": _without_secrets(form)}))
        self._show(live)

    def _failed(self, live: Live, message: str) -> None:
        live.state, live.message = "failed", message
        self._servers.stop(remote_key(live.id))  # closed already; nothing left to own
        if live.announce:
            self._notices.announce(f"{live.name}: {message}", "error")

    def _show(self, live: Live) -> None:
        self._windows.open_viewer(remote_key(live.id), f"{live.name} — Cellucid (remote)",
                                  live.url)
        self._changed()
