"""The app's icons, generated from assets/icon.svg and assets/tray.svg by assets/make_icons.py.

Use these paths for window and tray icons, so the package and the frozen bundle agree.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
TRAY_SIZES = (16, 22, 24, 32, 44, 64)


def icon_svg() -> Path:
    """The scalable app icon (Linux `scalable/apps`)."""
    return ASSETS / "icon.svg"


def icon_png(size: int = 256) -> Path:
    """The app icon rendered at the nearest size not smaller than ``size`` (max 512)."""
    best = next((s for s in ICON_SIZES if s >= size), ICON_SIZES[-1])
    return ASSETS / f"icon-{best}.png"


def tray_png(size: int = 22, dark_panel: bool = False) -> Path:
    """The one-colour tray glyph: light on a dark panel, dark on a light one."""
    best = next((s for s in TRAY_SIZES if s >= size), TRAY_SIZES[-1])
    return ASSETS / f"tray-{'light' if dark_panel else 'dark'}-{best}.png"
