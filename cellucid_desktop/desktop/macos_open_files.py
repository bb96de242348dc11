"""macOS: hand files opened from Finder (double-click, *Open With*, drag onto the Dock
icon) to the app. They arrive as an open-documents Apple event, never in argv.

NSApplication answers that event by calling its delegate's ``application:openURLs:``.
pywebview's cocoa delegate lacks that method, so :func:`install` adds it through pyobjc,
before ``webview.start()`` (the delegate is set when the first window is made, before the
run loop starts, so files that launched the app arrive too).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

OpenFiles = Callable[[list[str]], None]
SELECTOR = b"application:openURLs:"
SIGNATURE = b"v@:@@"  # void, self, _cmd, NSApplication *, NSArray<NSURL *> *


class DelegateHooks(Protocol):
    """The one platform call this module needs (a fake stands in for it in tests)."""

    def add_app_delegate_method(self, selector: bytes, signature: bytes,
                                func: Callable[..., None]) -> None: ...


class PyObjCHooks:
    """Adds a method to pywebview's cocoa ``BrowserView.AppDelegate`` class (macOS only)."""

    def add_app_delegate_method(self, selector: bytes, signature: bytes,
                                func: Callable[..., None]) -> None:
        import objc
        from webview.platforms.cocoa import BrowserView

        objc.classAddMethods(BrowserView.AppDelegate,
                             [objc.selector(func, selector=selector, signature=signature)])


def file_paths(urls: Iterable[Any]) -> list[str]:
    """Local paths of the ``NSURL``-like objects that are file URLs."""
    return [str(url.path()) for url in urls if url.isFileURL()]


def install(on_open: OpenFiles, hooks: DelegateHooks | None = None) -> bool:
    """Call ``on_open(paths)`` for every batch of files macOS asks the app to open.

    ``on_open`` runs on a fresh thread: the event arrives on the GUI thread, where
    blocking pywebview calls (``create_window``...) would deadlock. Returns False (and
    does nothing) when not on macOS and no ``hooks`` are given.
    """
    if hooks is None:
        if sys.platform != "darwin":
            return False
        hooks = PyObjCHooks()

    def application_openURLs_(delegate: Any, app: Any, urls: Any) -> None:
        paths = file_paths(urls)
        if paths:
            threading.Thread(target=on_open, args=(paths,), name="open-files", daemon=True).start()

    hooks.add_app_delegate_method(SELECTOR, SIGNATURE, application_openURLs_)
    return True
