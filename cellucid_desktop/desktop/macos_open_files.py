"""macOS: hand files opened from Finder (double-click, *Open With*, drop on the Dock icon)
to the app. They arrive as an open-documents Apple event, never in argv.

Who receives that event depends on pywebview's backend:
- ``qt`` (what the app starts today): Qt's own application delegate turns it into a
  ``QFileOpenEvent`` sent to the ``QApplication``; an event filter picks it up.
- ``cocoa`` (WKWebView): NSApplication calls its delegate's ``application:openURLs:``,
  which pywebview's delegate lacks, so it is added through pyobjc.

Call :func:`install` right before ``webview.start()`` (after the Qt environment is set),
so files that launched the app are caught too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

OpenFiles = Callable[[list[str]], None]
SELECTOR = b"application:openURLs:"
SIGNATURE = b"v@:@@"  # void, self, _cmd, NSApplication *, NSArray<NSURL *> *


class OpenFileSource(Protocol):
    """The platform call behind one backend: report opened paths to ``deliver``."""

    def watch(self, deliver: OpenFiles) -> None: ...


class QtFileOpenEvents:
    """``QFileOpenEvent`` on the application object (Qt backend)."""

    def watch(self, deliver: OpenFiles) -> None:
        import webview.platforms.qt  # noqa: F401 - imports QtWebEngine before the QApplication
        from qtpy.QtCore import QEvent, QObject
        from qtpy.QtWidgets import QApplication

        class FileOpenFilter(QObject):
            def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
                if event.type() == QEvent.Type.FileOpen and event.file():
                    deliver([event.file()])
                    return True
                return False

        # pywebview reuses an existing QApplication; the filter lives as its child.
        app = QApplication.instance() or QApplication(sys.argv)
        app.installEventFilter(FileOpenFilter(app))


class CocoaDelegateURLs:
    """``application:openURLs:`` added to pywebview's cocoa ``AppDelegate`` (cocoa backend)."""

    def watch(self, deliver: OpenFiles) -> None:
        import objc
        from webview.platforms.cocoa import BrowserView

        def application_openURLs_(delegate: Any, app: Any, urls: Any) -> None:
            paths = file_paths(urls)
            if paths:
                deliver(paths)

        objc.classAddMethods(BrowserView.AppDelegate,
                             [objc.selector(application_openURLs_, selector=SELECTOR, signature=SIGNATURE)])


SOURCES: dict[str, Callable[[], OpenFileSource]] = {"qt": QtFileOpenEvents, "cocoa": CocoaDelegateURLs}


def file_paths(urls: Iterable[Any]) -> list[str]:
    """Local paths of the ``NSURL``-like objects that are file URLs."""
    return [str(url.path()) for url in urls if url.isFileURL()]


def install(on_open: OpenFiles, backend: str = "qt", source: OpenFileSource | None = None) -> bool:
    """Call ``on_open(paths)`` for every batch of files macOS asks the app to open.

    ``backend`` is the pywebview ``gui`` the app starts. ``on_open`` runs on a fresh
    thread: the event arrives on the GUI thread, where blocking pywebview calls
    (``create_window``...) would deadlock. Returns False, doing nothing, off macOS unless
    a ``source`` is given (tests).
    """
    if source is None:
        if sys.platform != "darwin":
            return False
        source = SOURCES[backend]()

    def deliver(paths: list[str]) -> None:
        threading.Thread(target=on_open, args=(paths,), name="open-files", daemon=True).start()

    source.watch(deliver)
    return True
