"""The one owner of the notices the home window shows as banners.

Anything that goes wrong where no dialog is watching (a damaged file, a busy port, a
remote chosen in the tray that failed) ends here as one sentence, so the user sees it in
a window and not only in the log.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.ipc import Page

if TYPE_CHECKING:
    from cellucid_desktop.desktop.windows import Windows

KEEP = 5  # the last few are enough


class Notices:
    """``notify`` adds a banner (the home page re-reads its state); ``announce`` also
    brings the home window forward, for problems no other window shows."""

    def __init__(self, windows: Windows) -> None:
        self._windows = windows
        self._ids = itertools.count(1)
        self._notices: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def notify(self, text: str, level: str = "info") -> None:
        with self._lock:
            self._notices.append({"id": next(self._ids), "level": level, "text": text})
            del self._notices[:-KEEP]
        self._windows.refresh(Page.HOME)

    def announce(self, text: str, level: str = "error") -> None:
        self.notify(text, level)
        self._windows.focus(Page.HOME)

    def dismiss(self, notice_id: int) -> None:
        with self._lock:
            self._notices = [n for n in self._notices if n["id"] != notice_id]

    def current(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._notices)
