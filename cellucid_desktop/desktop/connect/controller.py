"""Remote sessions started from the connect dialog, each shown in a native window.

The dialog polls ``status(id)``; a session's window closing disconnects it, and Quit
closes every session (so every ssh stops). Remote viewer windows get no JS bridge: they
show content from another machine.

Three ways in: a tunnel to a server the user started (``start`` with mode "ssh"), a
port already forwarded (mode "forwarded"), and *Open a file on the host* (mode "open",
or a plan from ``cellucid-desktop connect --open``): the app starts the server there
(login host or Slurm job, ``remote.opening.RemoteOpen``), tunnels to it and stops it on
Disconnect unless kept running. Everything over SSH rides the app's one master per host
(``sign_in.SignIn``), so its questions appear in the prompt window once per session:
*Sign in*, browsing the remote folders, opening, reconnecting.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.connect.launch import (file_entry, file_key, folder_of,
                                                     listing_view, memory_fields,
                                                     plan_from_form)
from cellucid_desktop.desktop.ipc import REMOTE, REMOTE_FILE, remote_key
from cellucid_desktop.remote.connections import (Connection, ConnectionStore, RemoteFile,
                                                 SpecError, form_from_spec, spec_from_form)
from cellucid_desktop.remote.opening import LaunchPlan, OpenStatus, Phase, RemoteOpen
from cellucid_desktop.remote.ports import choose_local_port
from cellucid_desktop.remote.probe import find_servers
from cellucid_desktop.remote.remote_files import ListError, list_dir
from cellucid_desktop.remote.session import (RemoteError, RemoteSession, RemoteView,
                                             TokenNeeded)
from cellucid_desktop.remote.ssh_command import TunnelSpec, display_command, server_command
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
        self._ended: dict[str, Live] = {}  # disconnected: their last word, for status()
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

    def browse(self, form: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        """List a folder on the form's host (None: its last folder used, else home),
        signing in first if needed; with the host's remembered choices."""
        try:
            host = spec_from_form({**form, "where": "host", "remote_socket": ""}).host
            memory = self.store.host_memory(host)
            master = self._masters().get(host)
            listing = list_dir(master, path or (memory.folders[0] if memory.folders
                                                 else None))
        except ListError as exc:
            if path is None and memory.folders:  # the last folder is gone: home then
                return self.browse(form, "~")
            return {"ok": False, "error": str(exc)}
        except (SpecError, SshError) as exc:
            return {"ok": False, "error": str(exc)}
        except RuntimeError as exc:
            return {"ok": False, "error": f"{exc}."}
        return {**listing_view(listing), "memory": memory_fields(memory),
                "recent": [file_entry(f) for f in self.store.recent_files(host)]}

    def open_file(self, form: dict[str, Any]) -> dict[str, Any]:
        """*Open* in the dialog's "open a file on the host" mode; the host remembers
        the choices (environment line, where to run, Slurm options)."""
        try:
            plan = plan_from_form(form)
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        self.store.remember_host(plan.tunnel.host, env=plan.env, program=plan.program,
                                 where=plan.where, slurm=plan.slurm)
        return self.open_plan(plan, name=str(form.get("name") or "").strip())

    def open_plan(self, plan: LaunchPlan, *, name: str = "", announce: bool = False,
                  record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start the server ``plan`` asks for (or reattach to the kept one of
        ``record``), tunnel and open it in the background; ``status`` follows it."""
        live = Live(str(next(self._ids)), name or _file_label(plan.tunnel.target, plan.path),
                    announce=announce)
        try:
            masters = self._masters()
            on_status = lambda status: self._on_open_status(live, status)  # noqa: E731
            live.opening = RemoteOpen.reattach(record, masters=masters, on_status=on_status,
                                               viewer=self._viewer()) if record else \
                RemoteOpen(plan, masters=masters, on_status=on_status, viewer=self._viewer())
        except (SpecError, RuntimeError) as exc:
            return {"ok": False, "error": str(exc)}
        with self._lock:
            self._live[live.id] = live
        self._servers.adopt(remote_key(live.id), live.opening.close)  # Quit stops it
        self._changed()  # home lists it with its progress
        threading.Thread(target=self._launch, args=(live,), daemon=True,
                         name=f"remote-{live.id}").start()
        return {"ok": True, "id": live.id}

    def remote_files(self) -> list[dict[str, Any]]:
        """Remote files opened lately (all hosts), newest first."""
        return [file_entry(f) for f in self.store.recent_files()]

    def open_remote_file(self, key: str, announce: bool = False) -> dict[str, Any]:
        """Open a recent remote file again: reattach when its server was kept running,
        else start one with what its host remembers."""
        file = next((f for f in self.store.recent_files() if file_key(f) == key), None)
        if file is None:
            return {"ok": False, "error": "That remote file is no longer in the recent "
                                          "list; open it from the connect dialog."}
        memory = self.store.host_memory(file.host)
        try:
            plan = LaunchPlan(_spec_of(file), file.path, where=file.where, env=memory.env,
                              program=memory.program,
                              slurm=memory.slurm if file.where == "slurm" else None,
                              keep_running=file.record is not None).validated()
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        return self.open_plan(plan, announce=announce, record=file.record)

    def start_remote_file(self, key: str) -> None:
        """The tray's or home window's choice: failures go to the home window."""
        started = self.open_remote_file(key, announce=True)
        if not started["ok"]:
            self._notices.announce(started["error"], "error")

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
                session = RemoteSession(spec, masters=self._masters(), viewer=viewer,
                                        token=token)
                name = spec.target
        except ValueError as exc:  # SpecError, or an unusable token
            return {"ok": False, "error": str(exc)}
        except RuntimeError as exc:  # the app is quitting
            return {"ok": False, "error": f"{exc}."}
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
        if describe.startswith(REMOTE_FILE):
            self.start_remote_file(describe.removeprefix(REMOTE_FILE))
            return
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

    def _on_status(self, live: Live, status: TunnelStatus) -> None:  # tunnel sessions
        if live.state == "failed":  # final: the session's own "stopped" must not hide why
            return
        if status.state == TunnelState.CONNECTED and live.url is None:
            live.state, live.message = "connecting", "Tunnel up; checking the server..."
        else:
            live.state, live.message = status.state.value, status.message

    def _attempt(self, live: Live, open_view: Callable[[], RemoteView],
                 on_error: Callable[[RemoteError], None]) -> RemoteView | None:
        """``open_view()``'s view; None once its failure is shown (one sentence)."""
        try:
            return open_view()
        except RemoteError as exc:
            on_error(exc)
            self._failed(live, str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, logged in full
            log.exception("Connecting to %s failed", live.name)
            self._failed(live, f"Connecting failed ({exc}); see the log.")
        return None

    def _open(self, live: Live, form: dict[str, Any]) -> None:
        session = live.session
        assert session is not None
        view = self._attempt(live, session.open, lambda exc: setattr(
            live, "needs_token", isinstance(exc, TokenNeeded)))
        if view is None:
            return
        live.url, live.state = view.url, "connected"
        live.message = view.probe.message + ("" if view.direct else " (through a local proxy)")
        spec = session.spec
        self.store.note_used(Connection(live.name, spec, None if spec else session.local_port,
                                        extra={"form": _without_secrets(form)}))
        self._show(live)

    def _on_open_status(self, live: Live, status: OpenStatus) -> None:
        live.detail = dict(status.detail)
        if status.phase == Phase.CONNECTED.value and live.url is None:
            return  # opened, but its window is not there yet (see _launch)
        live.state, live.message = status.phase, status.message
        if status.phase in (Phase.SERVER_STOPPED.value, Phase.FAILED.value) and \
                live.url is not None and live.announce:
            self._notices.announce(f"{live.name}: {status.message}", "error")

    def _launch(self, live: Live) -> None:
        opening = live.opening
        assert opening is not None

        def failed(_exc: RemoteError) -> None:
            self._forget_kept(opening)
            live.detail = dict(opening.status.detail)

        view = self._attempt(live, opening.open, failed)
        if view is None:
            return
        plan = opening.plan
        self.store.note_folder(plan.tunnel.host, folder_of(plan.path))
        self.store.note_file(RemoteFile(plan.tunnel.host, plan.path, plan.where,
                                        record=opening.record if plan.keep_running else None))
        live.url, live.state = view.url, Phase.CONNECTED.value
        live.message = opening.status.message
        self._show(live)

    def _forget_kept(self, opening: RemoteOpen) -> None:
        """A kept server that could not be reattached is gone: the recent file stays,
        without the record that said it runs."""
        if opening.status.detail.get("problem") in ("server-stopped", "no-token"):
            self.store.forget_record(opening.plan.tunnel.host, opening.plan.path)
            self._changed()

    def _failed(self, live: Live, message: str) -> None:
        live.state, live.message = "failed", message
        self._servers.stop(remote_key(live.id))  # closed already; nothing left to own
        if live.announce:
            self._notices.announce(f"{live.name}: {message}", "error")

    def _show(self, live: Live) -> None:
        self._windows.open_viewer(remote_key(live.id), f"{live.name} — Cellucid (remote)",
                                  live.url)
        self._changed()


def _file_label(host: str, path: str) -> str:
    return f"{path.rstrip('/').rsplit('/', 1)[-1] or path} — {host}"


def _spec_of(file: RemoteFile) -> TunnelSpec:
    host = file.host
    return TunnelSpec(host.target, jump=host.jump, ssh_port=host.ssh_port,
                      identity_file=host.identity_file, options=host.options,
                      config_file=host.config_file)
