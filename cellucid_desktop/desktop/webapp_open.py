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

from cellucid_desktop.desktop.ipc import Page, webapp_key
from cellucid_desktop.webapp_source import WebAppError

if TYPE_CHECKING:
    from cellucid_desktop.desktop.datasets import Datasets
    from cellucid_desktop.desktop.notices import Notices
    from cellucid_desktop.desktop.servers import Servers
    from cellucid_desktop.desktop.windows import Windows
    from cellucid_desktop.server.webapp_cache import WebAppCache

log = logging.getLogger(__name__)

PROGRESS_AFTER = 1.0  # seconds before the progress window appears
NO_DATASET = "Open a dataset first, then choose Open in Cellucid web app."


class WebAppOpener:
    """One open at a time; ``status()`` is what the progress window shows."""

    def __init__(self, datasets: Datasets, windows: Windows, servers: Servers,
                 notices: Notices) -> None:
        self._datasets = datasets
        self._windows = windows
        self._servers = servers
        self._notices = notices
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
        dataset = self._datasets.registry.get(dataset_id)
        if dataset is None:
            return {"ok": False, "error": NO_DATASET}
        key = webapp_key(dataset.id)
        with self._busy:
            if self._windows.focus(key):
                return {"ok": True, "error": None}
            self._cache = self._datasets.webapp_cache()
            self._phase = {"state": "working", "name": dataset.name, "message": ""}
            self._progress_wanted = True
            timer = threading.Timer(PROGRESS_AFTER, self._show_progress)
            timer.daemon = True
            timer.start()
            try:
                self._cache.ensure()
                self._phase["state"] = "opening"
                url = self._servers.start_webapp(key, dataset.id, self._cache)
            except WebAppError as exc:
                log.warning("Open in Cellucid web app failed: %s", exc)
                self._phase.update(state="failed", message=str(exc))
                return {"ok": False, "error": str(exc)}
            finally:
                timer.cancel()
                self._close_progress()
            self._datasets.show_in_webapp(key, dataset, url)
            self._phase["state"] = "done"
            return {"ok": True, "error": None}

    def open_from_tray(self) -> None:
        """The tray item: the current dataset; a problem goes to the home page."""
        dataset = self._datasets.current()
        result = self.open(dataset.id) if dataset is not None else \
            {"ok": False, "error": NO_DATASET}
        if not result["ok"]:
            self._notices.announce(result["error"], "error" if dataset is not None else "info")

    def _show_progress(self) -> None:
        with self._progress_lock:
            if self._progress_wanted:
                self._windows.show_page(Page.WEBAPP)

    def _close_progress(self) -> None:
        with self._progress_lock:
            self._progress_wanted = False
            self._windows.close(Page.WEBAPP)
