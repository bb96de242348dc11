"""The connect page's JS-bridge methods, mixed into the pages' PageApi."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellucid_desktop.desktop.connect.connections import RemoteConnections
    from cellucid_desktop.desktop.connect.files import RemoteFiles
    from cellucid_desktop.desktop.connect.sessions import Sessions


class ConnectApi:
    """``window.pywebview.api.connect_*`` for pages/connect.html."""

    _remote: RemoteConnections
    _files: RemoteFiles
    _sessions: Sessions

    def connect_preview(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._remote.preview(form)

    def connect_sign_in(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._remote.sign_in(form)

    def connect_browse(self, form: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        return self._files.browse(form, str(path) if path else None)

    def connect_open(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._files.open_file(form)

    def open_remote_file(self, key: str) -> None:
        """The home window's recent remote files: progress and problems show there."""
        self._files.start_recent(str(key))

    def connect_start(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._remote.start(form)

    def connect_status(self, live_id: str) -> dict[str, Any]:
        return self._sessions.status(live_id)

    def connect_sessions(self) -> list[dict[str, Any]]:
        return self._sessions.sessions()

    def connect_disconnect(self, live_id: str) -> None:
        self._sessions.disconnect(live_id)

    def connect_save(self, name: str, form: dict[str, Any]) -> dict[str, Any]:
        return self._remote.save(name, form)

    def connect_saved(self) -> list[dict[str, Any]]:
        return self._remote.saved()

    def connect_recent(self) -> list[dict[str, Any]]:
        return self._remote.recent()

    def connect_delete(self, name: str) -> list[dict[str, Any]]:
        return self._remote.delete(name)

    def connect_find(self) -> list[dict[str, Any]]:
        return self._remote.find_forwarded()
