"""The tray icon image, from the glyphs the package ships (cellucid_desktop/assets)."""

from __future__ import annotations

import sys

from PIL import Image

from cellucid_desktop import assets


def tray_image(size: int = 64) -> Image.Image:
    """The one-colour tray glyph in the variant that reads on the usual panel colour:
    light on the dark panels of GNOME, KDE's dark themes and the Windows taskbar, dark
    on macOS's light menu bar."""
    dark_panel = sys.platform != "darwin"
    return Image.open(assets.tray_png(size, dark_panel=dark_panel)).convert("RGBA")
