"""The connect page's JS-bridge methods, mixed into the pages' PageApi."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellucid_desktop.desktop.app import DesktopApp


class ConnectApi:
    """``window.pywebview.api.connect_*`` for pages/connect.html."""

    _app: DesktopApp

    def connect_preview(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._app.remote.preview(form)

    def connect_start(self, form: dict[str, Any]) -> dict[str, Any]:
        return self._app.remote.start(form)

    def connect_status(self, live_id: str) -> dict[str, Any]:
        return self._app.remote.status(live_id)

    def connect_sessions(self) -> list[dict[str, Any]]:
        return self._app.remote.sessions()

    def connect_disconnect(self, live_id: str) -> None:
        self._app.remote.disconnect(live_id)

    def connect_save(self, name: str, form: dict[str, Any]) -> dict[str, Any]:
        return self._app.remote.save(name, form)

    def connect_saved(self) -> list[dict[str, Any]]:
        return self._app.remote.saved()

    def connect_recent(self) -> list[dict[str, Any]]:
        return self._app.remote.recent()

    def connect_delete(self, name: str) -> list[dict[str, Any]]:
        return self._app.remote.delete(name)

    def connect_find(self) -> list[dict[str, Any]]:
        return self._app.remote.find_forwarded()
