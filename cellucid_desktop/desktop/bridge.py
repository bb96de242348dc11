"""The pywebview JS bridges (``js_api``): the only way a page reaches the app.

pywebview exposes every public method of these objects as ``window.pywebview.api.*``
and runs each call in its own thread, so blocking work (dialogs, file reads) is fine
here. Our own pages get :class:`PageApi`; viewer windows get only :class:`ViewerApi`
(saving a file the user confirms in a native dialog), because a viewer window shows
web content we do not write ourselves.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.connect.bridge import ConnectApi
from cellucid_desktop.atomic_files import atomic_write_bytes
from cellucid_desktop.data.annotated_copy import copy_with_selections
from cellucid_desktop.data.errors import DatasetError

if TYPE_CHECKING:
    from cellucid_desktop.desktop.app import DesktopApp


class PageApi(ConnectApi):
    """Bridge of the home, settings, connect and about pages."""

    def __init__(self, app: DesktopApp) -> None:
        self._app = app

    def state(self) -> dict[str, Any]:
        return self._app.page_state()

    def open_dialog(self) -> list[dict[str, Any]]:
        return self._app.choose_and_open()

    def open_folder_dialog(self) -> list[dict[str, Any]]:
        """A Zarr store is a folder: the folder dialog, then open the choice."""
        return self._app.choose_and_open(folder=True)

    def open_demo(self) -> list[dict[str, Any]]:
        return self._app.open_paths([], demo=True)

    def open_recent(self, path: str, modality: str | None = None) -> list[dict[str, Any]]:
        if path not in self._app.user.recent():
            return []
        return self._app.open_paths([path], modality=modality or None)

    def open_modality(self, dataset_id: str, modality: str) -> list[dict[str, Any]]:
        return self._app.open_modality(str(dataset_id), str(modality))

    def remove_recent(self, path: str) -> None:
        self._app.user.remove_recent(path)
        self._app.recent_changed()

    def dismiss(self, notice_id: int) -> None:
        self._app.dismiss_notice(int(notice_id))

    def open_connect(self) -> None:
        self._app.open_connect_dialog()

    def open_settings(self) -> None:
        self._app.show_settings()

    def save_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self._app.save_settings(changes)

    def clear_cache(self, kind: str) -> str:
        return self._app.clear_cache(kind)

    def show_log(self) -> None:
        self._app.show_log()

    def focus(self, dataset_id: str) -> None:
        self._app.focus(f"viewer:{dataset_id}")

    def webapp_status(self) -> dict[str, Any]:
        """The progress window of *Open in Cellucid web app* polls this."""
        return self._app.webapp.status()


class ViewerApi:
    """Bridge of a viewer window: ``save_file`` for exports (PNG, SVG, CSV),
    ``save_dataset_copy`` (the dataset with its saved selections) and ``open_in_webapp``
    (the sidebar button), all acting only on this window's dataset."""

    def __init__(self, app: DesktopApp, key: str) -> None:
        self._app = app
        self._key = key

    def save_file(self, suggested_name: str, data_base64: str, mime: str = "") -> dict[str, Any]:
        """Ask where to save (native dialog), then write the bytes there.

        Returns ``{"saved": bool, "path": str|None, "error": str|None}``; a cancelled
        dialog is ``saved: False`` with no error.
        """
        try:
            data = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return {"saved": False, "path": None, "error": "The file data was not valid base64."}
        target = self._app.ask_save_path(self._key, Path(str(suggested_name)).name or "export")
        if target is None:
            return {"saved": False, "path": None, "error": None}
        try:
            atomic_write_bytes(target, data)
        except OSError as exc:
            return {"saved": False, "path": str(target),
                    "error": f"Could not save {target.name}: {exc.strerror or exc}."}
        return {"saved": True, "path": str(target), "error": None}

    def save_dataset_copy(self) -> dict[str, Any]:
        """Ask where (native dialog), then write a copy of this window's dataset with its
        saved selections added as obs columns (never touching the dataset itself).

        Returns ``{"saved": bool, "path": str|None, "error": str|None}``; a cancelled
        dialog is ``saved: False`` with no error.
        """
        dataset = self._app.registry.get(self._key.removeprefix("viewer:"))
        if dataset is None:
            return {"saved": False, "path": None, "error": "This dataset is no longer open."}
        target = self._app.ask_save_path(self._key, f"{dataset.id}-annotated.h5ad")
        if target is None:
            return {"saved": False, "path": None, "error": None}
        try:
            copy_with_selections(dataset.source, target)
        except DatasetError as exc:
            return {"saved": False, "path": str(target), "error": str(exc)}
        except OSError as exc:
            return {"saved": False, "path": str(target),
                    "error": f"Could not save {target.name}: {exc.strerror or exc}."}
        return {"saved": True, "path": str(target), "error": None}

    def open_in_webapp(self) -> dict[str, Any]:
        """This window's dataset in the official web app (downloaded first if needed).

        Returns ``{"ok": bool, "error": str|None}``; the viewer shows the error.
        """
        return self._app.webapp.open(self._key.removeprefix("viewer:"))
