"""Local datasets and their viewer windows: open (dialog, drop, recent, command line),
show, and release a file when its window closes.

The registry holds what is open; this module decides how it is shown (the built-in
viewer on the app's server, or the official web app on an origin of its own, as
Settings say) and keeps the recent list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.desktop.ipc import VIEWER, WEBAPP, Page, viewer_key

if TYPE_CHECKING:
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.desktop.servers import Servers
    from cellucid_desktop.desktop.windows import Windows
    from cellucid_desktop.server.registry import Dataset, DatasetRegistry
    from cellucid_desktop.server.webapp_cache import WebAppCache
    from cellucid_desktop.settings import UserState

log = logging.getLogger(__name__)

# The file dialog's filters (pywebview's format: words and spaces, then the patterns).
# A Zarr store folder is opened with the folder dialog instead (choose_and_open).
FILE_TYPES = ("Single cell datasets (*.h5ad;*.h5mu;*.loom;*.zarr.zip;*.zip)",
              "AnnData (*.h5ad)", "MuData (*.h5mu)", "Loom (*.loom)",
              "Zipped Zarr stores (*.zarr.zip;*.zip)", "All files (*.*)")


class Datasets:
    """``viewer_api(key)`` is the JS bridge a built-in viewer window gets; ``changed()``
    runs when what is open or recent changed (tray menu, home page)."""

    def __init__(self, registry: DatasetRegistry, user: UserState, windows: Windows,
                 servers: Servers, notices: Notices, *,
                 viewer_api: Callable[[str], object], changed: Callable[[], None]) -> None:
        self.registry = registry
        self.user = user
        self._windows = windows
        self._servers = servers
        self._notices = notices
        self._viewer_api = viewer_api
        self._changed = changed
        self._modality_names: dict[tuple[str, str], list[str]] = {}  # recent MuData files
        self._lock = threading.Lock()
        windows.on_close(self._closed)

    # ----- opening ----------------------------------------------------------------------

    def open_paths(self, files: list[str], demo: bool = False,
                   modality: str | None = None) -> list[dict[str, Any]]:
        """Register each file or store and show its viewer; errors go to the home window.
        ``modality`` picks a MuData modality (default: the expression one)."""
        results = [self._open_one(Path(f), modality=modality) for f in files]
        if demo:
            from cellucid_desktop.data.demo import demo_path

            results.append(self._open_one(demo_path(), remember=False))
        self._windows.refresh(Page.HOME)
        return results

    def _open_one(self, path: Path, remember: bool = True,
                  modality: str | None = None) -> dict[str, Any]:
        try:
            dataset = self.registry.add(path, modality=modality)
        except DatasetError as exc:
            log.warning("Could not open %s: %s", path, exc)
            self._notices.announce(str(exc), "error")
            return {"path": str(path), "ok": False, "error": str(exc)}
        if remember:
            self.user.add_recent(dataset.source.local_path or path)
        self.show_viewer(dataset)
        return {"path": str(path), "ok": True, "id": dataset.id, "name": dataset.name}

    def open_recent(self, path: str, modality: str | None = None) -> list[dict[str, Any]]:
        """Only a path that is on the recent list (a page cannot name any file)."""
        if path not in self.user.recent():
            return []
        return self.open_paths([path], modality=modality or None)

    def open_modality(self, dataset_id: str, modality: str) -> list[dict[str, Any]]:
        """Another modality of an open MuData dataset, in a viewer of its own."""
        dataset = self.registry.get(dataset_id)
        if dataset is None or dataset.source.local_path is None:
            return []
        return self.open_paths([str(dataset.source.local_path)], modality=modality)

    def choose_and_open(self, folder: bool = False) -> list[dict[str, Any]]:
        """Native multi-select file dialog, filtered to dataset files, then open the
        choices; ``folder`` asks for a Zarr store folder instead."""
        import webview

        if folder:
            chosen = self._windows.file_dialog(Page.HOME, webview.FileDialog.FOLDER)
        else:
            chosen = self._windows.file_dialog(Page.HOME, webview.FileDialog.OPEN,
                                               allow_multiple=True, file_types=FILE_TYPES)
        return self.open_paths(list(chosen or []))

    def open_dialog(self) -> None:
        """The file dialog without blocking the caller (tray, control route)."""
        self._windows.focus(Page.HOME)
        threading.Thread(target=self.choose_and_open, daemon=True).start()

    def remove_recent(self, path: str) -> None:
        self.user.remove_recent(path)
        self._changed()

    # ----- showing ----------------------------------------------------------------------

    def show_viewer(self, dataset: Dataset) -> None:
        """Open a window on the dataset, or focus the one already showing it."""
        key = viewer_key(dataset.id)
        with self._lock:
            exists = key in self._windows
            if not exists:
                self._windows.open_viewer(key, dataset.name, self._viewer_url(key, dataset),
                                          js_api=self._viewer_api(key))
                log.info("Opened %s (%s)", dataset.id, dataset.source.label)
        if exists:
            self._windows.focus(key)
        self._changed()

    def _viewer_url(self, key: str, dataset: Dataset) -> str:
        """The built-in viewer on our server, or the official web app on an origin of its
        own (server/webapp_assets.py) when chosen in Settings and downloaded."""
        if self.user.settings.default_viewer == "webapp":
            from cellucid_desktop.webapp_source import WebAppError

            try:
                return self._servers.start_webapp(key, dataset.id, self.webapp_cache())
            except WebAppError as exc:
                self._notices.notify(f"{exc} {dataset.name} is shown in the built-in "
                                     "viewer.", "warning")
        return self._servers.page_url(f"/?dataset={dataset.id}")

    def show_in_webapp(self, key: str, dataset: Dataset, url: str) -> None:
        """The web app (already served at ``url`` for ``key``) in a window of its own."""
        self._windows.open_viewer(key, f"{dataset.name} — Cellucid web app", url,
                                  js_api=self._viewer_api(key))
        log.info("Opened %s in the web app", dataset.id)
        self._changed()

    def webapp_cache(self) -> WebAppCache:
        """The web-app cache for the source chosen in Settings."""
        from cellucid_desktop.server.webapp_cache import WebAppCache

        return WebAppCache(source_url=self.user.settings.webapp_source)

    def current(self) -> Dataset | None:
        """The dataset of the last focused or opened built-in viewer, if still open."""
        key = self._windows.latest(VIEWER)
        return self.registry.get(key.removeprefix(VIEWER)) if key else None

    # ----- what the pages and the tray list ---------------------------------------------

    def recent_entries(self) -> list[dict[str, Any]]:
        return [{**e, "modalities": self._modalities(e["path"])}
                for e in self.user.recent_entries()]

    def open_entries(self) -> list[dict[str, Any]]:
        return [{"id": d.id, "name": d.name, "modality": d.source.modality,
                 "modalities": list(d.source.modalities)} for d in self.registry.all()]

    def _modalities(self, path: str) -> list[str]:
        """A recent MuData file's modalities (read once per file version), else []."""
        if not path.lower().endswith(".h5mu"):
            return []
        from cellucid_desktop.data.local_source import open_local
        from cellucid_desktop.data.reader import file_identity

        try:
            key = (path, file_identity(path))
            if key not in self._modality_names:
                self._modality_names[key] = list(open_local(path).modalities)
            return self._modality_names[key]
        except (OSError, DatasetError):
            return []

    def _closed(self, key: str) -> None:
        """A viewer window closed: release its dataset."""
        if key.startswith(VIEWER):
            dataset_id = key.removeprefix(VIEWER)
            self.registry.remove(dataset_id)
            log.info("Closed %s", dataset_id)
            self._changed()
        elif key.startswith(WEBAPP):
            self._changed()
