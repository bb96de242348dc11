"""Environment Qt WebEngine needs, set before pywebview imports Qt.

* ``--no-sandbox``: Chromium refuses to start as root (containers, CI).
* ``--ignore-gpu-blocklist --disable-gpu-compositing``: on a display without GPU
  acceleration (Xvfb, VNC, VMs) Chromium blocklists WebGL on Mesa llvmpipe, and with GPU
  compositing only the page background reaches the window. See docs/desktop-stack.md §2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

FLAGS_VAR = "QTWEBENGINE_CHROMIUM_FLAGS"
SOFTWARE_GL_VAR = "CELLUCID_DESKTOP_SOFTWARE_GL"  # "1"/"0" overrides the detection
SOFTWARE_DISPLAY_FLAGS = ("--ignore-gpu-blocklist", "--disable-gpu-compositing")
# X extensions that only a display with direct GPU rendering offers.
GPU_EXTENSIONS = ("DRI3", "DRI2", "NV-GLX")


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def x_display_is_software(display: str) -> bool:
    """True for an X server without DRI/NVIDIA GLX, such as Xvfb or Xvnc."""
    try:
        from Xlib import display as xdisplay
        conn = xdisplay.Display(display)
    except Exception:  # noqa: BLE001 - no X at all: Qt reports that itself
        return False
    try:
        extensions = set(conn.list_extensions())
    finally:
        conn.close()
    return not extensions.intersection(GPU_EXTENSIONS)


def wants_software_flags(environ: MutableMapping[str, str]) -> bool:
    forced = environ.get(SOFTWARE_GL_VAR)
    if forced in ("0", "1"):
        return forced == "1"
    if not sys.platform.startswith("linux") or environ.get("WAYLAND_DISPLAY"):
        return False
    display = environ.get("DISPLAY")
    return bool(display) and x_display_is_software(display)


def configure(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Add the needed flags to ``environ`` (keeping the user's own); returns the flags added."""
    environ.setdefault("QT_API", "pyside6")
    wanted = ["--no-sandbox"] if running_as_root() else []
    if wants_software_flags(environ):
        wanted += SOFTWARE_DISPLAY_FLAGS
    present = environ.get(FLAGS_VAR, "").split()
    added = [flag for flag in wanted if flag not in present]
    if added:
        environ[FLAGS_VAR] = " ".join([*present, *added])
        log.info("Qt WebEngine flags: %s", environ[FLAGS_VAR])
    return added
