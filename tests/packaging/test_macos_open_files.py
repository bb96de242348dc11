"""Files macOS sends to the running app (open-documents Apple event) reach the callback.

AppKit and pyobjc do not exist here, so the delegate class is a fake standing in for
pywebview's cocoa AppDelegate (a mock, on purpose); the logic around it is real.
"""

from __future__ import annotations

import threading

from cellucid_desktop.desktop import macos_open_files


class FakeURL:
    def __init__(self, path: str, is_file: bool = True) -> None:
        self._path, self._is_file = path, is_file

    def path(self) -> str:
        return self._path

    def isFileURL(self) -> bool:  # noqa: N802 - NSURL's name
        return self._is_file


class FakeDelegateHooks:
    """Records the method pyobjc would add to the delegate class."""

    def __init__(self) -> None:
        self.methods: dict[bytes, tuple[bytes, object]] = {}

    def add_app_delegate_method(self, selector, signature, func):
        self.methods[selector] = (signature, func)


def test_opened_file_urls_reach_the_callback_off_the_gui_thread():
    hooks = FakeDelegateHooks()
    got: list[list[str]] = []
    threads: list[str] = []
    done = threading.Event()

    def on_open(paths: list[str]) -> None:
        got.append(paths)
        threads.append(threading.current_thread().name)
        done.set()

    assert macos_open_files.install(on_open, hooks) is True
    signature, method = hooks.methods[b"application:openURLs:"]
    assert signature == b"v@:@@"
    method(object(), object(), [FakeURL("/Users/ann/a b.h5ad"), FakeURL("https://x", is_file=False),
                                FakeURL("/Volumes/data/c.h5ad")])
    assert done.wait(10)
    assert got == [["/Users/ann/a b.h5ad", "/Volumes/data/c.h5ad"]]
    assert threads != [threading.current_thread().name]


def test_only_web_urls_call_nothing():
    hooks = FakeDelegateHooks()
    called = threading.Event()
    macos_open_files.install(lambda paths: called.set(), hooks)
    hooks.methods[b"application:openURLs:"][1](None, None, [FakeURL("https://x", is_file=False)])
    assert not called.wait(0.5)


def test_install_does_nothing_off_macos():
    assert macos_open_files.install(lambda paths: None) is False  # Linux: no AppKit to touch
