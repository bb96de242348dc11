"""Tunnels from the connect dialog, and the connections it saves and remembers.

Two ways in: a tunnel to a server the user started (``start`` with mode "ssh"), riding
the app's one SSH master per host (``sign_in.SignIn``), or a port already forwarded (mode
"forwarded"). Both become sessions of ``sessions.Sessions`` (status, window,
Disconnect); a remote file the app starts a server for is ``files.RemoteFiles``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.connect.launch import file_key
from cellucid_desktop.desktop.connect.sessions import Live, Sessions
from cellucid_desktop.desktop.ipc import REMOTE_FILE
from cellucid_desktop.remote.connections import (Connection, ConnectionStore, SpecError,
                                                 form_from_spec, spec_from_form)
from cellucid_desktop.remote.ports import choose_local_port
from cellucid_desktop.remote.probe import find_servers
from cellucid_desktop.remote.session import RemoteSession, TokenNeeded
from cellucid_desktop.remote.ssh_command import display_command, server_command
from cellucid_desktop.remote.ssh_process import SshError
from cellucid_desktop.remote.tunnel import TunnelState, TunnelStatus
from cellucid_desktop.server.access import read_token_file, token_from_text

if TYPE_CHECKING:
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.remote.master import MasterPool

TRAY_REMOTES = 8  # entries in the tray's Recent remotes menu


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
    """[key, label] for the tray's Recent remotes menu: recent remote files first (one
    click opens or reattaches), then :func:`remembered` connections."""
    files = [[REMOTE_FILE + file_key(f), f.label] for f in store.recent_files()[:TRAY_REMOTES]]
    return files + [[c.describe, c.name if c.name in c.describe else f"{c.name} — {c.describe}"]
                    for c in remembered(store)]


class RemoteConnections:
    """The dialog's tunnels and connections. ``masters()`` is the app's MasterPool;
    ``viewer()`` the Settings' viewer for remotes without a UI; ``changed()`` runs when
    the tray menu's remotes changed."""

    def __init__(self, sessions: Sessions, store: ConnectionStore, notices: Notices, *,
                 masters: Callable[[], MasterPool], viewer: Callable[[], str],
                 changed: Callable[[], None]) -> None:
        self._sessions = sessions
        self._store = store
        self._notices = notices
        self._masters = masters
        self._viewer = viewer
        self._changed = changed

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
        """Begin connecting in the background; the dialog polls the session's status.
        With ``announce`` (no dialog watching) a failure is shown on the home page."""
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
                session = RemoteSession(spec, masters=self._masters(), viewer=viewer,
                                        token=token)
                name = spec.target
        except ValueError as exc:  # SpecError, or an unusable token
            return {"ok": False, "error": str(exc)}
        except RuntimeError as exc:  # the app is quitting
            return {"ok": False, "error": f"{exc}."}
        live = self._sessions.new(str(form.get("name") or "").strip() or name,
                                  announce=announce)
        live.session = session
        session.on_status = lambda status: _on_status(live, status)
        self._sessions.add(live, session.close,  # Quit stops it
                           lambda started: self._open(started, form))
        return {"ok": True, "id": live.id}

    def save(self, name: str, form: dict[str, Any]) -> dict[str, Any]:
        try:
            kept = {"form": _without_secrets(form)}
            if form.get("mode") == "forwarded":
                connection = Connection(name, port=_forwarded_port(form), extra=kept)
            else:
                connection = Connection(name, spec_from_form(form), extra=kept)
            self._store.save(connection)
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        self._changed()
        return {"ok": True, "saved": self.saved()}

    def saved(self) -> list[dict[str, Any]]:
        return [_entry(c) for c in self._store.saved()]

    def recent(self) -> list[dict[str, Any]]:
        """Remotes that connected lately, newest first."""
        return [_entry(c) for c in self._store.recent()]

    def tray_remotes(self) -> list[list[str]]:
        return tray_remotes(self._store)

    def start_remembered(self, describe: str) -> None:
        """The tray's choice of a remembered connection: start it as the dialog starts
        a saved connection (its form through :meth:`start`); the window opens when it
        connects."""
        connection = next((c for c in remembered(self._store) if c.describe == describe),
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
        self._store.delete(name)
        self._changed()
        return self.saved()

    def find_forwarded(self) -> list[dict[str, Any]]:
        return [{"port": r.port, "message": r.message} for r in find_servers()]

    def _open(self, live: Live, form: dict[str, Any]) -> None:
        session = live.session
        assert session is not None
        view = self._sessions.attempt(live, session.open, lambda exc: setattr(
            live, "needs_token", isinstance(exc, TokenNeeded)))
        if view is None:
            return
        live.url, live.state = view.url, "connected"
        live.message = view.probe.message + ("" if view.direct else " (through a local proxy)")
        spec = session.spec
        self._store.note_used(Connection(live.name, spec,
                                         None if spec else session.local_port,
                                         extra={"form": _without_secrets(form)}))
        self._sessions.show(live)


def _on_status(live: Live, status: TunnelStatus) -> None:
    if live.state == "failed":  # final: the session's own "stopped" must not hide why
        return
    if status.state == TunnelState.CONNECTED and live.url is None:
        live.state, live.message = "connecting", "Tunnel up; checking the server..."
    else:
        live.state, live.message = status.state.value, status.message

