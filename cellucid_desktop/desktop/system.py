"""Hand a file to the operating system (Show log), one small function per platform.

Only the Linux branch runs here; the macOS and Windows branches are unit-tested with
the platform call mocked (tests/desktop/test_system.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def open_with_system(path: Path, platform: str = sys.platform) -> None:
    """Open ``path`` with the user's default application, without waiting for it."""
    if platform == "win32":
        os.startfile(str(path))  # type: ignore[attr-defined]  # Windows only
        return
    opener = "open" if platform == "darwin" else "xdg-open"
    subprocess.Popen([opener, str(path)], stdin=subprocess.DEVNULL,  # noqa: S603 - argv list
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def hide_from_dock(platform: str = sys.platform) -> None:
    """macOS: a tray-only process must not show a Dock icon (Accessory activation policy).

    Needs pyobjc's AppKit, which pystray pulls in on macOS; a no-op elsewhere.
    """
    if platform != "darwin":
        return
    import AppKit  # type: ignore[import-not-found]  # macOS only

    AppKit.NSApplication.sharedApplication().setActivationPolicy_(
        AppKit.NSApplicationActivationPolicyAccessory)
