"""*Open in Cellucid web app*: the official web app for one open dataset, on demand.

The tray item and the built-in viewer's sidebar button (bridge method
``open_in_webapp``) both land in :meth:`WebAppOpener.open`. It first makes sure the web
app is cached (``WebAppCache.ensure``: a fresh verified cache is reused, offline too,
otherwise the source from Settings is checked and the build downloaded); when that
takes longer than a second, a small progress window polls :meth:`WebAppOpener.status`.
Then the web app opens in a window of its own (key ``webapp:<dataset id>``) on an
origin of its own, next to the built-in viewer, which stays open. A failure is one
sentence, returned to the viewer (shown as its toast) or, from the tray, shown on the
home page.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from cellucid_desktop.webapp_source import WebAppError

if TYPE_CHECKING:
    from cellucid_desktop.desktop.app import DesktopApp
    from cellucid_desktop.server.webapp_cache import WebAppCache

log = logging.getLogger(__name__)

PROGRESS_AFTER = 1.0  # seconds before the progress window appears
PROGRESS_PAGE = "webapp"
NO_DATASET = "Open a dataset first, then choose Open in Cellucid web app."


class WebAppOpener:
    """One open at a time; ``status()`` is what the progress window shows."""

    def __init__(self, app: DesktopApp) -> None:
        self._app = app
        self._busy = threading.Lock()  # one open (and one download) at a time
        self._progress_lock = threading.Lock()  # the progress window's show/close
        self._progress_wanted = False
        self._cache: WebAppCache | None = None
        self._phase = {"state": "idle", "name": "", "message": ""}

    def status(self) -> dict[str, Any]:
        """``state``: idle, checking, downloading, opening, done or failed; bytes so far."""
        phase: dict[str, Any] = dict(self._phase)
        fetch = self._cache.status() if self._cache is not None else None
        if phase["state"] == "working":
            phase["state"] = "downloading" if fetch and fetch.state == "downloading" \
                else "checking"
        phase["done_bytes"] = fetch.done_bytes if fetch else 0
        phase["total_bytes"] = fetch.total_bytes if fetch else 0
        return phase

    def open(self, dataset_id: str) -> dict[str, Any]:
        """Blocking (call from a worker thread): ``{"ok": bool, "error": str | None}``."""
        dataset = self._app.registry.get(dataset_id)
        if dataset is None:
            return {"ok": False, "error": NO_DATASET}
        key = f"webapp:{dataset.id}"
        with self._busy:
            if self._app.focus(key):
                return {"ok": True, "error": None}
            self._cache = self._app.webapp_cache()
            self._phase = {"state": "working", "name": dataset.name, "message": ""}
            self._progress_wanted = True
            timer = threading.Timer(PROGRESS_AFTER, self._show_progress)
            timer.daemon = True
            timer.start()
            try:
                self._cache.ensure()
                self._phase["state"] = "opening"
                url = self._app.start_webapp(key, dataset)
            except WebAppError as exc:
                log.warning("Open in Cellucid web app failed: %s", exc)
                self._phase.update(state="failed", message=str(exc))
                return {"ok": False, "error": str(exc)}
            finally:
                timer.cancel()
                self._close_progress()
            self._app.show_webapp_window(key, dataset, url)
            self._phase["state"] = "done"
            return {"ok": True, "error": None}

    def open_from_tray(self) -> None:
        """The tray item: the current dataset; a problem goes to the home page."""
        dataset = self._app.current_dataset()
        result = self.open(dataset.id) if dataset is not None else \
            {"ok": False, "error": NO_DATASET}
        if not result["ok"]:
            self._app.notify(result["error"], "error" if dataset is not None else "info")
            self._app.show_home()

    def _show_progress(self) -> None:
        with self._progress_lock:
            if self._progress_wanted:
                self._app.show_webapp_progress()

    def _close_progress(self) -> None:
        with self._progress_lock:
            self._progress_wanted = False
            self._app.close_window(PROGRESS_PAGE)
