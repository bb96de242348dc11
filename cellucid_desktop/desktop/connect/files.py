"""*Open a file on the host*: the app starts the server there and shows it.

From the dialog's "open" mode, a recent remote file (home or tray), or a plan from
``cellucid-desktop connect --open``: browse the host's folders, start the server on the
login host or as a Slurm job (``remote.opening.RemoteOpen``), tunnel to it, and stop it
on Disconnect unless kept running (then the recent file remembers how to reattach).
Everything rides the app's one SSH master per host (``sign_in.SignIn``), so its
questions appear in the prompt window once per session. The host remembers the
choices: environment line, where to run, Slurm options, last folders.
"""

from __future__ import annotations

from typing import Any

from cellucid_desktop.desktop.connect.launch import (file_entry, file_key, folder_of,
                                                     listing_view, memory_fields,
                                                     plan_from_form)
from cellucid_desktop.desktop.connect.sessions import Live, SessionStarter
from cellucid_desktop.remote.connections import RemoteFile, SpecError, spec_from_form
from cellucid_desktop.remote.opening import LaunchPlan, OpenStatus, Phase, RemoteOpen
from cellucid_desktop.remote.remote_files import ListError, list_dir
from cellucid_desktop.remote.session import RemoteError
from cellucid_desktop.remote.ssh_command import TunnelSpec
from cellucid_desktop.remote.ssh_process import SshError


class RemoteFiles(SessionStarter):
    """Remote files this app starts (or reattaches) a server for."""

    def browse(self, form: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        """List a folder on the form's host (None: its last folder used, else home),
        signing in first if needed; with the host's remembered choices."""
        try:
            host = spec_from_form({**form, "where": "host", "remote_socket": ""}).host
            memory = self._store.host_memory(host)
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
                "recent": [file_entry(f) for f in self._store.recent_files(host)]}

    def open_file(self, form: dict[str, Any]) -> dict[str, Any]:
        """*Open* in the dialog's "open a file on the host" mode; the host remembers
        the choices (environment line, where to run, Slurm options)."""
        try:
            plan = plan_from_form(form)
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        self._store.remember_host(plan.tunnel.host, env=plan.env, program=plan.program,
                                  where=plan.where, slurm=plan.slurm)
        return self.open_plan(plan, name=str(form.get("name") or "").strip())

    def open_plan(self, plan: LaunchPlan, *, name: str = "", announce: bool = False,
                  record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start the server ``plan`` asks for (or reattach to the kept one of
        ``record``), tunnel and open it in the background; ``status`` follows it."""
        live = self._sessions.new(name or _file_label(plan.tunnel.target, plan.path),
                                  announce=announce)
        try:
            masters = self._masters()
            on_status = lambda status: self._on_status(live, status)  # noqa: E731
            live.opening = RemoteOpen.reattach(record, masters=masters, on_status=on_status,
                                               viewer=self._viewer()) if record else \
                RemoteOpen(plan, masters=masters, on_status=on_status, viewer=self._viewer())
        except (SpecError, RuntimeError) as exc:
            return {"ok": False, "error": str(exc)}
        self._sessions.add(live, live.opening.close, self._launch)  # Quit stops it
        self._changed()  # home lists it with its progress
        return {"ok": True, "id": live.id}

    def recent(self) -> list[dict[str, Any]]:
        """Remote files opened lately (all hosts), newest first."""
        return [file_entry(f) for f in self._store.recent_files()]

    def open_recent(self, key: str, announce: bool = False) -> dict[str, Any]:
        """Open a recent remote file again: reattach when its server was kept running,
        else start one with what its host remembers."""
        file = next((f for f in self._store.recent_files() if file_key(f) == key), None)
        if file is None:
            return {"ok": False, "error": "That remote file is no longer in the recent "
                                          "list; open it from the connect dialog."}
        memory = self._store.host_memory(file.host)
        try:
            plan = LaunchPlan(TunnelSpec.on(file.host), file.path, where=file.where, env=memory.env,
                              program=memory.program,
                              slurm=memory.slurm if file.where == "slurm" else None,
                              keep_running=file.record is not None).validated()
        except SpecError as exc:
            return {"ok": False, "error": str(exc)}
        return self.open_plan(plan, announce=announce, record=file.record)

    def start_recent(self, key: str) -> None:
        """The tray's or home window's choice: failures go to the home window."""
        started = self.open_recent(key, announce=True)
        if not started["ok"]:
            self._notices.announce(started["error"], "error")

    def _on_status(self, live: Live, status: OpenStatus) -> None:
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

        view = self._sessions.attempt(live, opening.open, failed)
        if view is None:
            return
        plan = opening.plan
        self._store.note_folder(plan.tunnel.host, folder_of(plan.path))
        self._store.note_file(RemoteFile(plan.tunnel.host, plan.path, plan.where,
                                         record=opening.record if plan.keep_running else None))
        live.url, live.state = view.url, Phase.CONNECTED.value
        live.message = opening.status.message
        self._sessions.show(live)

    def _forget_kept(self, opening: RemoteOpen) -> None:
        """A kept server that could not be reattached is gone: the recent file stays,
        without the record that said it runs."""
        if opening.status.detail.get("problem") in ("server-stopped", "no-token"):
            self._store.forget_record(opening.plan.tunnel.host, opening.plan.path)
            self._changed()


def _file_label(host: str, path: str) -> str:
    return f"{path.rstrip('/').rsplit('/', 1)[-1] or path} — {host}"
