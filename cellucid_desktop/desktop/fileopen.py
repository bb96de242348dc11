"""Files handed to the app by the OS while it runs (macOS: double-click, Dock drop).

macOS does not put such files in argv: it sends an "open documents" Apple Event, which
Qt turns into a ``QFileOpenEvent`` on the QApplication. We create the QApplication
before pywebview does (pywebview reuses an existing one) and handle that event. Other
platforms pass files in argv (the second launch forwards them), so the filter is
installed everywhere but only ever fires on macOS. Tested here by sending Qt's own
event object to the application (tests/desktop/test_fileopen.py).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


def install_file_open_handler(on_open: Callable[[list[str]], Any]) -> Any:
    """Create the QApplication with ``on_open`` (run on a worker thread) receiving
    QFileOpenEvents; returns the application, which pywebview then uses."""
    import webview.platforms.qt  # noqa: F401 - WebEngine's set-up before the app exists
    from qtpy.QtCore import QEvent
    from qtpy.QtWidgets import QApplication

    class DesktopApplication(QApplication):
        def event(self, event: Any) -> bool:
            if event.type() == QEvent.Type.FileOpen:
                path = event.file() or event.url().toLocalFile()
                if path:  # never block the GUI thread: opening creates windows
                    threading.Thread(target=on_open, args=([path],), daemon=True).start()
                return True
            return super().event(event)

    existing = QApplication.instance()
    if existing is not None:
        raise RuntimeError("install_file_open_handler must run before Qt is started")
    return DesktopApplication(sys.argv)
