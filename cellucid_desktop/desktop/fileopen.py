"""Files handed to the app by the OS while it runs (macOS: double-click, Dock drop).

macOS does not put such files in argv: it sends an "open documents" Apple Event, which
Qt turns into a ``QFileOpenEvent`` on the QApplication. We create the QApplication
before pywebview does (pywebview reuses an existing one) and filter that event. Other
platforms pass files in argv (the second launch forwards them), so the filter is
installed everywhere but only ever fires on macOS. Tested here by sending Qt's own
event object to the filter (tests/desktop/test_fileopen.py).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


def install_file_open_handler(on_open: Callable[[list[str]], Any]) -> Any:
    """Route QFileOpenEvents to ``on_open`` (on a worker thread); returns the filter,
    which the caller keeps alive."""
    import webview.platforms.qt  # noqa: F401 - sets WebEngine's attributes before the app exists
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QApplication

    class FileOpenFilter(QObject):
        def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
            if event.type() != QEvent.Type.FileOpen:
                return False
            path = event.file() or event.url().toLocalFile()
            if path:  # never block the GUI thread: opening creates windows
                threading.Thread(target=on_open, args=([path],), daemon=True).start()
            return True

    app = QApplication.instance() or QApplication(sys.argv)
    event_filter = FileOpenFilter(app)
    app.installEventFilter(event_filter)
    return event_filter
