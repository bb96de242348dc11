"""The pywebview JS bridges (``js_api``): the only way a page reaches the app.

pywebview exposes every public method of these objects as ``window.pywebview.api.*``
and runs each call in its own thread, so blocking work (dialogs, file reads) is fine
here. Our own pages get :class:`PageApi`; viewer windows get only :class:`ViewerApi`
(saving a file the user confirms in a native dialog), because a viewer window shows
web content we do not write ourselves. The method names are listed in
``desktop/ipc.py`` (``PAGE_BRIDGE``, ``VIEWER_BRIDGE``).

``PageApi`` is assembled from one part per feature (this module's home and settings
parts, ``connect/bridge.py``, ``prompt_window.py``); each part holds only the owners it
calls, so a new dialog brings its own part instead of methods on the app.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellucid_desktop.atomic_files import atomic_write_bytes
from cellucid_desktop.data.annotated_copy import copy_with_selections
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.desktop.connect.bridge import ConnectApi
from cellucid_desktop.desktop.ipc import VIEWER, Page, viewer_key
from cellucid_desktop.desktop.prompt_window import PromptApi

if TYPE_CHECKING:
    from cellucid_desktop.desktop.connect.connections import RemoteConnections
    from cellucid_desktop.desktop.connect.files import RemoteFiles
    from cellucid_desktop.desktop.connect.sessions import Sessions
    from cellucid_desktop.desktop.datasets import Datasets
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.desktop.preferences import Preferences
    from cellucid_desktop.desktop.prompt_window import PromptWindow
    from cellucid_desktop.desktop.webapp_open import WebAppOpener
    from cellucid_desktop.desktop.windows import Windows
    from cellucid_desktop.server.registry import DatasetRegistry


class HomeApi:
    """The home window: open datasets, recent files, notices, the other windows."""

    _state: Callable[[], dict[str, Any]]
    _datasets: Datasets
    _notices: Notices
    _windows: Windows

    def state(self) -> dict[str, Any]:
        return self._state()

    def open_dialog(self) -> list[dict[str, Any]]:
        return self._datasets.choose_and_open()

    def open_folder_dialog(self) -> list[dict[str, Any]]:
        """A Zarr store is a folder: the folder dialog, then open the choice."""
        return self._datasets.choose_and_open(folder=True)

    def open_demo(self) -> list[dict[str, Any]]:
        return self._datasets.open_paths([], demo=True)

    def open_recent(self, path: str, modality: str | None = None) -> list[dict[str, Any]]:
        return self._datasets.open_recent(str(path), modality)

    def open_modality(self, dataset_id: str, modality: str) -> list[dict[str, Any]]:
        return self._datasets.open_modality(str(dataset_id), str(modality))

    def remove_recent(self, path: str) -> None:
        self._datasets.remove_recent(str(path))

    def dismiss(self, notice_id: int) -> None:
        self._notices.dismiss(int(notice_id))

    def focus(self, dataset_id: str) -> None:
        self._windows.focus(viewer_key(str(dataset_id)))

    def open_connect(self) -> None:
        self._windows.show_page(Page.CONNECT)

    def open_settings(self) -> None:
        self._windows.show_page(Page.SETTINGS)


class SettingsApi:
    _preferences: Preferences

    def save_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self._preferences.save(dict(changes))

    def clear_cache(self, kind: str) -> str:
        return self._preferences.clear_cache(str(kind))

    def show_log(self) -> None:
        self._preferences.show_log()


class WebAppProgressApi:
    _webapp: WebAppOpener

    def webapp_status(self) -> dict[str, Any]:
        """The progress window of *Open in Cellucid web app* polls this."""
        return self._webapp.status()


class PageApi(HomeApi, SettingsApi, WebAppProgressApi, ConnectApi, PromptApi):
    """Bridge of our own pages (home, settings, connect, about, progress, sign-in)."""

    def __init__(self, *, state: Callable[[], dict[str, Any]], datasets: Datasets,
                 notices: Notices, windows: Windows, preferences: Preferences,
                 webapp: WebAppOpener, remote: RemoteConnections, files: RemoteFiles,
                 sessions: Sessions, prompts: PromptWindow) -> None:
        self._state = state
        self._datasets = datasets
        self._notices = notices
        self._windows = windows
        self._preferences = preferences
        self._webapp = webapp
        self._remote = remote
        self._files = files
        self._sessions = sessions
        self._prompts = prompts


class ViewerApi:
    """Bridge of a viewer window: ``save_file`` for exports (PNG, SVG, CSV),
    ``save_dataset_copy`` (the dataset with its saved selections) and ``open_in_webapp``
    (the sidebar button), all acting only on this window's dataset."""

    def __init__(self, key: str, windows: Windows, webapp: WebAppOpener,
                 registry: DatasetRegistry) -> None:
        self._key = key
        self._windows = windows
        self._webapp = webapp
        self._registry = registry

    def save_file(self, suggested_name: str, data_base64: str, mime: str = "") -> dict[str, Any]:
        """Ask where to save (native dialog), then write the bytes there.

        Returns ``{"saved": bool, "path": str|None, "error": str|None}``; a cancelled
        dialog is ``saved: False`` with no error.
        """
        try:
            data = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return {"saved": False, "path": None, "error": "The file data was not valid base64."}
        target = self._ask_save_path(Path(str(suggested_name)).name or "export")
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
        dataset = self._registry.get(self._key.removeprefix(VIEWER))
        if dataset is None:
            return {"saved": False, "path": None, "error": "This dataset is no longer open."}
        target = self._ask_save_path(f"{dataset.id}-annotated.h5ad")
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

    def _ask_save_path(self, suggested: str) -> Path | None:
        import webview

        key = self._key if self._key in self._windows else Page.HOME
        chosen = self._windows.file_dialog(key, webview.FileDialog.SAVE,
                                           save_filename=suggested)
        if not chosen:
            return None
        return Path(chosen if isinstance(chosen, str) else chosen[0])

    def open_in_webapp(self) -> dict[str, Any]:
        """This window's dataset in the official web app (downloaded first if needed).

        Returns ``{"ok": bool, "error": str|None}``; the viewer shows the error.
        """
        return self._webapp.open(self._key.removeprefix(VIEWER))
