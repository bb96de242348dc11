"""Files macOS asks the running app to open reach the app's callback, off the GUI thread.

The Qt route runs for real (a QFileOpenEvent sent to a real QApplication, as Qt's macOS
plug-in does on an open-documents Apple event). The cocoa route needs pyobjc and AppKit,
which do not exist here: `objc` and pywebview's cocoa module are fakes (mocks, on purpose).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import types

from cellucid_desktop.desktop import macos_open_files

QT_SCRIPT = """
import threading
from cellucid_desktop.desktop import macos_open_files as m
got, done = [], threading.Event()
def on_open(paths):
    got.append((paths, threading.current_thread().name)); done.set()
m.install(on_open, source=m.QtFileOpenEvents())
from qtpy.QtGui import QFileOpenEvent
from qtpy.QtWidgets import QApplication
app = QApplication.instance()
QApplication.sendEvent(app, QFileOpenEvent("/Users/ann/My data/pbmc.h5ad"))
assert done.wait(20)
print(got)
"""


def test_qt_file_open_event_reaches_the_callback_on_a_worker_thread():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_API": "pyside6"}
    result = subprocess.run([sys.executable, "-c", QT_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[(['/Users/ann/My data/pbmc.h5ad'], 'open-files')]"


class FakeURL:
    def __init__(self, path: str, is_file: bool = True) -> None:
        self._path, self._is_file = path, is_file

    def path(self) -> str:
        return self._path

    def isFileURL(self) -> bool:  # noqa: N802 - NSURL's name
        return self._is_file


def _fake_pyobjc(monkeypatch) -> type:
    """Fake `objc` and `webview.platforms.cocoa`; returns the fake delegate class."""
    delegate = type("AppDelegate", (), {})

    def class_add_methods(cls, methods):
        for method in methods:
            setattr(cls, method.selector.decode().replace(":", "_"), method.func)

    objc = types.SimpleNamespace(
        classAddMethods=class_add_methods,
        selector=lambda func, selector, signature: types.SimpleNamespace(
            func=func, selector=selector, signature=signature))
    cocoa = types.SimpleNamespace(BrowserView=types.SimpleNamespace(AppDelegate=delegate))
    monkeypatch.setitem(sys.modules, "objc", objc)
    monkeypatch.setitem(sys.modules, "webview.platforms.cocoa", cocoa)
    return delegate


def test_cocoa_delegate_gets_open_urls_and_passes_only_file_paths(monkeypatch):
    delegate = _fake_pyobjc(monkeypatch)
    got: list[tuple[list[str], str]] = []
    done = threading.Event()

    def on_open(paths: list[str]) -> None:
        got.append((paths, threading.current_thread().name))
        done.set()

    assert macos_open_files.install(on_open, source=macos_open_files.CocoaDelegateURLs())
    delegate.application_openURLs_(None, None, [FakeURL("/Users/ann/a b.h5ad"),
                                                FakeURL("https://x", is_file=False),
                                                FakeURL("/Volumes/data/c.h5ad")])
    assert done.wait(10)
    assert got == [(["/Users/ann/a b.h5ad", "/Volumes/data/c.h5ad"], "open-files")]


def test_cocoa_delegate_ignores_a_batch_of_web_urls(monkeypatch):
    delegate = _fake_pyobjc(monkeypatch)
    called = threading.Event()
    macos_open_files.install(lambda paths: called.set(), source=macos_open_files.CocoaDelegateURLs())
    delegate.application_openURLs_(None, None, [FakeURL("https://x", is_file=False)])
    assert not called.wait(0.5)


def test_install_does_nothing_off_macos():
    assert sys.platform != "darwin"
    assert macos_open_files.install(lambda paths: None) is False
    assert macos_open_files.install(lambda paths: None, backend="cocoa") is False
